import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/** Identity store (entities, aliases, groups) and userpass users. */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema
    .createTable('identity_entities')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('name', t.key, (c) => c.notNull().unique())
    .addColumn('metadata', t.text, (c) => c.notNull())
    .addColumn('policies', t.text, (c) => c.notNull())
    .addColumn('disabled', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('identity_aliases')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('canonical_id', t.key, (c) => c.notNull())
    .addColumn('mount_accessor', t.key, (c) => c.notNull())
    .addColumn('mount_type', t.key, (c) => c.notNull())
    .addColumn('name', t.key, (c) => c.notNull())
    .addColumn('metadata', t.text, (c) => c.notNull())
    .addColumn('custom_metadata', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('identity_aliases_mount_name')
    .on('identity_aliases')
    .columns(['mount_accessor', 'name'])
    .unique()
    .execute()
  await db.schema
    .createIndex('identity_aliases_canonical')
    .on('identity_aliases')
    .column('canonical_id')
    .execute()

  await db.schema
    .createTable('identity_groups')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('name', t.key, (c) => c.notNull().unique())
    .addColumn('type', t.key, (c) => c.notNull())
    .addColumn('policies', t.text, (c) => c.notNull())
    .addColumn('metadata', t.text, (c) => c.notNull())
    .addColumn('member_entity_ids', t.text, (c) => c.notNull())
    .addColumn('member_group_ids', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()

  // One counter bumped on every identity write: nodes compare it to drop their policy caches.
  await db.schema
    .createTable('identity_state')
    .addColumn('name', t.key, (c) => c.primaryKey())
    .addColumn('version', t.bigint, (c) => c.notNull())
    .execute()
  await (db as Kysely<{ identity_state: { name: string; version: number } }>)
    .insertInto('identity_state')
    .values({ name: 'version', version: 0 })
    .execute()

  await db.schema
    .createTable('userpass_users')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('mount_accessor', t.key, (c) => c.notNull())
    .addColumn('username', t.key, (c) => c.notNull())
    .addColumn('password_hash', t.text, (c) => c.notNull())
    .addColumn('token_fields', t.text, (c) => c.notNull())
    .addColumn('totp_seed', t.text)
    .addColumn('totp_last_step', t.bigint)
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('userpass_users_mount_name')
    .on('userpass_users')
    .columns(['mount_accessor', 'username'])
    .unique()
    .execute()
}
