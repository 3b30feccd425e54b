import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * The JIT sweeper asks for requests that came due in one state ("pending past pending_until",
 * "approved with start_at reached"): one index per deadline column, beside the existing
 * (state, ends_at), so a pass reads what is due instead of every live request.
 */
export async function up(db: Kysely<unknown>, _t: ColumnTypes): Promise<void> {
  await db.schema
    .createIndex('access_requests_pending_until')
    .on('access_requests')
    .columns(['state', 'pending_until'])
    .execute()
  await db.schema
    .createIndex('access_requests_start_at')
    .on('access_requests')
    .columns(['state', 'start_at'])
    .execute()
}
