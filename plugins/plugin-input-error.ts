/**
 * Thrown by plugins for problems the caller caused (bad config values): the engine answers it
 * with a 400 carrying the message, so the message must be safe to show.
 */
export class PluginInputError extends Error {
  override readonly name = 'PluginInputError'
}
