import { createRequire } from 'node:module'
import type postgres from 'postgres'

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

// postgres.js, loaded on the first connection to a target: a node that never opens one (dev
// mode on SQLite) does not pay for it at start-up.
let postgresJs: typeof postgres | undefined
const loadPostgres = () =>
  (postgresJs ??= createRequire(import.meta.url)('postgres') as typeof postgres)

export const postgresDialect: PluginDialect = {
  identifierQuotes: ['"'],
  backslashEscapes: false,
  dollarQuoting: true,
  maxUsernameLength: 63,
  defaultUsernameTemplate:
    '{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}',
}

/**
 * PostgreSQL through postgres.js. Creation statements run in one transaction. The default
 * revocation ends the user for real: NOLOGIN, terminate its sessions, REASSIGN/DROP OWNED (after
 * the admin grants itself membership, which a least-privilege CREATEROLE admin needs on PG 15),
 * then DROP ROLE. A missing role is success.
 */
export const postgresPlugin: DatabasePlugin = {
  name: 'postgresql',
  dialect: postgresDialect,
  parseConfig(raw) {
    const config = parseSqlConfig(raw)
    if (!/^postgres(ql)?:\/\//.test(config.connectionUrl)) {
      throw new PluginInputError('connection_url must start with postgres:// or postgresql://')
    }
    try {
      new URL(fillConnectionUrl(config, 'x'))
    } catch {
      throw new PluginInputError('connection_url is not a valid URL')
    }
    return config
  },
  connect: (config) => new PostgresConnection(config),
  redactUrl: redactCredentials,
}

type Sql = postgres.Sql<Record<string, never>>

class PostgresConnection implements DatabaseConnection {
  #config: ConnectionConfig
  #sql: Sql | undefined

  constructor(config: ConnectionConfig) {
    this.#config = config
  }

  #secrets(extra: Array<string | undefined> = []): Array<string | undefined> {
    return [this.#config.password, ...extra]
  }

  #open(password = this.#config.password, max = this.#config.maxOpenConnections): Sql {
    const url = fillConnectionUrl(this.#config, password)
    const credentials = usesPlaceholders(this.#config.connectionUrl)
      ? {}
      : {
          ...(this.#config.username ? { username: this.#config.username } : {}),
          ...(password ? { password } : {}),
        }
    return loadPostgres()(url, {
      ...credentials,
      max,
      connect_timeout: this.#config.connectTimeout,
      idle_timeout: 60,
      onnotice: () => {},
      // Prepared statements would be cached per connection for one-off DDL; not worth it.
      prepare: false,
    }) as unknown as Sql
  }

  get #pool(): Sql {
    this.#sql ??= this.#open()
    return this.#sql
  }

  async #run<T>(
    what: string,
    fn: () => Promise<T>,
    secrets: Array<string | undefined> = [],
  ): Promise<T> {
    return sanitized(what, fn, this.#secrets(secrets))
  }

  async sessions(req: SessionsRequest): Promise<SessionsResponse> {
    const rows = await this.#run(
      'counting sessions',
      () =>
        this.#pool`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ${req.username}`,
    )
    return { count: Number(rows[0]?.n ?? 0) }
  }

  async verify(): Promise<VerifyResponse> {
    const seconds = this.#config.connectTimeout
    try {
      await this.#run('connecting to PostgreSQL', () =>
        withTimeout(this.#pool`SELECT 1`, seconds * 1000, `no answer within ${seconds}s`),
      )
    } catch (err) {
      await this.close().catch(() => {})
      throw err
    }
    return {}
  }

  async createUser(req: CreateUserRequest): Promise<CreateUserResponse> {
    if (req.statements.length === 0) throw new PluginInputError('creation statements are required')
    await this.#run('creating user', () => inTransaction(this.#pool, req.statements), [
      req.password,
    ])
    return {}
  }

  async updateUser(req: UpdateUserRequest): Promise<UpdateUserResponse> {
    const statements: string[] = []
    if (req.expiration) {
      statements.push(
        ...(req.expiration.statements.length > 0
          ? req.expiration.statements
          : req.render([`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`])),
      )
    }
    if (req.password) {
      statements.push(
        ...(req.password.statements.length > 0
          ? req.password.statements
          : req.render([`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`])),
      )
    }
    if (statements.length === 0) return {}
    await this.#run(
      'updating user',
      () =>
        this.#pool.begin(async (tx) => {
          for (const statement of statements) await tx.unsafe(statement)
        }),
      [req.password?.value],
    )
    return {}
  }

  async deleteUser(req: DeleteUserRequest): Promise<DeleteUserResponse> {
    const sql = this.#pool
    const role = quoteRole(req.username)
    const name = quoteLiteral(req.username)
    await this.#run('revoking user', async () => {
      // Committed on its own first, so nobody logs in between the terminations and the drop.
      // A missing role (42704) means there is nothing left to revoke.
      if (!(await existed(sql.unsafe(`ALTER ROLE ${role} NOLOGIN`)))) return
      const terminate = `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${name} AND pid <> pg_backend_pid()`
      if (req.statements.length > 0) {
        await sql.unsafe(terminate)
        await inTransaction(sql, req.statements)
        return
      }
      // One round trip (one implicit transaction). PG 15: REASSIGN/DROP OWNED need the admin
      // to hold the role's privileges, hence the GRANT.
      const batch = [
        terminate,
        `GRANT ${role} TO CURRENT_USER`,
        `REASSIGN OWNED BY ${role} TO CURRENT_USER`,
        `DROP OWNED BY ${role}`,
        `DROP ROLE IF EXISTS ${role}`,
      ]
      await existed(sql.unsafe(batch.join('; ')).simple())
    })
    return {}
  }

  /**
   * The default revocation for many users at once: the same steps as `deleteUser`, each over the
   * whole list (NOLOGIN committed first, then one transaction that terminates their sessions,
   * reassigns and drops what they own, and drops the roles). Users with revocation statements,
   * and every user of a batch the server refuses, go through `deleteUser` one at a time.
   */
  async deleteUsers(req: DeleteUsersRequest): Promise<DeleteUsersResponse> {
    return deleteUsersInBatch(
      req.users,
      (req) => this.deleteUser(req),
      (names) => this.#dropRoles(names),
    )
  }

  async #dropRoles(usernames: string[]): Promise<void> {
    const sql = this.#pool
    let refused = false
    try {
      await this.#run(
        'revoking users',
        async () => {
          try {
            // Roles already gone are revoked; the rest are dropped together.
            const found = await sql<{ rolname: string }[]>`
              SELECT rolname FROM pg_roles WHERE rolname = ANY(${usernames})`
            const names = found.map((r) => r.rolname)
            if (names.length === 0) return
            const roles = names.map(quoteRole).join(', ')
            // Committed on its own first, so nobody logs in between the terminations and the drop.
            await sql
              .unsafe(names.map((n) => `ALTER ROLE ${quoteRole(n)} NOLOGIN`).join('; '))
              .simple()
            // One transaction, pipelined. PG 15: REASSIGN/DROP OWNED need the admin to hold the
            // roles' privileges, hence the GRANT.
            await sql.begin((tx) => [
              tx`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(${names}) AND pid <> pg_backend_pid()`,
              tx.unsafe(`GRANT ${roles} TO CURRENT_USER`),
              tx.unsafe(`REASSIGN OWNED BY ${roles} TO CURRENT_USER`),
              tx.unsafe(`DROP OWNED BY ${roles}`),
              tx.unsafe(`DROP ROLE IF EXISTS ${roles}`),
            ])
          } catch (err) {
            refused = err instanceof loadPostgres().PostgresError
            throw err
          }
        },
        usernames,
      )
    } catch (err) {
      throw refused ? new BatchRefusedError((err as Error).message) : err
    }
  }

  async rotateRoot(req: RotateRootRequest): Promise<RotateRootResponse> {
    if (!this.#config.username)
      throw new PluginInputError('rotate-root needs a username in the config')
    await this.#run(
      'rotating root credentials',
      async () => {
        const sql = this.#pool
        if (req.statements.length > 0) {
          await sql.begin(async (tx) => {
            for (const statement of req.statements) await tx.unsafe(statement)
          })
        } else {
          const literal = quoteLiteral(req.password)
          await sql`ALTER ROLE ${sql(this.#config.username)} WITH PASSWORD ${sql.unsafe(literal)}`
        }
        const probe = this.#open(req.password, 1)
        try {
          await probe`SELECT 1`
        } finally {
          await probe.end({ timeout: 5 })
        }
      },
      [req.password],
    )
    return {}
  }

  async close(): Promise<void> {
    const sql = this.#sql
    this.#sql = undefined
    await sql?.end({ timeout: 1 })
  }
}

/**
 * A role name as a quoted identifier (quote characters doubled). Not postgres.js `sql(name)`: it
 * reads dots as schema separators (`"a"."b"`), and generated role names may contain dots.
 */
function quoteRole(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

/** A string literal (quotes doubled; PostgreSQL's standard strings take backslashes as is). */
function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}

/** Runs statements atomically; a single statement needs no BEGIN/COMMIT round trips. */
async function inTransaction(sql: Sql, statements: string[]): Promise<void> {
  if (statements.length === 1) {
    await sql.unsafe(statements[0]!)
    return
  }
  await sql.begin(async (tx) => {
    for (const statement of statements) await tx.unsafe(statement)
  })
}

/**
 * Runs a query; false when it failed with SQLSTATE 42704 (undefined object): the role is gone,
 * which for a revocation is success.
 */
async function existed(query: Promise<unknown>): Promise<boolean> {
  try {
    await query
    return true
  } catch (err) {
    if ((err as { code?: string }).code === '42704') return false
    throw err
  }
}
