import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import postgres from 'postgres'
import { migrate } from '../../src/storage/migrate.js'
import { openStorage, type DialectName, type Storage } from '../../src/storage/storage.js'

/** Every storage dialect, for `describe.each(eachDialect)`. */
export const eachDialect = ['sqlite', 'postgres', 'mysql'] as const satisfies readonly DialectName[]

type ServerDialect = Exclude<DialectName, 'sqlite'>

const PREPARE_HINT = 'Start and prepare the test databases with `bash .ci/prepare-services`.'

function env(name: string, fallback: string): string {
  return process.env[name] || fallback
}

/** Where Stint's own storage lives in tests. Server URLs come from `.ci/run`'s variables. */
export function storageUrls(): Record<DialectName, string> {
  return {
    sqlite: 'sqlite::memory:',
    postgres: env('STINT_TEST_PG_URL', 'postgres://stint:stint@127.0.0.1:5432/stint_test'),
    mysql: env('STINT_TEST_MYSQL_URL', 'mysql://stint:stint@127.0.0.1:3306/stint_test'),
  }
}

/** Admin connections to the databases that secrets engines manage users in. */
export function targetUrls(): Record<ServerDialect, string> {
  return {
    postgres: env(
      'STINT_TEST_PG_TARGET_URL',
      'postgres://stint_admin:stint_admin@127.0.0.1:5432/stint_target',
    ),
    mysql: env(
      'STINT_TEST_MYSQL_TARGET_URL',
      'mysql://stint_admin:stint_admin@127.0.0.1:3306/stint_target',
    ),
  }
}

/** A URL without its password, fit for error messages. */
/**
 * A PostgreSQL superuser on the target database, for tests that must set up what the
 * least-privilege admin cannot (a superuser role it may not drop). `.ci/prepare-services` gives
 * the superuser trust on loopback.
 */
export function pgTargetSuperuserUrl(): string {
  return env('STINT_TEST_PG_SUPERUSER_URL', 'postgres://postgres@127.0.0.1:5432/stint_target')
}

export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:@/]*):[^@/]*@/, '$1:***@')
}

/** Wraps a failure to reach a test database server in a message that says how to fix it. */
export function unreachable(what: string, url: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error)
  return new Error(`${what} at ${redactUrl(url)} failed: ${reason}. ${PREPARE_HINT}`, {
    cause: error,
  })
}

export interface FreshStorage {
  storage: Storage
  /** URL of the new database, for opening a second connection to it. */
  url: string
  /** Closes the storage and deletes the database. */
  drop(): Promise<void>
}

/**
 * Opens an empty, migrated storage that no other test sees: a temporary SQLite file, or a new
 * `stint_t_<random>` database on the test PostgreSQL or MariaDB server.
 */
export async function freshStorage(dialect: DialectName): Promise<FreshStorage> {
  const database = dialect === 'sqlite' ? sqliteFile() : await serverDatabase(dialect)
  const storage = openStorage(database.url)
  let dropped = false
  const drop = async () => {
    if (dropped) return
    dropped = true
    await storage.close()
    await database.remove()
  }
  try {
    await migrate(storage)
  } catch (error) {
    await drop()
    throw error
  }
  return { storage, url: database.url, drop }
}

interface TempDatabase {
  url: string
  remove(): Promise<void>
}

function sqliteFile(): TempDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'stint-test-'))
  return {
    url: `sqlite:${join(dir, 'stint.db')}`,
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

async function serverDatabase(dialect: ServerDialect): Promise<TempDatabase> {
  const serverUrl = storageUrls()[dialect]
  const name = `stint_t_${randomBytes(6).toString('hex')}`
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  try {
    await adminStatement(dialect, serverUrl, 'create', name)
  } catch (error) {
    throw unreachable(`creating test database ${name} on ${dialect}`, serverUrl, error)
  }
  return { url: url.toString(), remove: () => adminStatement(dialect, serverUrl, 'drop', name) }
}

async function adminStatement(
  dialect: ServerDialect,
  serverUrl: string,
  action: 'create' | 'drop',
  name: string,
): Promise<void> {
  if (dialect === 'postgres') {
    const sql = postgres(serverUrl, { max: 1, connect_timeout: 10, onnotice: () => {} })
    try {
      await (action === 'create'
        ? sql`CREATE DATABASE ${sql(name)}`
        : sql`DROP DATABASE IF EXISTS ${sql(name)} WITH (FORCE)`)
    } finally {
      await sql.end()
    }
    return
  }
  const connection = await mysql.createConnection({ uri: serverUrl, connectTimeout: 10_000 })
  try {
    const id = connection.escapeId(name)
    await connection.query(
      action === 'create' ? `CREATE DATABASE ${id}` : `DROP DATABASE IF EXISTS ${id}`,
    )
  } finally {
    await connection.end()
  }
}
