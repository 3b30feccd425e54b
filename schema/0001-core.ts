import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/** Seal state, keyring, mount table, policies and tokens. */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema
    .createTable('stint_meta')
    .addColumn('key', t.key, (c) => c.primaryKey())
    .addColumn('value', t.text, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('mounts')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('path', t.key, (c) => c.notNull().unique())
    .addColumn('kind', t.key, (c) => c.notNull())
    .addColumn('type', t.key, (c) => c.notNull())
    .addColumn('description', t.text, (c) => c.notNull())
    .addColumn('accessor', t.key, (c) => c.notNull().unique())
    .addColumn('options', t.text)
    .addColumn('config', t.text, (c) => c.notNull())
    .addColumn('local', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('seal_wrap', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('policies')
    .addColumn('name', t.key, (c) => c.primaryKey())
    .addColumn('body', t.text, (c) => c.notNull())
    .addColumn('version', t.int, (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('tokens')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('accessor', t.key, (c) => c.notNull().unique())
    .addColumn('parent_id', t.key)
    .addColumn('policies', t.text, (c) => c.notNull())
    .addColumn('meta', t.text)
    .addColumn('display_name', t.key, (c) => c.notNull())
    .addColumn('num_uses', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('creation_time', t.bigint, (c) => c.notNull())
    .addColumn('creation_ttl', t.bigint, (c) => c.notNull())
    .addColumn('expire_time', t.bigint)
    .addColumn('max_expire_time', t.bigint)
    .addColumn('explicit_max_ttl', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('period', t.bigint, (c) => c.notNull().defaultTo(0))
    .addColumn('renewable', t.int, (c) => c.notNull())
    .addColumn('last_renewal', t.bigint)
    .addColumn('path', t.key, (c) => c.notNull())
    .addColumn('mount_accessor', t.key)
    .addColumn('entity_id', t.key, (c) => c.notNull().defaultTo(''))
    .addColumn('type', t.key, (c) => c.notNull())
    .addColumn('orphan', t.int, (c) => c.notNull())
    .addColumn('role', t.key)
    .addColumn('bound_cidrs', t.text)
    .execute()
  await db.schema.createIndex('tokens_parent').on('tokens').column('parent_id').execute()
  await db.schema.createIndex('tokens_expire').on('tokens').column('expire_time').execute()
  await db.schema.createIndex('tokens_mount').on('tokens').column('mount_accessor').execute()
  await db.schema.createIndex('tokens_entity').on('tokens').column('entity_id').execute()
}
