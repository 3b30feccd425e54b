import { sql, type RawBuilder } from 'kysely'

/** The storage dialects Stint runs on. */
export type DialectName = 'sqlite' | 'postgres' | 'mysql'

/** Column types that mean the same thing on SQLite, PostgreSQL and MySQL/MariaDB. */
export interface ColumnTypes {
  /** Keys and indexed strings (ids, paths, names), compared byte for byte on every dialect. */
  key: RawBuilder<unknown>
  /** Unbounded text: JSON, ciphertext, policy bodies. */
  text: RawBuilder<unknown>
  bigint: RawBuilder<unknown>
  int: RawBuilder<unknown>
}

export function columnTypes(dialect: DialectName): ColumnTypes {
  return {
    key:
      dialect === 'mysql'
        ? sql`varchar(255) character set utf8mb4 collate utf8mb4_bin`
        : sql`varchar(255)`,
    text: dialect === 'mysql' ? sql`longtext` : sql`text`,
    bigint: sql`bigint`,
    int: sql`integer`,
  }
}
