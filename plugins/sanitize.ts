/**
 * Strips secrets from error text that comes from outside Stint's own code (target databases,
 * drivers, HTTP peers) before anyone sees it.
 *
 * Usernames are not secrets: they stay, so an operator can find the user an error is about.
 *
 * Removes: URL credentials (`scheme://user:pass@`), `password=...`/`pwd=...` pairs, quoted
 * literals after PASSWORD / IDENTIFIED BY, bearer tokens and Stint/Vault tokens, JWT-shaped strings,
 * and any extra literal secrets passed in by the caller.
 */
export function sanitizeMessage(message: string, secrets: Array<string | undefined> = []): string {
  let out = message
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]')
  }
  return out
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1[redacted]@')
    .replace(
      // Not MySQL's "(using password: YES)", which only says whether one was sent.
      /\b(password|passwd|pwd|secret|token)(\s*[=:]\s*)(?!(?:YES|NO)\))("[^"]*"|'[^']*'|\S+)/gi,
      '$1$2[redacted]',
    )
    .replace(/\b(PASSWORD|IDENTIFIED\s+BY)(\s+)('(?:[^']|'')*'|"[^"]*")/gi, '$1$2[redacted]')
    .replace(/\b(Bearer\s+)\S+/gi, '$1[redacted]')
    .replace(/\b(sts|hvs|hvb|s|b)\.[A-Za-z0-9]{16,}\b/g, '[redacted-token]')
    .replace(/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[redacted-jwt]')
}

/** Sanitises any thrown value into a safe message string. */
export function sanitizeError(err: unknown, secrets: Array<string | undefined> = []): string {
  const text = err instanceof Error ? err.message : String(err)
  return sanitizeMessage(text, secrets)
}

/**
 * Runs `work`; if it throws, rethrows `<what>: <sanitised message>` so driver errors never carry
 * a password, DSN or token further (plugins wrap every call to a target in this).
 */
export async function sanitized<T>(
  what: string,
  work: () => Promise<T>,
  secrets: Array<string | undefined> = [],
): Promise<T> {
  try {
    return await work()
  } catch (err) {
    throw new Error(`${what}: ${sanitizeError(err, secrets)}`)
  }
}
