import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * Leases: one row per issued secret, the expiry queue and the intent log at once.
 *
 * The id is compared byte-wise on every dialect (`COLLATE "C"` on PostgreSQL, `utf8mb4_bin` on
 * MySQL, SQLite's default BINARY), so the primary key also serves prefix range scans
 * (`id >= prefix AND id < prefix || U+10FFFF`) for revoke-prefix and LIST lookup.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  const adapter = db.getExecutor().adapter
  const id =
    adapter instanceof PostgresAdapter
      ? sql`varchar(255) collate "C"`
      : adapter instanceof MysqlAdapter
        ? sql`varchar(255) character set utf8mb4 collate utf8mb4_bin`
        : t.key

  await db.schema
    .createTable('leases')
    .addColumn('id', id, (c) => c.primaryKey())
    .addColumn('mount_accessor', t.key, (c) => c.notNull())
    .addColumn('mount_path', t.key, (c) => c.notNull())
    .addColumn('path', t.key, (c) => c.notNull())
    .addColumn('token_id', t.key, (c) => c.notNull())
    .addColumn('state', t.key, (c) => c.notNull())
    .addColumn('ttl', t.bigint, (c) => c.notNull())
    .addColumn('issue_time', t.bigint, (c) => c.notNull())
    .addColumn('expire_time', t.bigint, (c) => c.notNull())
    .addColumn('max_expire_time', t.bigint, (c) => c.notNull())
    .addColumn('last_renewal', t.bigint)
    .addColumn('renewable', t.int, (c) => c.notNull())
    .addColumn('internal', t.text, (c) => c.notNull())
    .addColumn('target_key', t.key, (c) => c.notNull())
    .addColumn('attempts', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.bigint, (c) => c.notNull())
    .addColumn('last_error', t.text)
    .addColumn('claimed_by', t.key)
    .addColumn('claim_until', t.bigint)
    .execute()
  await db.schema
    .createIndex('leases_due')
    .on('leases')
    .columns(['state', 'next_attempt_at'])
    .execute()
  await db.schema.createIndex('leases_token').on('leases').column('token_id').execute()
  await db.schema.createIndex('leases_mount').on('leases').column('mount_accessor').execute()
  await db.schema
    .createIndex('leases_target')
    .on('leases')
    .columns(['target_key', 'next_attempt_at'])
    .execute()
}
