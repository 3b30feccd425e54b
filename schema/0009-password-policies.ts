import { MysqlAdapter, PostgresAdapter, sql, type Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * Password policies (`sys/policies/password/<name>`): the text as written, base64 decoded.
 *
 * Names are case-sensitive, as in Vault, so the key is compared byte-wise on every dialect.
 */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  const adapter = db.getExecutor().adapter
  const name =
    adapter instanceof PostgresAdapter
      ? sql`varchar(255) collate "C"`
      : adapter instanceof MysqlAdapter
        ? sql`varchar(255) character set utf8mb4 collate utf8mb4_bin`
        : t.key

  await db.schema
    .createTable('password_policies')
    .addColumn('name', name, (c) => c.primaryKey())
    .addColumn('body', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
}
