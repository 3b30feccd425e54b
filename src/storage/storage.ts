import { Kysely, MysqlDialect, sql, type Insertable } from 'kysely'
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { Worker } from 'node:worker_threads'
import { DIALECT_CAPABILITIES, type StorageCapabilities } from './capabilities.js'
import { survivingConnectionLoss } from './connection-loss.js'
import { sqliteStorageDialect } from './sqlite-driver.js'
import { postgresStorageDialect } from './postgres-driver.js'
import type { Tables } from './tables.js'
import type * as Mysql2 from 'mysql2'

export type { DialectName } from '../../schema/column-types.js'
import type { DialectName } from '../../schema/column-types.js'
export type { StorageCapabilities } from './capabilities.js'

/** Stint's own storage: a typed Kysely instance plus what differs between dialects. */
export interface Storage {
  db: Kysely<Tables>
  /**
   * Which SQL this is. For SQL syntax inside `src/storage` and `schema/` (upsert forms, column
   * types) and for display; code that needs a feature reads `capabilities` instead.
   */
  dialect: DialectName
  /** What the database can do (`RETURNING`, `SKIP LOCKED`, transactional DDL). */
  capabilities: StorageCapabilities
  /** Path of the SQLite file (undefined for in-memory and server dialects). */
  file?: string
  /**
   * SQLite files only: runs a checkpoint now on the background checkpointer (see
   * `startCheckpointer`) and returns SQLite's answer: WAL frames in the log and frames copied back.
   */
  checkpoint?(): Promise<{ busy: boolean; log: number; checkpointed: number }>
  close(): Promise<void>
}

/**
 * Opens storage from a URL:
 * - `sqlite:/path/to/stint.db`, `sqlite::memory:` or a bare file path (the embedded default)
 * - `postgres://user:pass@host:5432/db` (also `postgresql://`)
 * - `mysql://user:pass@host:3306/db` (also `mariadb://`)
 */
export function openStorage(url: string): Storage {
  // Server dialects may lose their connections (restart, failover, sessions ended): see
  // connection-loss.ts and postgres-driver.ts for what a request sees then.
  if (/^postgres(ql)?:\/\//.test(url)) {
    const dialect = postgresStorageDialect(url, {
      max: 10,
      client: {
        onnotice: () => {},
        connect_timeout: 10,
        // BIGINT columns hold epoch milliseconds and counters: read them as numbers.
        types: {
          bigint: {
            to: 20,
            from: [20],
            serialize: (x: number) => String(x),
            parse: (x: string) => Number(x),
          },
        },
      },
    })
    const db = new Kysely<Tables>({ dialect: survivingConnectionLoss(dialect) })
    return {
      db,
      dialect: 'postgres',
      capabilities: DIALECT_CAPABILITIES.postgres,
      close: () => db.destroy(),
    }
  }
  if (/^(mysql|mariadb):\/\//.test(url)) {
    // Loaded on first use: a node on SQLite storage (dev mode) never needs it.
    const { createPool } = createRequire(import.meta.url)('mysql2') as typeof Mysql2
    const pool = createPool({
      uri: url.replace(/^mariadb:/, 'mysql:'),
      connectionLimit: 10,
      supportBigNumbers: true,
      bigNumberStrings: false,
      timezone: 'Z',
    })
    const db = new Kysely<Tables>({
      dialect: survivingConnectionLoss(new MysqlDialect({ pool })),
    })
    return {
      db,
      dialect: 'mysql',
      capabilities: DIALECT_CAPABILITIES.mysql,
      close: () => db.destroy(),
    }
  }
  const file = url.replace(/^sqlite:/, '')
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
  const sqlite = new Database(file)
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('busy_timeout = 5000')
  sqlite.pragma('synchronous = NORMAL')
  const checkpointer = file === ':memory:' ? undefined : startCheckpointer(sqlite, file)
  const db = new Kysely<Tables>({
    dialect: sqliteStorageDialect(cachingStatements(sqlite)),
  })
  return {
    db,
    dialect: 'sqlite',
    capabilities: DIALECT_CAPABILITIES.sqlite,
    file: file === ':memory:' ? undefined : file,
    ...(checkpointer ? { checkpoint: () => checkpointer.checkpoint() } : {}),
    close: async () => {
      // The checkpointer's connection first, so closing the main one (the last) still folds the
      // WAL back into the file and removes it.
      await checkpointer?.stop()
      await db.destroy()
    },
  }
}

/** Pages (4 KiB each by default) the WAL may reach before a commit checkpoints by itself. */
const BACKSTOP_PAGES = 10_000
const CHECKPOINT_INTERVAL_MS = 200

/**
 * WAL checkpoints off the request path. SQLite's automatic checkpoint runs inside the commit that
 * pushes the WAL past `wal_autocheckpoint` (1000 pages) and fsyncs there: a write that normally
 * takes tens of microseconds then blocks the event loop for tens of milliseconds (100+ ms seen
 * under load), every few hundred commits. Here a worker thread with its own connection runs a
 * PASSIVE checkpoint every 200 ms instead; PASSIVE never waits for or blocks the writer, and once
 * the WAL is fully copied back the next commit restarts it, so it stays small. Durability is
 * unchanged (same `synchronous`, commits still reach the WAL before they return). The automatic
 * checkpoint stays as a far-off backstop, and returns to SQLite's default if the worker fails.
 */
function startCheckpointer(sqlite: Database.Database, file: string) {
  sqlite.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`)
  const worker = new Worker(CHECKPOINTER_SOURCE, {
    eval: true,
    workerData: {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      file,
      intervalMs: CHECKPOINT_INTERVAL_MS,
    },
  })
  worker.unref()
  let stopped = false
  const waiting: Array<{
    resolve(r: { busy: boolean; log: number; checkpointed: number }): void
    reject(err: Error): void
  }> = []
  const fail = (err: Error) => {
    if (!sqlite.open) return
    sqlite.pragma('wal_autocheckpoint = 1000')
    for (const w of waiting.splice(0)) w.reject(err)
  }
  worker.on('message', (m: { busy: number; log: number; checkpointed: number }) => {
    waiting.shift()?.resolve({ busy: m.busy !== 0, log: m.log, checkpointed: m.checkpointed })
  })
  worker.on('error', (err) => fail(err))
  worker.on('exit', () => {
    if (!stopped) fail(new Error('the SQLite checkpointer stopped'))
  })
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
  return {
    checkpoint: () =>
      new Promise<{ busy: boolean; log: number; checkpointed: number }>((resolve, reject) => {
        if (stopped) return reject(new Error('storage is closed'))
        waiting.push({ resolve, reject })
        worker.postMessage('checkpoint')
      }),
    async stop() {
      if (stopped) return
      stopped = true
      for (const w of waiting.splice(0)) w.reject(new Error('storage is closed'))
      // Unreferenced, the worker would not keep the process alive long enough to finish closing.
      worker.ref()
      worker.postMessage('close')
      await exited
    },
  }
}

/** The checkpointer thread (CommonJS, evaluated by `Worker`): its own connection, PASSIVE only. */
const CHECKPOINTER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.file, { fileMustExist: true })
db.pragma('busy_timeout = 5000')
db.pragma('synchronous = NORMAL')
db.pragma('wal_autocheckpoint = 0')
const run = () => db.pragma('wal_checkpoint(PASSIVE)')[0]
const timer = setInterval(run, workerData.intervalMs)
parentPort.on('message', (message) => {
  if (message === 'checkpoint') parentPort.postMessage(run())
  else if (message === 'close') {
    clearInterval(timer)
    db.close()
    parentPort.close()
  }
})
`

/**
 * better-sqlite3 compiles a statement on every `prepare`; Kysely prepares every query. Keeping
 * compiled statements by SQL text removes that cost from each request. Kysely runs one query at a
 * time on its single SQLite connection, so a cached statement is never used by two at once.
 */
function cachingStatements(sqlite: Database.Database) {
  const statements = new Map<string, Database.Statement>()
  return {
    prepare(text: string) {
      let stmt = statements.get(text)
      if (!stmt) {
        stmt = sqlite.prepare(text)
        // Dynamic SQL (IN lists of varying length) could grow this without bound.
        if (statements.size >= 2000) statements.clear()
        statements.set(text, stmt)
      }
      return stmt
    },
    close() {
      statements.clear()
      sqlite.close()
    },
  }
}

/** Current time in epoch milliseconds (one place, so tests can reason about it). */
export const nowMs = () => Date.now()

/**
 * Inserts a row or updates the given columns when the primary/unique key already exists,
 * in the dialect's own syntax.
 */
export async function upsert<T extends keyof Tables & string>(
  storage: Pick<Storage, 'db' | 'dialect'>,
  table: T,
  values: Record<string, unknown>,
  keys: string[],
  update: string[],
): Promise<void> {
  // Dynamic table and column names: typed loosely here, checked by the callers' own types.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const db = storage.db as unknown as Kysely<any>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const set: any = Object.fromEntries(update.map((c) => [c, values[c]]))
  const insert = db.insertInto(table).values(values)
  if (storage.dialect === 'mysql') {
    await insert.onDuplicateKeyUpdate(set).execute()
  } else {
    await insert.onConflict((oc) => oc.columns(keys as never).doUpdateSet(set)).execute()
  }
}

/**
 * Inserts a row unless one with the same primary/unique key exists (then nothing changes), in the
 * dialect's own syntax: several nodes may create the same row at once, and the first one wins.
 */
export async function insertIfAbsent<T extends keyof Tables & string>(
  storage: Pick<Storage, 'db' | 'dialect'>,
  table: T,
  values: Insertable<Tables[T]>,
  keys: Array<keyof Tables[T] & string>,
): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const db = storage.db as unknown as Kysely<any>
  const insert = db.insertInto(table).values(values as Record<string, unknown>)
  if (storage.dialect === 'mysql') await insert.ignore().execute()
  else await insert.onConflict((oc) => oc.columns(keys as never).doNothing()).execute()
}

/** Tables holding one row per named item of a mount (`mount_id`, `name`): roles and the like. */
type MountScopedTable = {
  [T in keyof Tables]: Tables[T] extends { mount_id: string; name: string } ? T : never
}[keyof Tables]

/** The sorted names of a mount's items in a per-mount table (LIST on roles). */
export async function namesInMount(
  storage: Storage,
  table: MountScopedTable,
  mountId: string,
): Promise<string[]> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const db = storage.db as unknown as Kysely<any>
  const rows = await db
    .selectFrom(table)
    .select('name')
    .where('mount_id', '=', mountId)
    .orderBy('name')
    .execute()
  return rows.map((r: { name: string }) => r.name)
}

export { sql }
