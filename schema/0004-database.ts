import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/** The database secrets engine: connection configs (sealed) and dynamic roles, per mount. */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema
    .createTable('database_configs')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('mount_id', t.key, (c) => c.notNull())
    .addColumn('name', t.key, (c) => c.notNull())
    .addColumn('plugin_name', t.key, (c) => c.notNull())
    .addColumn('sealed', t.text, (c) => c.notNull())
    .addColumn('settings', t.text, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('database_configs_mount')
    .on('database_configs')
    .columns(['mount_id', 'name'])
    .execute()

  await db.schema
    .createTable('database_roles')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('mount_id', t.key, (c) => c.notNull())
    .addColumn('name', t.key, (c) => c.notNull())
    .addColumn('db_name', t.key, (c) => c.notNull())
    .addColumn('body', t.text, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('database_roles_mount')
    .on('database_roles')
    .columns(['mount_id', 'name'])
    .execute()
}
