import { MysqlAdapter, sql, type Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/**
 * On MySQL/MariaDB, every text column of every Stint table compares byte for byte, as on SQLite
 * and PostgreSQL. Under the server's default collation (`utf8mb4_general_ci`) keys compared
 * without case: `database/creds/PROD-ADMIN` found the role `prod-admin` while the access rules,
 * which match case-sensitively, did not guard that path; and a JWT login whose subject differed
 * only in case from an existing alias was given that alias's entity, with its metadata and
 * groups. New tables get the binary collation through `ColumnTypes.key`.
 */
export async function up(db: Kysely<unknown>, _t: ColumnTypes): Promise<void> {
  if (!(db.getExecutor().adapter instanceof MysqlAdapter)) return
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = database() and table_type = 'BASE TABLE'
      and table_name not like 'stint\\_migrations%'`.execute(db)
  for (const { name } of rows) {
    await sql`alter table ${sql.table(name)} convert to character set utf8mb4 collate utf8mb4_bin`.execute(
      db,
    )
  }
}
