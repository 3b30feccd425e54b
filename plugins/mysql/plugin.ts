import { createRequire } from 'node:module'
import type mysql from 'mysql2/promise'

import { sanitized } from '../sanitize.js'
import { BatchRefusedError, deleteUsersInBatch } from '../batch-delete.js'
import type {
  ConnectionConfig,
  CreateUserRequest,
  CreateUserResponse,
  DatabaseConnection,
  DatabasePlugin,
  DeleteUserRequest,
  DeleteUserResponse,
  DeleteUsersRequest,
  DeleteUsersResponse,
  PluginDialect,
  RotateRootRequest,
  RotateRootResponse,
  SessionsRequest,
  SessionsResponse,
  UpdateUserRequest,
  UpdateUserResponse,
  VerifyResponse,
} from '../contract.js'
import { PluginInputError } from '../plugin-input-error.js'
import {
  fillConnectionUrl,
  parseSqlConfig,
  redactCredentials,
  usesPlaceholders,
  withTimeout,
} from '../sql-helpers.js'

// Loaded on first use: a node on SQLite storage (dev mode) never needs it, and it costs start-up.
let mysqlDriver: typeof mysql | undefined
const loadMysql = () =>
  (mysqlDriver ??= createRequire(import.meta.url)('mysql2/promise') as typeof mysql)

export const mysqlDialect: PluginDialect = {
  identifierQuotes: ['`'],
  backslashEscapes: true,
  dollarQuoting: false,
  maxUsernameLength: 32,
  defaultUsernameTemplate:
    '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}',
}

/** Vault's mysql-legacy/-rds/-aurora names are limited to 16 characters. */
export const mysqlLegacyDialect: PluginDialect = {
  ...mysqlDialect,
  maxUsernameLength: 16,
  defaultUsernameTemplate:
    '{{ printf "v-%s-%s" (.RoleName | truncate 4) (random 20) | truncate 16 }}',
}

/**
 * MySQL and MariaDB through mysql2. DDL is not transactional there, so a failed creation runs the
 * rollback statements (default `DROP USER IF EXISTS`). The default revocation locks the account,
 * kills its connections (`information_schema.processlist` + `KILL CONNECTION`), then drops it.
 * MySQL has no login expiry: the lease alone ends the credential.
 */
export function createMysqlPlugin(dialect: PluginDialect = mysqlDialect): DatabasePlugin {
  return {
    name: 'mysql',
    dialect,
    parseConfig(raw) {
      const config = parseSqlConfig(raw)
      connectionOptions(config, 'x')
      return config
    },
    connect: (config) => new MysqlConnection(config),
    redactUrl: redactCredentials,
  }
}

export const mysqlPlugin = createMysqlPlugin()

/**
 * Accepts `mysql://user:pass@host:3306/db` (also `mariadb://`) and Vault's Go DSN form
 * `user:pass@tcp(host:3306)/db`.
 */
function connectionOptions(config: ConnectionConfig, password: string): mysql.PoolOptions {
  const filled = fillConnectionUrl(config, password)
  let host: string
  let port = 3306
  let user = ''
  let pass = ''
  let database: string | undefined
  if (/^(mysql|mariadb):\/\//.test(filled)) {
    let url: URL
    try {
      url = new URL(filled.replace(/^mariadb:/, 'mysql:'))
    } catch {
      throw new PluginInputError('connection_url is not a valid URL')
    }
    host = url.hostname
    if (url.port) port = Number(url.port)
    user = decodeURIComponent(url.username)
    pass = decodeURIComponent(url.password)
    database = url.pathname.replace(/^\//, '') || undefined
  } else {
    const m = /^(?:([^:@]*)(?::(.*))?@)?(?:tcp\(([^)]*)\))?\/([^?]*)(?:\?.*)?$/.exec(filled)
    if (!m)
      throw new PluginInputError(
        'connection_url must be mysql://... or user:pass@tcp(host:port)/db',
      )
    user = decodeURIComponent(m[1] ?? '')
    pass = decodeURIComponent(m[2] ?? '')
    const address = m[3] || '127.0.0.1:3306'
    const colon = address.lastIndexOf(':')
    host = colon > 0 ? address.slice(0, colon) : address
    if (colon > 0) port = Number(address.slice(colon + 1))
    database = m[4] || undefined
  }
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PluginInputError('connection_url has no valid host and port')
  }
  if (!usesPlaceholders(config.connectionUrl)) {
    if (config.username) user = config.username
    if (password) pass = password
  }
  return {
    host,
    port,
    user,
    password: pass,
    database,
    connectionLimit: config.maxOpenConnections,
    connectTimeout: config.connectTimeout * 1000,
    multipleStatements: false,
    enableKeepAlive: true,
  }
}

/** ER_CANNOT_USER: ALTER/DROP USER on an account that does not exist. */
const NO_SUCH_USER = 1396
/** ER_NO_SUCH_THREAD: the connection ended before KILL reached it. */
const NO_SUCH_THREAD = 1094

class MysqlConnection implements DatabaseConnection {
  #config: ConnectionConfig
  #pool: mysql.Pool | undefined

  constructor(config: ConnectionConfig) {
    this.#config = config
  }

  get #db(): mysql.Pool {
    this.#pool ??= loadMysql().createPool(connectionOptions(this.#config, this.#config.password))
    return this.#pool
  }

  async #run<T>(
    what: string,
    fn: () => Promise<T>,
    secrets: Array<string | undefined> = [],
  ): Promise<T> {
    return sanitized(what, fn, [this.#config.password, ...secrets])
  }

  async sessions(req: SessionsRequest): Promise<SessionsResponse> {
    const [rows] = await this.#run('counting sessions', () =>
      this.#db.query<mysql.RowDataPacket[]>(
        'SELECT count(*) AS n FROM information_schema.processlist WHERE user = ?',
        [req.username],
      ),
    )
    return { count: Number(rows[0]?.n ?? 0) }
  }

  async verify(): Promise<VerifyResponse> {
    const seconds = this.#config.connectTimeout
    try {
      await this.#run('connecting to MySQL', () =>
        withTimeout(this.#db.query('SELECT 1'), seconds * 1000, `no answer within ${seconds}s`),
      )
    } catch (err) {
      await this.close().catch(() => {})
      throw err
    }
    return {}
  }

  async createUser(req: CreateUserRequest): Promise<CreateUserResponse> {
    if (req.statements.length === 0) throw new PluginInputError('creation statements are required')
    await this.#run(
      'creating user',
      async () => {
        const conn = await this.#db.getConnection()
        try {
          for (const statement of req.statements) await conn.query(statement)
        } catch (err) {
          const rollback =
            req.rollbackStatements.length > 0
              ? req.rollbackStatements
              : req.render([`DROP USER IF EXISTS '{{name}}'@'%'`])
          for (const statement of rollback) await conn.query(statement).catch(() => {})
          throw err
        } finally {
          conn.release()
        }
      },
      [req.password],
    )
    return {}
  }

  async updateUser(req: UpdateUserRequest): Promise<UpdateUserResponse> {
    const statements = [...(req.expiration?.statements ?? [])]
    if (req.password) {
      statements.push(
        ...(req.password.statements.length > 0
          ? req.password.statements
          : req.render([`ALTER USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`])),
      )
    }
    await this.#run(
      'updating user',
      async () => {
        for (const statement of statements) await this.#db.query(statement)
      },
      [req.password?.value],
    )
    return {}
  }

  async deleteUser(req: DeleteUserRequest): Promise<DeleteUserResponse> {
    await this.#run('revoking user', async () => {
      const db = this.#db
      // Lock first so nobody logs in between the KILLs and the DROP.
      await ignore(
        db.query(req.render([`ALTER USER '{{name}}'@'%' ACCOUNT LOCK`])[0]!),
        NO_SUCH_USER,
      )
      await this.#killSessions(req.username)
      const statements =
        req.statements.length > 0
          ? req.statements
          : req.render([`DROP USER IF EXISTS '{{name}}'@'%'`])
      for (const statement of statements) await ignore(db.query(statement), NO_SUCH_USER)
      // A session that was mid-handshake during the first sweep.
      await this.#killSessions(req.username)
    })
    return {}
  }

  /**
   * The default revocation for many users at once: the same steps as `deleteUser`, each over the
   * whole list (`ALTER USER IF EXISTS ... ACCOUNT LOCK`, kill their connections,
   * `DROP USER IF EXISTS u1@'%', u2@'%'`, kill again). Users with revocation statements, and every
   * user of a batch the server refuses, go through `deleteUser` one at a time.
   */
  async deleteUsers(req: DeleteUsersRequest): Promise<DeleteUsersResponse> {
    return deleteUsersInBatch(
      req.users,
      (req) => this.deleteUser(req),
      (names) => this.#dropUsers(names),
    )
  }

  async #dropUsers(usernames: string[]): Promise<void> {
    let refused = false
    try {
      await this.#run('revoking users', async () => {
        try {
          const db = this.#db
          // Each account is a bound value: mysql2 escapes it into 'name'@'%'.
          const accounts = usernames.map(() => `?@'%'`).join(', ')
          await db.query(`ALTER USER IF EXISTS ${accounts} ACCOUNT LOCK`, usernames)
          await this.#killSessions(usernames)
          await db.query(`DROP USER IF EXISTS ${accounts}`, usernames)
          await this.#killSessions(usernames)
        } catch (err) {
          refused = typeof (err as { sqlState?: unknown }).sqlState === 'string'
          throw err
        }
      })
    } catch (err) {
      throw refused ? new BatchRefusedError((err as Error).message) : err
    }
  }

  async #killSessions(usernames: string | string[]): Promise<void> {
    const [rows] = await this.#db.query<mysql.RowDataPacket[]>(
      'SELECT id FROM information_schema.processlist WHERE user IN (?) AND id <> CONNECTION_ID()',
      [typeof usernames === 'string' ? [usernames] : usernames],
    )
    for (const row of rows) {
      await ignore(this.#db.query('KILL CONNECTION ?', [Number(row.id)]), NO_SUCH_THREAD)
    }
  }

  async rotateRoot(req: RotateRootRequest): Promise<RotateRootResponse> {
    await this.#run(
      'rotating root credentials',
      async () => {
        const conn = await this.#db.getConnection()
        try {
          if (req.statements.length > 0) {
            for (const statement of req.statements) await conn.query(statement)
          } else {
            // Changing one's own password needs no privilege this way (ALTER USER needs CREATE USER).
            const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v')
            const mariadb = String(rows[0]?.v ?? '').includes('MariaDB')
            await conn.query(mariadb ? 'SET PASSWORD = PASSWORD(?)' : 'SET PASSWORD = ?', [
              req.password,
            ])
          }
        } finally {
          conn.release()
        }
        const probe = await loadMysql().createConnection({
          ...connectionOptions(this.#config, req.password),
          connectionLimit: undefined,
          enableKeepAlive: undefined,
        } as mysql.ConnectionOptions)
        try {
          await probe.query('SELECT 1')
        } finally {
          await probe.end()
        }
      },
      [req.password],
    )
    return {}
  }

  async close(): Promise<void> {
    const pool = this.#pool
    this.#pool = undefined
    await pool?.end()
  }
}

async function ignore(query: Promise<unknown>, errno: number): Promise<void> {
  try {
    await query
  } catch (err) {
    if ((err as { errno?: number }).errno !== errno) throw err
  }
}
