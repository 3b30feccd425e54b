import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { targetUrls, unreachable } from './databases.js'

/**
 * Proves that PostgreSQL checks passwords for generated users (`v-...` roles), so a test that
 * logs in with a credential really tests that credential: creates a throwaway role, expects a
 * wrong password to be refused and the right one to be accepted, then drops the role.
 * `.ci/prepare-services` sets up the pg_hba.conf rules this relies on.
 */
export async function assertPgPasswordChecking(adminUrl = targetUrls().postgres): Promise<void> {
  const role = `v-hbacheck-${randomBytes(4).toString('hex')}`
  // base64url has no quote characters, so it can sit in a literal (CREATE ROLE takes no parameters).
  const password = randomBytes(18).toString('base64url')
  const admin = postgres(adminUrl, { max: 1, connect_timeout: 10, onnotice: () => {} })
  try {
    try {
      await admin`CREATE ROLE ${admin(role)} WITH LOGIN PASSWORD ${admin.unsafe(`'${password}'`)}`
    } catch (error) {
      throw unreachable(`creating role ${role} on PostgreSQL`, adminUrl, error)
    }
    const wrong = await tryLogin(adminUrl, role, `${password}-wrong`)
    if (wrong === undefined) {
      throw new Error(
        `PostgreSQL let role ${role} log in with a wrong password: pg_hba.conf does not require ` +
          'scram-sha-256 for generated users. Run `bash .ci/prepare-services` as root.',
      )
    }
    if (wrong.code !== '28P01') {
      throw new Error(
        `expected "password authentication failed" for ${role}, got: ${wrong.message}`,
      )
    }
    const right = await tryLogin(adminUrl, role, password)
    if (right !== undefined) {
      throw new Error(`PostgreSQL refused the right password for ${role}: ${right.message}`)
    }
  } finally {
    await admin`DROP ROLE IF EXISTS ${admin(role)}`.catch(() => {})
    await admin.end()
  }
}

/** Logs in as `username`; returns the error, or undefined when the login worked. */
async function tryLogin(
  url: string,
  username: string,
  password: string,
): Promise<(Error & { code?: string }) | undefined> {
  const sql = postgres(url, { username, password, max: 1, connect_timeout: 10, onnotice: () => {} })
  try {
    await sql`SELECT 1`
    return undefined
  } catch (error) {
    return error as Error & { code?: string }
  } finally {
    await sql.end()
  }
}
