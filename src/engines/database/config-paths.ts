import { ApiError, badRequest } from '../../core/errors.js'
import { optionalBool, optionalString, stringList } from '../../core/fields.js'
import { sanitizeMessage } from '../../../plugins/sanitize.js'
import type { LogicalRequest, PathDef } from '../../core/request.js'
import type { DatabaseConnection } from '../../../plugins/contract.js'
import { PluginInputError } from '../../../plugins/plugin-input-error.js'
import {
  checkedUsernameTemplate,
  passwordForConnection,
  SAFE_VALUE,
  sqlSafePasswordPolicy,
} from './credentials.js'
import { PLUGIN_NAMES, pluginFor } from './plugins.js'
import { parseStatements, renderStatements, StatementError } from './statements.js'
import type { DatabaseContext } from './context.js'
import type { StoredConfig } from './store.js'
import { TemplateError } from './username-template.js'

/** Names of configs and roles: no quoting games, no path tricks. */
export const NAME = /^[A-Za-z0-9_.-]{1,128}$/

export function checkName(name: string, what: string): string {
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw badRequest(`invalid ${what} name: use letters, digits, '_', '.' and '-'`)
  }
  return name
}

/** Keys handled by the engine; every other key of a config write is a plugin connection detail. */
const ENGINE_KEYS = new Set([
  'plugin_name',
  'plugin_version',
  'verify_connection',
  'allowed_roles',
  'root_rotation_statements',
  'password_policy',
  'username_template',
])

/** `config/<name>`, `LIST config`, `reset/<name>`, `rotate-root/<name>`. */
export function configPaths(ctx: DatabaseContext): PathDef[] {
  const { store, connections } = ctx

  const write = async (req: LogicalRequest, params: Record<string, string>) => {
    const name = checkName(params.name!, 'connection')
    const existing = await store.getConfig(name)
    const data = req.data
    const pluginName = optionalString(data.plugin_name, 'plugin_name') ?? existing?.pluginName
    if (!pluginName) throw badRequest('missing plugin_name')
    const plugin = pluginFor(pluginName)
    if (!plugin) {
      throw badRequest(
        `unknown plugin_name "${pluginName.slice(0, 64)}"; supported: ${PLUGIN_NAMES.join(', ')}`,
      )
    }
    if (existing && existing.pluginName !== pluginName) {
      throw badRequest('plugin_name cannot change; delete the connection first')
    }
    const newPolicy = optionalString(data.password_policy, 'password_policy')
    if (newPolicy) await sqlSafePasswordPolicy(ctx.passwordPolicies, newPolicy)
    const passwordPolicy = newPolicy ?? existing?.settings.passwordPolicy ?? ''
    const usernameTemplate =
      optionalString(data.username_template, 'username_template') ??
      existing?.settings.usernameTemplate ??
      ''
    try {
      checkedUsernameTemplate(
        usernameTemplate || plugin.dialect.defaultUsernameTemplate,
        plugin.dialect.maxUsernameLength,
      )
    } catch (err) {
      if (err instanceof TemplateError) throw badRequest(err.message)
      throw err
    }
    const rootRotationStatements =
      data.root_rotation_statements !== undefined
        ? stringList(data.root_rotation_statements, 'root_rotation_statements')
        : (existing?.settings.rootRotationStatements ?? [])
    statementsOrBadRequest(() =>
      parseStatements(rootRotationStatements, plugin.dialect, 'root_rotation_statements'),
    )

    const details: Record<string, unknown> = {}
    if (existing) {
      const c = existing.connection
      Object.assign(details, {
        connection_url: c.connectionUrl,
        username: c.username,
        password: c.password,
        max_open_connections: c.maxOpenConnections,
        connect_timeout: c.connectTimeout,
      })
    }
    for (const [key, value] of Object.entries(data)) {
      if (!ENGINE_KEYS.has(key) && value !== undefined) details[key] = value
    }
    let connection
    try {
      connection = plugin.parseConfig(details)
    } catch (err) {
      if (err instanceof PluginInputError) throw badRequest(err.message)
      throw err
    }
    const settings = {
      allowedRoles:
        data.allowed_roles !== undefined
          ? stringList(data.allowed_roles, 'allowed_roles')
          : (existing?.settings.allowedRoles ?? []),
      verifyConnection: optionalBool(data.verify_connection, 'verify_connection') ?? true,
      usernameTemplate,
      passwordPolicy,
      rootRotationStatements,
    }

    let verified: DatabaseConnection | undefined
    if (settings.verifyConnection) {
      verified = plugin.connect(connection)
      await verifyOrBadRequest(verified, connection.password)
    }
    const version = await store.putConfig({ name, pluginName, connection, settings })
    const stored: StoredConfig = { name, pluginName, connection, settings, version }
    if (verified) connections.adopt(stored, verified)
    else await connections.drop(name)
    const warnings: string[] = []
    if (
      !connection.connectionUrl.includes('{{password}}') &&
      /:\/\/[^/@]*:[^/@]*@/.test(connection.connectionUrl)
    ) {
      warnings.push(
        'connection_url contains a literal password: use {{username}}/{{password}} with the username and password fields',
      )
    }
    return warnings.length > 0 ? { warnings } : null
  }

  const read = async (_req: LogicalRequest, params: Record<string, string>) => {
    const config = await store.getConfig(checkName(params.name!, 'connection'))
    if (!config) return null
    const plugin = pluginFor(config.pluginName)!
    const c = config.connection
    return {
      data: {
        plugin_name: config.pluginName,
        plugin_version: '',
        connection_details: {
          connection_url: plugin.redactUrl(c.connectionUrl),
          username: c.username,
          max_open_connections: c.maxOpenConnections,
          connect_timeout: c.connectTimeout,
          ...(config.settings.usernameTemplate
            ? { username_template: config.settings.usernameTemplate }
            : {}),
        },
        allowed_roles: config.settings.allowedRoles,
        root_credentials_rotate_statements: config.settings.rootRotationStatements,
        password_policy: config.settings.passwordPolicy,
        verify_connection: config.settings.verifyConnection,
      },
    }
  }

  const remove = async (_req: LogicalRequest, params: Record<string, string>) => {
    const name = checkName(params.name!, 'connection')
    await store.deleteConfig(name)
    await connections.drop(name)
    return null
  }

  const reset = async (_req: LogicalRequest, params: Record<string, string>) => {
    const config = await requireConfig(ctx, params.name!)
    await connections.drop(config.name)
    await verifyOrBadRequest(connections.get(config), config.connection.password)
    return null
  }

  const rotateRoot = async (_req: LogicalRequest, params: Record<string, string>) => {
    const config = await requireConfig(ctx, params.name!)
    const plugin = pluginFor(config.pluginName)!
    const { username, password } = config.connection
    if (!username || !password) {
      throw badRequest('rotate-root needs username and password in the connection config')
    }
    const newPassword = await passwordForConnection(ctx.passwordPolicies, config.settings)
    const templates = statementsOrBadRequest(() =>
      parseStatements(
        config.settings.rootRotationStatements,
        plugin.dialect,
        'root_rotation_statements',
      ),
    )
    if (templates.length > 0 && !SAFE_VALUE.test(username)) {
      throw badRequest('root_rotation_statements need a username made of [A-Za-z0-9._-]')
    }
    const statements =
      templates.length > 0
        ? statementsOrBadRequest(() =>
            renderStatements(
              templates,
              { name: username, username, password: newPassword },
              plugin.dialect,
            ),
          )
        : []
    try {
      await connections.get(config).rotateRoot({ password: newPassword, statements })
    } catch (err) {
      throw badRequest(
        `failed to rotate root credentials: ${sanitizeMessage(errorText(err), [newPassword, password])}`,
      )
    }
    const next = { ...config, connection: { ...config.connection, password: newPassword } }
    await store.putConfig(next)
    await connections.drop(config.name)
    return null
  }

  const list = async () => ({ data: { keys: await store.listConfigs() } })

  return [
    { pattern: /^config\/?$/, operations: { list } },
    {
      pattern: /^config\/(?<name>[^/]+)$/,
      operations: { read, create: write, update: write, delete: remove },
      existence: async (_req, params) =>
        NAME.test(params.name!) && (await store.getConfig(params.name!)) !== undefined,
    },
    { pattern: /^reset\/(?<name>[^/]+)$/, operations: { update: reset } },
    { pattern: /^rotate-root\/(?<name>[^/]+)$/, operations: { update: rotateRoot } },
  ]
}

export async function requireConfig(ctx: DatabaseContext, rawName: string): Promise<StoredConfig> {
  const name = checkName(rawName, 'connection')
  const config = await ctx.store.getConfig(name)
  if (!config) throw badRequest(`connection "${name}" does not exist`)
  return config
}

/** Connects and runs a trivial query; a failure closes the pool and becomes Vault's 400. */
async function verifyOrBadRequest(conn: DatabaseConnection, password: string): Promise<void> {
  try {
    await conn.verify({})
  } catch (err) {
    await conn.close().catch(() => {})
    throw new ApiError(
      400,
      `error creating database object: ${sanitizeMessage(errorText(err), [password])}`,
    )
  }
}

export function statementsOrBadRequest<T>(fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof StatementError) throw badRequest(err.message)
    throw err
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
