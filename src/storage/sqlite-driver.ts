import {
  CompiledQuery,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely'

/** What the driver needs of a better-sqlite3 database (its `prepare` may cache statements). */
export interface SqliteDatabase {
  prepare(sql: string): {
    reader: boolean
    all(parameters: readonly unknown[]): unknown[]
    run(parameters: readonly unknown[]): { changes: number; lastInsertRowid: number | bigint }
    iterate(parameters: readonly unknown[]): IterableIterator<unknown>
  }
  close(): void
}

/**
 * Kysely over better-sqlite3 for Stint's storage: Kysely's own adapter, compiler and
 * introspector, with a driver whose single connection is handed over first come, first served.
 *
 * Why not Kysely's `SqliteDialect`: its connection mutex wakes every waiter on each release and
 * lets them race for the lock, so with n requests waiting each query costs O(n) wake-ups (O(n²)
 * in all). Under 32 concurrent reads that was most of a KV read's CPU; at a few thousand in flight
 * a read cost milliseconds. Here a release hands the connection to the next waiter only.
 * better-sqlite3 runs each statement synchronously, so the lock only ever spans a transaction.
 */
export function sqliteStorageDialect(database: SqliteDatabase): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new FifoSqliteDriver(database),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  }
}

class FifoSqliteDriver implements Driver {
  readonly #connection: SqliteConnection
  readonly #database: SqliteDatabase
  #held = false
  readonly #waiting: Array<() => void> = []

  constructor(database: SqliteDatabase) {
    this.#database = database
    this.#connection = new SqliteConnection(database)
  }

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    if (!this.#held) {
      this.#held = true
      return Promise.resolve(this.#connection)
    }
    return new Promise((resolve) => this.#waiting.push(() => resolve(this.#connection)))
  }

  async releaseConnection(): Promise<void> {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#held = false
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }

  async destroy(): Promise<void> {
    this.#database.close()
  }
}

class SqliteConnection implements DatabaseConnection {
  readonly #db: SqliteDatabase
  constructor(db: SqliteDatabase) {
    this.#db = db
  }

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const stmt = this.#db.prepare(compiled.sql)
    if (stmt.reader) return Promise.resolve({ rows: stmt.all(compiled.parameters) as R[] })
    const { changes, lastInsertRowid } = stmt.run(compiled.parameters)
    return Promise.resolve({
      numAffectedRows: BigInt(changes),
      insertId: BigInt(lastInsertRowid),
      rows: [],
    })
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiled.query)) {
      throw new Error('SQLite storage streams only select queries')
    }
    for (const row of this.#db.prepare(compiled.sql).iterate(compiled.parameters)) {
      yield { rows: [row as R] }
    }
  }
}
