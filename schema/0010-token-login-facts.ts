import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * What an auth method verified when a token was issued, kept apart from the caller-written
 * `meta` so that no caller can forge it:
 * - `login_claims`: JSON `{mount, claims}`, the auth mount (accessor) and the claims it verified
 *   (a JWT's mapped claims, a userpass username); children of the token inherit it.
 * - `login_mfa`: the second factor checked at that login (`totp`); never inherited.
 * - `grant_holder`: who holds JIT grants made with this token when it is not its entity: a CI
 *   login's own `token:<accessor>`, inherited by every token created from it.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema.alterTable('tokens').addColumn('login_claims', t.text).execute()
  await db.schema.alterTable('tokens').addColumn('login_mfa', t.key).execute()
  await db.schema.alterTable('tokens').addColumn('grant_holder', t.key).execute()
}
