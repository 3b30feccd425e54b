import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/** Audit devices: options, sealed HMAC salt and signing key, and the hash chain's last checkpoint. */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema
    .createTable('audit_devices')
    .addColumn('path', t.key, (c) => c.primaryKey())
    .addColumn('type', t.key, (c) => c.notNull())
    .addColumn('description', t.text, (c) => c.notNull())
    .addColumn('options', t.text, (c) => c.notNull())
    .addColumn('sealed_options', t.text)
    .addColumn('local', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('salt', t.text, (c) => c.notNull())
    .addColumn('signing_key', t.text, (c) => c.notNull())
    .addColumn('public_key', t.text, (c) => c.notNull())
    .addColumn('chain_seq', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('chain_head', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()
}
