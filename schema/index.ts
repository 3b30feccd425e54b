import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'
import * as m0001 from './0001-core.js'
import * as m0002 from './0002-kv.js'
import * as m0003 from './0003-leases.js'
import * as m0004 from './0004-database.js'
import * as m0005 from './0005-auth-roles.js'
import * as m0006 from './0006-identity-userpass.js'
import * as m0007 from './0007-audit.js'
import * as m0008 from './0008-access.js'
import * as m0009 from './0009-password-policies.js'
import * as m0010 from './0010-token-login-facts.js'
import * as m0011 from './0011-lease-own-max.js'
import * as m0012 from './0012-mysql-binary-collation.js'
import * as m0013 from './0013-access-due-indexes.js'

export interface SchemaMigration {
  name: string
  up(db: Kysely<unknown>, t: ColumnTypes): Promise<void>
}

/**
 * Every migration, in order. Applied migrations are never edited: add a new file instead.
 * `test/storage/migrations.test.ts` fails when a file in this folder is missing from the list.
 */
export const migrations: SchemaMigration[] = [
  { name: '0001-core', up: m0001.up },
  { name: '0002-kv', up: m0002.up },
  { name: '0003-leases', up: m0003.up },
  { name: '0004-database', up: m0004.up },
  { name: '0005-auth-roles', up: m0005.up },
  { name: '0006-identity-userpass', up: m0006.up },
  { name: '0007-audit', up: m0007.up },
  { name: '0008-access', up: m0008.up },
  { name: '0009-password-policies', up: m0009.up },
  { name: '0010-token-login-facts', up: m0010.up },
  { name: '0011-lease-own-max', up: m0011.up },
  { name: '0012-mysql-binary-collation', up: m0012.up },
  { name: '0013-access-due-indexes', up: m0013.up },
]
