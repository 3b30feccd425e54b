import { parseArgs, UsageError } from '../args.js'

export const serverHelp = `Usage: stint server [options]

  Starts a Stint server.

  -dev                        Development mode: in-memory storage, initialised and unsealed,
                              KV v2 at secret/, prints the unseal key and root token.
  -dev-root-token-id=<id>     Root token to use in dev mode (default: random).
  -dev-listen-address=<addr>  Address to listen on in dev mode (default 127.0.0.1:8200).
  -config=<file>              Server configuration file (HCL or JSON).
`

/**
 * `stint server`: loads the server side only now, so every other command starts without it.
 * Resolves when the server has stopped.
 */
export async function serverCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, ['dev'])
  if (flags.help || flags.h) {
    console.log(serverHelp)
    return 0
  }
  const { runServer, ServerUsageError } = await import('../../server/run.js')
  try {
    return await runServer(flags)
  } catch (err) {
    if (err instanceof ServerUsageError) throw new UsageError(err.message)
    throw err
  }
}
