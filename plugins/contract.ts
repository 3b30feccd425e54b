/**
 * The database plugin contract. A plugin knows one kind of target database and nothing else: the
 * engine (`src/engines/database`) generates usernames and passwords, renders statement templates,
 * owns TTLs and leases, and hands the plugin finished, already-escaped SQL plus the values it needs.
 *
 * Every method takes and returns objects so fields can be added without breaking plugins.
 * Errors thrown by a plugin must already be sanitised (no passwords, no DSNs); the engine passes
 * them through `sanitizeMessage` once more before anyone sees them.
 */

/** The connection settings a plugin understands, after validation. Sealed by the barrier at rest. */
export interface ConnectionConfig {
  /** Connection URL with `{{username}}`/`{{password}}` still in place (they are filled on connect). */
  connectionUrl: string
  username: string
  password: string
  /** Pool size; one pool per connection config. */
  maxOpenConnections: number
  /** Seconds to wait for a TCP connect + handshake before failing. */
  connectTimeout: number
}

/** The SQL dialect facts the engine needs to validate and render statements for this target. */
export interface PluginDialect {
  /** Identifier quote characters usable around `{{name}}`, e.g. `"` (PG) or `` ` `` (MySQL). */
  identifierQuotes: string[]
  /** Whether `'...'` literals treat backslash as an escape (MySQL) and so need it doubled. */
  backslashEscapes: boolean
  /** Whether `$$ ... $$` bodies exist (PostgreSQL). */
  dollarQuoting: boolean
  /** Longest username the target accepts. */
  maxUsernameLength: number
  /** Vault's default `username_template` for this plugin. */
  defaultUsernameTemplate: string
}

/** A statement after template rendering: plain SQL with every value already quoted. */
export type RenderedStatement = string

/**
 * Renders statement templates for one user. Given by the engine so the plugin can render its own
 * defaults (e.g. `DROP ROLE IF EXISTS "{{name}}"`) with the same escaping as the role's statements.
 */
export type Render = (templates: string[]) => RenderedStatement[]

export interface CreateUserRequest {
  username: string
  /** Never log, never put in an error. */
  password: string
  /** When the target should stop accepting the credential (PostgreSQL `VALID UNTIL`). */
  expiration: Date
  /** Rendered creation statements (required, non-empty). */
  statements: RenderedStatement[]
  /** Rendered rollback statements; empty means the plugin's default. */
  rollbackStatements: RenderedStatement[]
  render: Render
}

export interface UpdateUserRequest {
  username: string
  /** New expiry (renewal). `statements` then holds the rendered renew statements (may be empty). */
  expiration?: { at: Date; statements: RenderedStatement[] }
  /** New password. `statements` holds rendered rotation statements (may be empty). */
  password?: { value: string; statements: RenderedStatement[] }
  render: Render
}

export interface DeleteUserRequest {
  username: string
  /** Rendered revocation statements; empty means the plugin's default (which ends sessions). */
  statements: RenderedStatement[]
  render: Render
}

export interface RotateRootRequest {
  /** The new password for `config.username`. */
  password: string
  /** Rendered `root_rotation_statements`; empty means the plugin's default. */
  statements: RenderedStatement[]
}

/** One open pool to a target. Opened lazily by the engine, closed on reconfigure/reset/unmount. */
export interface DatabaseConnection {
  /** Runs a trivial query; throws (sanitised) when the target cannot be reached or refuses. */
  verify(): Promise<void>
  /** Creates the user. On failure the plugin undoes what it can (transaction or rollback statements). */
  createUser(req: CreateUserRequest): Promise<void>
  /** Renews the user's expiry and/or changes its password. */
  updateUser(req: UpdateUserRequest): Promise<void>
  /**
   * Deletes the user and ends its sessions. Idempotent: a user that does not exist is success.
   * Must work without the role definition (only the username and stored statements).
   */
  deleteUser(req: DeleteUserRequest): Promise<void>
  /**
   * Deletes several users at once, each as `deleteUser` would (sessions ended, a missing user is
   * success). Resolves with one outcome per request, in order: undefined when the user is gone,
   * else that user's sanitised error, so one failing user fails alone (plugins retry a failed
   * batch user by user). Rejects only when nothing could be done (e.g. the target is down).
   * Optional: without it, the engine calls `deleteUser` for each user.
   */
  deleteUsers?(reqs: DeleteUserRequest[]): Promise<Array<Error | undefined>>
  /**
   * Changes the admin user's password on the target. Returns once a fresh connection with the new
   * password has worked; the caller then stores the new password and reconnects.
   */
  rotateRoot(req: RotateRootRequest): Promise<void>
  /** Counts the user's open sessions on the target (evidence that a credential was used). */
  sessions(username: string): Promise<number>
  /** Closes the pool. */
  close(): Promise<void>
}

/**
 * A database plugin.
 *
 * @example
 * const config = postgresPlugin.parseConfig({ connection_url: 'postgres://{{username}}:{{password}}@db/app', username: 'admin', password })
 * const conn = postgresPlugin.connect(config)
 * await conn.verify()
 */
export interface DatabasePlugin {
  /** Short name (`postgresql`, `mysql`). */
  name: string
  dialect: PluginDialect
  /**
   * Validates the plugin-specific fields of a `database/config/<name>` write. Throws an `Error`
   * whose message is safe to show (a 400) for bad input.
   */
  parseConfig(raw: Record<string, unknown>): ConnectionConfig
  /** Opens a pool lazily (no I/O until first use). */
  connect(config: ConnectionConfig): DatabaseConnection
  /** `connection_url` with credentials removed, for `GET database/config/<name>`. */
  redactUrl(url: string): string
}

/**
 * The shared shape of `deleteUsers`: users with their own revocation statements (`statements` not
 * empty) and a batch that fails on the server go through `deleteUser` one at a time, so the
 * failing user is isolated; the rest are handed to `dropMany` together. When `dropMany` fails with
 * anything but a `BatchRefusedError` (the server refused a statement), e.g. the connection failed,
 * every user of the batch fails with that error rather than each being retried against a dead
 * target. Errors from `dropMany` must already be sanitised.
 */
export async function deleteUsersInBatch(
  reqs: DeleteUserRequest[],
  deleteUser: (req: DeleteUserRequest) => Promise<void>,
  dropMany: (usernames: string[]) => Promise<void>,
): Promise<Array<Error | undefined>> {
  const outcomes: Array<Error | undefined> = reqs.map(() => undefined)
  const one: number[] = []
  const many: number[] = []
  reqs.forEach((req, i) => (req.statements.length > 0 ? one : many).push(i))
  if (many.length > 1) {
    try {
      await dropMany([...new Set(many.map((i) => reqs[i]!.username))])
      many.length = 0
    } catch (err) {
      if (!(err instanceof BatchRefusedError)) {
        const error = err instanceof Error ? err : new Error('revoking users failed')
        for (const i of many) outcomes[i] = error
        many.length = 0
      }
    }
  }
  for (const i of [...one, ...many]) {
    try {
      await deleteUser(reqs[i]!)
    } catch (err) {
      outcomes[i] = err instanceof Error ? err : new Error('revoking user failed')
    }
  }
  return outcomes
}

/**
 * Thrown by a plugin's batch delete when the target refused a statement (not a connection
 * problem): `deleteUsersInBatch` then retries user by user. The message must be sanitised.
 */
export class BatchRefusedError extends Error {
  override readonly name = 'BatchRefusedError'
}

/** Thrown by plugins for problems the caller caused (bad config values): becomes a 400. */
export class PluginInputError extends Error {
  override readonly name = 'PluginInputError'
}

/**
 * Fills `{{username}}` and `{{password}}` in a connection URL, URL-escaped (Vault's behaviour
 * unless `disable_escaping`). The result holds a secret: never log it or put it in an error.
 */
export function fillConnectionUrl(config: ConnectionConfig, password = config.password): string {
  return config.connectionUrl
    .split('{{username}}')
    .join(encodeURIComponent(config.username))
    .split('{{password}}')
    .join(encodeURIComponent(password))
}

/** Whether the URL takes its credentials from `username`/`password` through placeholders. */
export function usesPlaceholders(url: string): boolean {
  return url.includes('{{username}}') || url.includes('{{password}}')
}

/** Reads the fields every SQL plugin shares, throwing `PluginInputError` for bad values. */
export function parseSqlConfig(raw: Record<string, unknown>): ConnectionConfig {
  const url = raw.connection_url
  if (typeof url !== 'string' || url.trim() === '')
    throw new PluginInputError('missing connection_url')
  const text = (name: string): string => {
    const v = raw[name]
    if (v === undefined || v === null) return ''
    if (typeof v !== 'string') throw new PluginInputError(`${name} must be a string`)
    return v
  }
  const int = (name: string, fallback: number, max: number): number => {
    const v = raw[name]
    if (v === undefined || v === null || v === '') return fallback
    const n = typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : NaN
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new PluginInputError(`${name} must be an integer between 1 and ${max}`)
    }
    return n
  }
  const leftover = url.replace(/\{\{(username|password)\}\}/g, '')
  if (leftover.includes('{{') || leftover.includes('}}')) {
    throw new PluginInputError(
      'connection_url may only contain the {{username}} and {{password}} placeholders',
    )
  }
  return {
    connectionUrl: url.trim(),
    username: text('username'),
    password: text('password'),
    maxOpenConnections: int('max_open_connections', 4, 100),
    connectTimeout: int('connect_timeout', 5, 120),
  }
}

/**
 * Hides the password part of `scheme://user:pass@...` or a Go DSN `user:pass@tcp(...)/`;
 * the `{{password}}` placeholder is not a secret and stays.
 */
export function redactCredentials(url: string): string {
  return url.replace(
    /^((?:[a-z][a-z0-9+.-]*:\/\/)?)([^:@/]*):([^@]*)@/i,
    (all, scheme: string, user: string, pass: string) =>
      pass === '{{password}}' ? all : `${scheme}${user}:***@`,
  )
}

/**
 * Rejects when `work` takes longer than `ms` (a TCP peer that accepts but never answers the
 * handshake is not covered by drivers' connect timeouts).
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}
