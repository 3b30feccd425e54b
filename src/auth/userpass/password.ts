import { randomBytes } from 'node:crypto'
import { hash, verify } from '@node-rs/argon2'

// argon2id (the library default) with OWASP's recommended cost: 19 MiB, 2 passes, 1 lane.
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 }

/** Longest password accepted: argon2 cost does not depend on it, but request size does. */
export const MAX_PASSWORD_LENGTH = 1024

/** Counts argon2 verifications, so tests can prove how many guesses reached the hash. */
export const passwordStats = { verifications: 0 }

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS)
}

let dummy: Promise<string> | undefined

/** Computes the throw-away hash ahead of time, so even the first unknown-user login is not faster. */
export function prepareDummyHash(): void {
  dummy ??= hashPassword(randomBytes(32).toString('base64'))
}

/**
 * Checks a password against a stored hash. With no hash (unknown user) it still runs one
 * verification against a throw-away hash, so the response time does not reveal whether the
 * username exists.
 */
export async function verifyPassword(
  stored: string | undefined,
  password: string,
): Promise<boolean> {
  prepareDummyHash()
  const target = stored ?? (await dummy!)
  passwordStats.verifications++
  try {
    const ok = await verify(target, password)
    return ok && stored !== undefined
  } catch {
    return false
  }
}
