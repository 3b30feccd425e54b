import {
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely'
import { createRequire } from 'node:module'
import type Postgres from 'postgres'
import type { Options, PostgresType, Sql } from 'postgres'

import { StorageUnavailableError } from './connection-loss.js'

// Loaded on first use: a node on SQLite storage (dev mode) never needs it, and it costs start-up.
let postgresJs: typeof Postgres | undefined
const loadPostgres = () =>
  (postgresJs ??= createRequire(import.meta.url)('postgres') as typeof Postgres)

export interface PostgresStorageOptions {
  /** Connections at most (one postgres.js client each). */
  max: number
  /** postgres.js options every client gets (types, notices, timeouts). */
  client: Omit<Options<Record<string, PostgresType>>, 'max' | 'onclose' | 'max_lifetime'>
  /** A connection idle past this age is replaced at its next use (postgres.js: 30–60 min). */
  lifetimeMs?: number
}

/**
 * Kysely over postgres.js for Stint's storage, built so that a lost connection costs only the
 * queries that were using it.
 *
 * Why not `kysely-postgres-js`: it reserves a postgres.js connection for every query. When
 * PostgreSQL ends that session, postgres.js (3.4.x) still sends the reservation's next query
 * (a transaction's next statement, or its `ROLLBACK`) to the connection whose socket is gone, and
 * throws `TypeError: Cannot read properties of null (reading 'write')` from a `setImmediate` in
 * `connection.js` (`nextWrite`): an uncaught exception, the process exits. And `release()` puts the
 * closed connection back into the pool, where later queries keep failing.
 *
 * Here no connection is ever reserved. Each connection is its own postgres.js client (`max: 1`)
 * in a slot; a query goes through the client's own queue, which reconnects by itself and never
 * writes to a dead socket. A transaction holds a slot (no other query is sent there until it
 * ends) and runs its statements through the same queue; `onclose` bumps the slot's generation, so
 * a transaction whose session ended is refused before another statement is sent (it would run
 * outside the transaction on the new session). A client that lost its connection is thrown away
 * and the slot opens a new one on its next use, so no state of the old one (buffered writes, a
 * stale timer) carries over.
 */
export function postgresStorageDialect(url: string, options: PostgresStorageOptions): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new SlotDriver(new Slots(url, options)),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  }
}

interface Slot {
  client: Sql | undefined
  openedAt: number
  /** Bumped whenever the slot's connection ends: a transaction begun before is over. */
  generation: number
  /** Queries sent on the slot and not answered yet. */
  pending: number
  /** Held by a transaction: only its statements go here. */
  held: boolean
}

class Slots {
  #url: string
  #options: PostgresStorageOptions['client']
  #lifetimeMs: number
  #slots: Slot[]
  #waiting: Array<() => void> = []
  #closed = false

  constructor(url: string, options: PostgresStorageOptions) {
    this.#url = url
    this.#options = options.client
    this.#lifetimeMs = options.lifetimeMs ?? 60_000 * (30 + Math.random() * 30)
    this.#slots = Array.from({ length: Math.max(1, options.max) }, () => ({
      client: undefined,
      openedAt: 0,
      generation: 0,
      pending: 0,
      held: false,
    }))
  }

  /** Runs one query on `slot`, or on the least busy slot no transaction holds. */
  async query(compiled: CompiledQuery, slot?: Slot) {
    const target = slot ?? (await this.#free())
    const client = this.#client(target)
    target.pending++
    try {
      return await client.unsafe(compiled.sql, [...compiled.parameters] as never[])
    } finally {
      target.pending--
    }
  }

  /** A slot for a transaction: no other query goes there until {@link release}. */
  async hold(): Promise<Slot> {
    const slot = await this.#free()
    slot.held = true
    return slot
  }

  release(slot: Slot): void {
    slot.held = false
    // Everyone waiting looks again; a transaction that finds nothing free waits on.
    for (const wake of this.#waiting.splice(0)) wake()
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const wake of this.#waiting.splice(0)) wake()
    await Promise.all(
      this.#slots.map((slot) => {
        const client = slot.client
        slot.client = undefined
        return client?.end()
      }),
    )
  }

  /** The least busy slot no transaction holds; waits while transactions hold them all. */
  async #free(): Promise<Slot> {
    for (;;) {
      if (this.#closed) throw new Error('storage is closed')
      let best: Slot | undefined
      for (const slot of this.#slots) {
        if (!slot.held && (!best || slot.pending < best.pending)) best = slot
      }
      if (best) return best
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    }
  }

  #client(slot: Slot): Sql {
    if (slot.client && !slot.held && slot.pending === 0) {
      if (Date.now() - slot.openedAt > this.#lifetimeMs) this.#retire(slot, slot.client, false)
    }
    if (slot.client) return slot.client
    const client: Sql = loadPostgres()(this.#url, {
      ...this.#options,
      max: 1,
      // Ours to decide (see `#client`): postgres.js would end a connection mid-transaction.
      max_lifetime: null,
      onclose: () => {
        if (slot.client !== client) return
        slot.generation++
        this.#retire(slot, client, true)
      },
    })
    slot.client = client
    slot.openedAt = Date.now()
    return client
  }

  #retire(slot: Slot, client: Sql, lost: boolean): void {
    if (slot.client === client) slot.client = undefined
    // A lost client may still try its queued queries on a new session: end it now, they fail
    // (and reads are retried elsewhere). An aged one is idle: let it close cleanly.
    void client.end(lost ? { timeout: 0 } : {}).catch(() => {})
  }
}

class SlotDriver implements Driver {
  #slots: Slots
  constructor(slots: Slots) {
    this.#slots = slots
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new SlotConnection(this.#slots)
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const c = connection as SlotConnection
    const slot = await this.#slots.hold()
    c.holding = { slot, generation: slot.generation }
    let begin = 'begin'
    if (settings.isolationLevel || settings.accessMode) {
      begin = 'start transaction'
      if (settings.isolationLevel) begin += ` isolation level ${settings.isolationLevel}`
      if (settings.accessMode) begin += ` ${settings.accessMode}`
    }
    await c.executeQuery(CompiledQuery.raw(begin))
  }

  async commitTransaction(connection: DatabaseConnection) {
    await (connection as SlotConnection).executeQuery(CompiledQuery.raw('commit'))
    this.#unhold(connection as SlotConnection)
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    const c = connection as SlotConnection
    // The session ended, and the server rolled the transaction back with it.
    if (c.holding && c.holding.slot.generation === c.holding.generation) {
      await c.executeQuery(CompiledQuery.raw('rollback'))
    }
    this.#unhold(c)
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const c = connection as SlotConnection
    if (!c.holding) return
    const { slot, generation } = c.holding
    this.#unhold(c)
    // Released mid-transaction (its commit or rollback failed): end that session rather than
    // hand an open transaction to the next query.
    if (slot.generation === generation) {
      slot.generation++
      if (slot.client) void slot.client.end({ timeout: 0 }).catch(() => {})
      slot.client = undefined
    }
  }

  #unhold(c: SlotConnection): void {
    if (!c.holding) return
    this.#slots.release(c.holding.slot)
    c.holding = undefined
  }

  destroy(): Promise<void> {
    return this.#slots.close()
  }
}

class SlotConnection implements DatabaseConnection {
  holding: { slot: Slot; generation: number } | undefined
  #slots: Slots
  constructor(slots: Slots) {
    this.#slots = slots
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const holding = this.holding
    if (holding && holding.slot.generation !== holding.generation) {
      // Sending it would run it outside the transaction, on a new session.
      throw new StorageUnavailableError(new Error('the transaction lost its connection'))
    }
    const result = await this.#slots.query(compiled, holding?.slot)
    const { command, count } = result
    return {
      numAffectedRows:
        command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE'
          ? BigInt(count)
          : undefined,
      rows: Array.from(result) as R[],
    }
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on PostgreSQL storage')
  }
}
