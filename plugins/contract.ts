/**
 * The database plugin contract. A plugin knows one kind of target database and nothing else: the
 * engine (`src/engines/database`) generates usernames and passwords, renders statement templates,
 * owns TTLs and leases, and hands the plugin finished, already-escaped SQL plus the values it needs.
 *
 * Every operation on a target takes one request object and resolves with one response object (as
 * OpenBao's database plugin v5), so fields can be added to either without breaking plugins or
 * callers. Responses with nothing to say yet are empty objects.
 *
 * Errors thrown by a plugin must already be sanitised (no passwords, no DSNs); the engine passes
 * them through `sanitizeMessage` once more before anyone sees them. Bad input the caller gave
 * (a config value) is a `PluginInputError` (`plugins/plugin-input-error.ts`): it becomes a 400.
 *
 * This file holds the contract only. What the SQL plugins share lives beside them:
 * `sql-helpers.ts` (config parsing, URL filling and redaction, timeouts) and
 * `batch-delete.ts` (the shape of `deleteUsers`).
 */

/* eslint-disable @typescript-eslint/no-empty-object-type -- empty requests/responses grow later */

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

/** `verify`: nothing to say yet. */
export interface VerifyRequest {}

/** `verify` succeeded: the target answered. */
export interface VerifyResponse {}

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

/** The user exists on the target. */
export interface CreateUserResponse {}

/**
 * Renews a user's expiry and/or changes its password. At least one of `expiration` and
 * `password` is given.
 *
 * @example
 * // A lease renewal: the role's renew statements, or the plugin's default when there are none.
 * await conn.updateUser({ username, expiration: { at, statements: [] }, render })
 */
export interface UpdateUserRequest {
  username: string
  /** New expiry (renewal). `statements` then holds the rendered renew statements (may be empty). */
  expiration?: { at: Date; statements: RenderedStatement[] }
  /** New password. `statements` holds rendered rotation statements (may be empty). */
  password?: { value: string; statements: RenderedStatement[] }
  render: Render
}

/** The user's expiry and/or password changed. */
export interface UpdateUserResponse {}

export interface DeleteUserRequest {
  username: string
  /** Rendered revocation statements; empty means the plugin's default (which ends sessions). */
  statements: RenderedStatement[]
  render: Render
}

/** The user is gone (or was never there). */
export interface DeleteUserResponse {}

export interface DeleteUsersRequest {
  /** The users to delete, each as `deleteUser` would take it. */
  users: DeleteUserRequest[]
}

export interface DeleteUsersResponse {
  /**
   * One outcome per request user, in order: undefined when the user is gone, else that user's
   * sanitised error.
   */
  outcomes: Array<Error | undefined>
}

export interface RotateRootRequest {
  /** The new password for `config.username`. */
  password: string
  /** Rendered `root_rotation_statements`; empty means the plugin's default. */
  statements: RenderedStatement[]
}

/** The admin user's password changed, and a fresh connection with it worked. */
export interface RotateRootResponse {}

export interface SessionsRequest {
  username: string
}

export interface SessionsResponse {
  /** Open sessions of the user on the target now. */
  count: number
}

/**
 * One open pool to a target. Opened lazily by the engine, closed on reconfigure/reset/unmount.
 *
 * @example
 * const conn = postgresPlugin.connect(config)
 * await conn.verify({})
 * await conn.createUser({ username, password, expiration, statements, rollbackStatements: [], render })
 * const { count } = await conn.sessions({ username })
 * await conn.deleteUser({ username, statements: [], render })
 * await conn.close()
 */
export interface DatabaseConnection {
  /** Runs a trivial query; throws (sanitised) when the target cannot be reached or refuses. */
  verify(req: VerifyRequest): Promise<VerifyResponse>
  /** Creates the user. On failure the plugin undoes what it can (transaction or rollback statements). */
  createUser(req: CreateUserRequest): Promise<CreateUserResponse>
  /** Renews the user's expiry and/or changes its password. */
  updateUser(req: UpdateUserRequest): Promise<UpdateUserResponse>
  /**
   * Deletes the user and ends its sessions. Idempotent: a user that does not exist is success.
   * Must work without the role definition (only the username and stored statements).
   */
  deleteUser(req: DeleteUserRequest): Promise<DeleteUserResponse>
  /**
   * Deletes several users at once, each as `deleteUser` would (sessions ended, a missing user is
   * success), so one failing user fails alone in `outcomes` (plugins retry a failed batch user by
   * user). Rejects only when nothing could be done (e.g. the target is down).
   * Optional: without it, the engine calls `deleteUser` for each user.
   */
  deleteUsers?(req: DeleteUsersRequest): Promise<DeleteUsersResponse>
  /**
   * Changes the admin user's password on the target. Resolves once a fresh connection with the
   * new password has worked; the caller then stores the new password and reconnects.
   */
  rotateRoot(req: RotateRootRequest): Promise<RotateRootResponse>
  /** Counts the user's open sessions on the target (evidence that a credential was used). */
  sessions(req: SessionsRequest): Promise<SessionsResponse>
  /** Closes the pool (the connection's lifecycle, not an operation on the target). */
  close(): Promise<void>
}

/**
 * A database plugin: a description of its target's SQL plus a factory for connections.
 *
 * @example
 * const config = postgresPlugin.parseConfig({ connection_url: 'postgres://{{username}}:{{password}}@db/app', username: 'admin', password })
 * const conn = postgresPlugin.connect(config)
 * await conn.verify({})
 */
export interface DatabasePlugin {
  /** Short name (`postgresql`, `mysql`). */
  name: string
  dialect: PluginDialect
  /**
   * Validates the plugin-specific fields of a `database/config/<name>` write. Throws a
   * `PluginInputError` whose message is safe to show (a 400) for bad input.
   */
  parseConfig(raw: Record<string, unknown>): ConnectionConfig
  /** Opens a pool lazily (no I/O until first use). */
  connect(config: ConnectionConfig): DatabaseConnection
  /** `connection_url` with credentials removed, for `GET database/config/<name>`. */
  redactUrl(url: string): string
}
