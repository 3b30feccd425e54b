import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * `leases.own_max_expire_time`: the max a lease was issued with, kept when a JIT grant lowered
 * `max_expire_time` to the grant's end (null: never lowered), so that extending the grant can
 * give the lease its time back, never more than it was issued with.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema.alterTable('leases').addColumn('own_max_expire_time', t.bigint).execute()
}
