import { ApiError, badRequest, permissionDenied } from '../../core/errors.js'
import { sanitizeMessage } from '../../../plugins/sanitize.js'
import { isConnectionLoss } from '../../storage/connection-loss.js'
import { leaseTimes } from '../../core/leases/times.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import { checkName, errorText, statementsOrBadRequest } from './config-paths.js'
import { checkedUsernameTemplate, passwordForConnection, SAFE_VALUE } from './credentials.js'
import { pluginFor } from './plugins.js'
import {
  formatExpiration,
  parseStatements,
  renderer,
  renderStatements,
  type StatementTemplate,
} from './statements.js'
import type { DeleteUserRequest, PluginDialect } from '../../../plugins/contract.js'
import type { DatabaseContext } from './context.js'
import { TemplateError, type UsernameTemplate } from './username-template.js'

/** The DB user outlives PostgreSQL's VALID UNTIL by nothing: Vault adds 5 s so the lease ends first. */
const EXPIRATION_SLACK_MS = 5_000

/**
 * What a lease keeps to revoke or renew its user later, even after the role is deleted. Sealed by
 * the lease manager. Never the password.
 */
export interface DatabaseLeaseData {
  db: string
  username: string
  revocationStatements: string[]
  renewStatements: string[]
}

/** `creds/<role>`: issue a user under a lease; plus the backend's revoke and renew. */
export function credsFeature(ctx: DatabaseContext) {
  const { store, connections } = ctx
  const templates = new Map<string, UsernameTemplate>()
  // Roles change rarely and are read on every issue: parse each statement list once.
  const parsedCache = new Map<string, StatementTemplate[]>()
  const parse = (statements: string[], dialect: PluginDialect, field: string) => {
    const key = `${dialect.identifierQuotes.join('')}\0${field}\0${JSON.stringify(statements)}`
    let parsed = parsedCache.get(key)
    if (!parsed) {
      parsed = statementsOrBadRequest(() => parseStatements(statements, dialect, field))
      if (parsedCache.size >= 1000) parsedCache.clear()
      parsedCache.set(key, parsed)
    }
    return parsed
  }

  const usernameFor = (template: string, max: number, displayName: string, roleName: string) => {
    let compiled = templates.get(template)
    if (!compiled) {
      compiled = checkedUsernameTemplate(template, max)
      templates.set(template, compiled)
    }
    try {
      return compiled({ DisplayName: displayName, RoleName: roleName })
    } catch (err) {
      if (err instanceof TemplateError) throw badRequest(err.message)
      throw err
    }
  }

  const issue = async (
    req: LogicalRequest,
    params: Record<string, string>,
  ): Promise<LogicalResponse> => {
    const roleName = checkName(params.role!, 'role')
    const role = await store.getRole(roleName)
    if (!role) throw badRequest(`unknown role: ${roleName}`)
    const config = await store.getConfig(role.dbName)
    if (!config) throw badRequest(`connection "${role.dbName}" does not exist`)
    if (!config.settings.allowedRoles.some((pattern) => globMatch(pattern, roleName))) {
      throw badRequest(`"${roleName}" is not an allowed role`)
    }
    const leases = ctx.core.leases
    if (!req.token) throw permissionDenied()
    const plugin = pluginFor(config.pluginName)!
    const dialect = plugin.dialect

    const username = usernameFor(
      config.settings.usernameTemplate || dialect.defaultUsernameTemplate,
      dialect.maxUsernameLength,
      req.token.displayName,
      roleName,
    )
    const password = await passwordForConnection(ctx.passwordPolicies, config.settings)
    const creation = parse(role.creationStatements, dialect, 'creation_statements')
    const rollback = parse(role.rollbackStatements, dialect, 'rollback_statements')
    const conn = connections.get(config)
    const internal: DatabaseLeaseData = {
      db: config.name,
      username,
      revocationStatements: role.revocationStatements,
      renewStatements: role.renewStatements,
    }
    try {
      const lease = await leases.issue({
        mount: ctx.mount,
        path: req.path.replace(/\/+$/, ''),
        token: req.token,
        // The role's TTLs as written; the lease manager bounds them by the mount's and by a
        // grant's end (`notAfter`), once.
        ttl: role.defaultTtl,
        maxTtl: role.maxTtl,
        notAfter: req.notAfter,
        renewable: true,
        internal: { ...internal },
        targetKey: `${ctx.mount.accessor}:${config.name}`,
        create: async (_leaseId, expireTime) => {
          const at = new Date(expireTime + EXPIRATION_SLACK_MS)
          const values = { name: username, username, password, expiration: formatExpiration(at) }
          await conn.createUser({
            username,
            password,
            expiration: at,
            statements: renderStatements(creation, values, dialect),
            rollbackStatements: renderStatements(rollback, values, dialect),
            render: renderer(values, dialect),
          })
        },
      })
      return {
        data: { username, password },
        secret: { leaseId: lease.leaseId, ttl: lease.ttl, renewable: true },
      }
    } catch (err) {
      if (err instanceof ApiError || isConnectionLoss(err)) throw err
      throw badRequest(sanitizeMessage(errorText(err), [password, config.connection.password]))
    }
  }

  /** Resolves the connection a lease's user lives on; fails clearly when it is gone. */
  const target = async (data: DatabaseLeaseData) => {
    const config = await store.getConfig(data.db)
    if (!config) {
      throw new Error(
        `connection "${data.db}" no longer exists: the user cannot be revoked or renewed`,
      )
    }
    const plugin = pluginFor(config.pluginName)!
    return { conn: connections.get(config), dialect: plugin.dialect }
  }

  /** The plugin request that deletes a lease's user (its role's revocation statements rendered). */
  const deleteRequest = (data: DatabaseLeaseData, dialect: PluginDialect): DeleteUserRequest => {
    const values = { name: data.username, username: data.username }
    const statements = renderStatements(
      parse(data.revocationStatements, dialect, 'revocation_statements'),
      values,
      dialect,
    )
    return { username: data.username, statements, render: renderer(values, dialect) }
  }

  const revokeSecret = async (raw: Record<string, unknown>): Promise<void> => {
    const data = leaseData(raw)
    const { conn, dialect } = await target(data)
    await conn.deleteUser(deleteRequest(data, dialect))
  }

  /**
   * Revokes many leases' users: grouped by connection config, each group handed to the plugin's
   * `deleteUsers` (one batch on the target) or, without it, to `deleteUser` user by user. One
   * outcome per lease, in order; a lease whose data or connection is bad fails alone.
   */
  const revokeSecrets = async (
    raws: Record<string, unknown>[],
  ): Promise<Array<Error | undefined>> => {
    const outcomes: Array<Error | undefined> = raws.map(() => undefined)
    const fail = (i: number, err: unknown) => {
      outcomes[i] = err instanceof Error ? err : new Error('revocation failed')
    }
    const byDb = new Map<string, Array<{ i: number; data: DatabaseLeaseData }>>()
    raws.forEach((raw, i) => {
      try {
        const data = leaseData(raw)
        const group = byDb.get(data.db)
        if (group) group.push({ i, data })
        else byDb.set(data.db, [{ i, data }])
      } catch (err) {
        fail(i, err)
      }
    })
    for (const group of byDb.values()) {
      let resolved: Awaited<ReturnType<typeof target>>
      try {
        resolved = await target(group[0]!.data)
      } catch (err) {
        for (const { i } of group) fail(i, err)
        continue
      }
      const { conn, dialect } = resolved
      const sent: number[] = []
      const reqs: DeleteUserRequest[] = []
      for (const { i, data } of group) {
        try {
          reqs.push(deleteRequest(data, dialect))
          sent.push(i)
        } catch (err) {
          fail(i, err)
        }
      }
      if (reqs.length === 0) continue
      if (!conn.deleteUsers) {
        for (let k = 0; k < reqs.length; k++) {
          await conn.deleteUser(reqs[k]!).catch((err: unknown) => fail(sent[k]!, err))
        }
        continue
      }
      try {
        const { outcomes: results } = await conn.deleteUsers({ users: reqs })
        sent.forEach((i, k) => {
          if (results[k] !== undefined) fail(i, results[k])
        })
      } catch (err) {
        for (const i of sent) fail(i, err)
      }
    }
    return outcomes
  }

  const renewSecret = async (
    raw: Record<string, unknown>,
    newExpireTime: number,
  ): Promise<void> => {
    const data = leaseData(raw)
    const { conn, dialect } = await target(data)
    const at = new Date(newExpireTime + EXPIRATION_SLACK_MS)
    const values = {
      name: data.username,
      username: data.username,
      expiration: formatExpiration(at),
    }
    const statements = renderStatements(
      parse(data.renewStatements, dialect, 'renew_statements'),
      values,
      dialect,
    )
    await conn.updateUser({
      username: data.username,
      expiration: { at, statements },
      render: renderer(values, dialect),
    })
  }

  /** Open sessions of a lease's user, for JIT access's evidence of use. */
  const inspectSecret = async (raw: Record<string, unknown>): Promise<{ sessions: number }> => {
    const data = leaseData(raw)
    const { conn } = await target(data)
    const { count } = await conn.sessions({ username: data.username })
    return { sessions: count }
  }

  /**
   * What `creds/<role>` would run, for approvers: the target (credentials redacted), the role's
   * TTLs and its creation statements rendered with stand-ins for the generated values.
   */
  const describeAccess = async (
    relativePath: string,
  ): Promise<Record<string, unknown> | undefined> => {
    const m = /^creds\/([^/]+)$/.exec(relativePath)
    if (!m) return undefined
    const role = await store.getRole(m[1]!)
    if (!role) return { role: m[1], error: 'unknown role' }
    const config = await store.getConfig(role.dbName)
    const plugin = config ? pluginFor(config.pluginName) : undefined
    const { ttl, maxTtl } = leaseTimes(
      { ttl: role.defaultTtl, maxTtl: role.maxTtl },
      ctx.core.mountTtls(ctx.mount),
      Date.now(),
    )
    const out: Record<string, unknown> = {
      type: 'database',
      role: role.name,
      db_name: role.dbName,
      plugin_name: config?.pluginName ?? null,
      connection_url: config && plugin ? plugin.redactUrl(config.connection.connectionUrl) : null,
      default_ttl: ttl,
      max_ttl: maxTtl,
    }
    if (plugin) {
      const stand = {
        name: 'GENERATED-USERNAME',
        username: 'GENERATED-USERNAME',
        password: 'GENERATED-PASSWORD',
        expiration: formatExpiration(new Date(Date.now() + ttl * 1000)),
      }
      try {
        out.creation_statements = renderStatements(
          parse(role.creationStatements, plugin.dialect, 'creation_statements'),
          stand,
          plugin.dialect,
        )
      } catch {
        out.creation_statements = role.creationStatements
      }
      out.revocation_statements = role.revocationStatements.length
        ? role.revocationStatements
        : ['(plugin default: end sessions, drop owned objects, drop user)']
    }
    return out
  }

  // Read only, as in Vault: `update` on a creds path (often granted with role maintenance)
  // must not mint credentials.
  const paths: PathDef[] = [{ pattern: /^creds\/(?<role>[^/]+)$/, operations: { read: issue } }]
  return { paths, revokeSecret, revokeSecrets, renewSecret, inspectSecret, describeAccess }
}

function leaseData(raw: Record<string, unknown>): DatabaseLeaseData {
  const strings = (v: unknown) =>
    Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []
  const db = typeof raw.db === 'string' ? raw.db : ''
  const username = typeof raw.username === 'string' ? raw.username : ''
  if (!db || !SAFE_VALUE.test(username)) throw new Error('lease data has no valid database user')
  return {
    db,
    username,
    revocationStatements: strings(raw.revocationStatements),
    renewStatements: strings(raw.renewStatements),
  }
}

/** `*` matches any run of characters; everything else literally (Vault's allowed_roles globs). */
export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`)
  return re.test(value)
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
