import type { DialectName } from '../../schema/column-types.js'

/**
 * What Stint's storage database can do, for code that needs a feature rather than a dialect name
 * (as Kysely's adapters carry `supportsReturning` and `supportsTransactionalDdl`). Feature code
 * reads these flags; only SQL syntax (upsert forms, column types, collations) stays keyed on the
 * dialect, inside `src/storage` and `schema/`.
 *
 * Each flag must hold for every server a dialect serves (the `mysql` dialect serves MySQL 8 and
 * MariaDB alike), and each is checked against the real databases by
 * `test/storage/capabilities.test.ts`.
 *
 * @example
 * // One round trip where the database allows it, two where it does not.
 * const update = db.updateTable('leases').set({ claimed_by: tag }).where('id', 'in', ids)
 * const rows = storage.capabilities.returning
 *   ? await update.returningAll().execute()
 *   : (await update.execute(), await db.selectFrom('leases').selectAll().where('claimed_by', '=', tag).execute())
 */
export interface StorageCapabilities {
  /**
   * `UPDATE`, `INSERT` and `DELETE ... RETURNING` hand back the rows a write touched, in the same
   * round trip. PostgreSQL: yes. SQLite: yes (3.35+; better-sqlite3 bundles a newer one).
   * MySQL/MariaDB: no. MySQL has no `RETURNING` at all; MariaDB has `INSERT`, `REPLACE` and
   * `DELETE ... RETURNING` since 10.5 but `UPDATE ... RETURNING` only since 13.0 (none in the
   * 10.11 and 11.x LTS series), and a flag that held for some statements only would be a trap.
   */
  returning: boolean
  /**
   * `SELECT ... FOR UPDATE SKIP LOCKED` passes over rows another transaction has locked instead
   * of waiting for them. PostgreSQL (9.5+): yes. MySQL 8 and MariaDB 10.6+: yes. SQLite: no, and
   * not needed: it has no row locks, one writer holds the whole database at a time.
   */
  skipLocked: boolean
  /**
   * DDL (`CREATE TABLE`, `ALTER TABLE`, ...) inside a transaction rolls back with it, so a failed
   * migration leaves nothing half-applied. PostgreSQL and SQLite: yes. MySQL/MariaDB: no, each DDL
   * statement commits the open transaction first. (Kysely's SQLite adapter reports no and runs
   * SQLite migrations outside a transaction; this flag states what the database does.)
   */
  transactionalDdl: boolean
}

/** The capabilities of each storage dialect (see `StorageCapabilities` for the versions). */
export const DIALECT_CAPABILITIES: Readonly<Record<DialectName, Readonly<StorageCapabilities>>> = {
  postgres: { returning: true, skipLocked: true, transactionalDdl: true },
  mysql: { returning: false, skipLocked: true, transactionalDdl: false },
  sqlite: { returning: true, skipLocked: false, transactionalDdl: true },
}
