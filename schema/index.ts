import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'
import * as m0001 from './0001-core.js'

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
]
