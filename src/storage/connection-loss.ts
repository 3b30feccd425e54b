import type {
  CompiledQuery,
  DatabaseConnection,
  Dialect,
  Driver,
  QueryResult,
  TransactionSettings,
} from 'kysely'
/**
 * A storage query failed because Stint's connection to its storage database was lost, or no new
 * one could be opened (the database restarted, failed over, or ended Stint's sessions). The core
 * answers it as a 503 with this message; nothing about the storage (URL, user, host) is in it.
 * `cause` keeps the driver's error for the log. Code that turns other errors into a 4xx passes
 * this one through (`isConnectionLoss`).
 */
export class StorageUnavailableError extends Error {
  constructor(cause?: unknown) {
    super('storage unavailable: the connection to the storage database was lost; retry')
    this.name = 'StorageUnavailableError'
    this.cause = cause
  }
}

// postgres.js's own codes, Node's socket errors, and mysql2's codes for a connection that ended.
const LOST_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
])

/**
 * The error says the storage connection is gone (or cannot be opened), not that the query was
 * wrong: PostgreSQL's SQLSTATE class 08 and 57P01–57P03 (admin shutdown, crash, starting up),
 * 53300 (too many connections), the drivers' connection codes, and mysql2's `fatal` errors.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (err instanceof StorageUnavailableError) return true
  if (typeof err !== 'object' || err === null) return false
  const { code, fatal } = err as { code?: unknown; fatal?: unknown }
  if (typeof code === 'string') {
    if (LOST_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || /^57P0[123]$/.test(code)) {
      return true
    }
    if (code === '53300') return true
  }
  return fatal === true
}

/** A read outside a transaction is retried this often on a fresh connection after a loss. */
const READ_RETRIES = 2

/**
 * Wraps a dialect so that a lost storage connection costs only the queries that used it:
 * - a lost connection surfaces as {@link StorageUnavailableError} (a 503), never as the driver's
 *   error (a 500);
 * - a `SELECT` outside a transaction is retried on a fresh connection (it changes nothing, so
 *   running it again is safe); writes are not, since one may have committed before the loss;
 * - a rollback on a lost connection succeeds (the server rolled the transaction back when the
 *   session ended), so the error that ended the transaction is the one the caller sees.
 */
export function survivingConnectionLoss(dialect: Dialect): Dialect {
  return {
    createAdapter: () => dialect.createAdapter(),
    createDriver: () => new LossAwareDriver(dialect.createDriver()),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createQueryCompiler: () => dialect.createQueryCompiler(),
  }
}

const unavailable = (err: unknown) =>
  err instanceof StorageUnavailableError ? err : new StorageUnavailableError(err)

async function translated<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    throw isConnectionLoss(err) ? unavailable(err) : err
  }
}

class LossAwareDriver implements Driver {
  #inner: Driver
  constructor(inner: Driver) {
    this.#inner = inner
  }

  init(): Promise<void> {
    return this.#inner.init()
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const inner = await translated(() => this.#inner.acquireConnection())
    return new LossAwareConnection(this.#inner, inner)
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const c = connection as LossAwareConnection
    c.inTransaction = true
    await translated(() => this.#inner.beginTransaction(c.inner, settings))
  }

  async commitTransaction(connection: DatabaseConnection) {
    const c = connection as LossAwareConnection
    try {
      await translated(() => this.#inner.commitTransaction(c.inner))
    } finally {
      c.inTransaction = false
    }
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    const c = connection as LossAwareConnection
    try {
      await this.#inner.rollbackTransaction(c.inner)
    } catch (err) {
      if (!isConnectionLoss(err)) throw err
    } finally {
      c.inTransaction = false
    }
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection((connection as LossAwareConnection).inner)
  }

  destroy(): Promise<void> {
    return this.#inner.destroy()
  }
}

class LossAwareConnection implements DatabaseConnection {
  inTransaction = false
  readonly inner: DatabaseConnection
  #driver: Driver
  constructor(driver: Driver, inner: DatabaseConnection) {
    this.#driver = driver
    this.inner = inner
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query)
    } catch (err) {
      if (!isConnectionLoss(err)) throw err
      if (this.inTransaction || query.query.kind !== 'SelectQueryNode') throw unavailable(err)
      return this.#retryRead<R>(query, err)
    }
  }

  async #retryRead<R>(query: CompiledQuery, first: unknown): Promise<QueryResult<R>> {
    let last = first
    for (let i = 0; i < READ_RETRIES; i++) {
      let fresh: DatabaseConnection | undefined
      try {
        fresh = await this.#driver.acquireConnection()
        return await fresh.executeQuery<R>(query)
      } catch (err) {
        if (!isConnectionLoss(err)) throw err
        last = err
      } finally {
        if (fresh) await this.#driver.releaseConnection(fresh)
      }
    }
    throw unavailable(last)
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize)
  }
}
