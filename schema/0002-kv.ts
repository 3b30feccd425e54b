import { MysqlAdapter, PostgresAdapter, sql, type Kysely, type RawBuilder } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * KV secrets engine: per-mount config, per-path metadata and one row per version.
 *
 * Secret paths are compared byte for byte (case-sensitive uniqueness, prefix listing by range),
 * so the path column gets a binary collation where the dialect's default is not binary.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  const adapter = db.getExecutor().adapter
  const mountId = sql`varchar(64)`
  let path: RawBuilder<unknown> = sql`varchar(512)`
  if (adapter instanceof PostgresAdapter) path = sql`varchar(512) collate "C"`
  if (adapter instanceof MysqlAdapter)
    path = sql`varchar(512) character set utf8mb4 collate utf8mb4_bin`

  await db.schema
    .createTable('kv_config')
    .addColumn('mount_id', mountId, (c) => c.primaryKey())
    .addColumn('max_versions', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('cas_required', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('delete_version_after', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('kv_metadata')
    .addColumn('mount_id', mountId, (c) => c.notNull())
    .addColumn('path', path, (c) => c.notNull())
    .addColumn('id', mountId, (c) => c.notNull())
    .addColumn('current_version', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('oldest_version', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('max_versions', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('cas_required', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('delete_version_after', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('custom_metadata', t.text)
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .addPrimaryKeyConstraint('kv_metadata_pk', ['mount_id', 'path'] as never)
    .execute()

  await db.schema
    .createTable('kv_versions')
    .addColumn('mount_id', mountId, (c) => c.notNull())
    .addColumn('path', path, (c) => c.notNull())
    .addColumn('version', t.int, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('deletion_time', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('destroyed', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('value', t.text)
    .addPrimaryKeyConstraint('kv_versions_pk', ['mount_id', 'path', 'version'] as never)
    .execute()
}
