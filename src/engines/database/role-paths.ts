import { badRequest } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'
import { optionalString, stringList } from '../../core/fields.js'
import type { LogicalRequest, PathDef } from '../../core/request.js'
import { checkName, NAME, statementsOrBadRequest } from './config-paths.js'
import { pluginFor } from './plugins.js'
import { parseStatements } from './statements.js'
import type { DatabaseContext } from './context.js'
import type { StoredRole } from './store.js'

/** `roles/<name>` and `LIST roles`. Statements are checked against the connection's dialect. */
export function rolePaths(ctx: DatabaseContext): PathDef[] {
  const { store } = ctx

  const write = async (req: LogicalRequest, params: Record<string, string>) => {
    const name = checkName(params.name!, 'role')
    const existing = await store.getRole(name)
    const data = req.data
    const dbName = optionalString(data.db_name, 'db_name') ?? existing?.dbName
    if (!dbName) throw badRequest('missing db_name')
    checkName(dbName, 'connection')
    const config = await store.getConfig(dbName)
    if (!config)
      throw badRequest(
        `connection "${dbName}" does not exist; write database/config/${dbName} first`,
      )
    const dialect = pluginFor(config.pluginName)!.dialect

    const list = (field: string, current: string[] | undefined) =>
      data[field] !== undefined ? stringList(data[field], field) : (current ?? [])
    const role: StoredRole = {
      name,
      dbName,
      creationStatements: list('creation_statements', existing?.creationStatements),
      revocationStatements: list('revocation_statements', existing?.revocationStatements),
      rollbackStatements: list('rollback_statements', existing?.rollbackStatements),
      renewStatements: list('renew_statements', existing?.renewStatements),
      defaultTtl:
        data.default_ttl !== undefined
          ? parseDuration(data.default_ttl, 'default_ttl')
          : (existing?.defaultTtl ?? 0),
      maxTtl:
        data.max_ttl !== undefined
          ? parseDuration(data.max_ttl, 'max_ttl')
          : (existing?.maxTtl ?? 0),
    }
    if (role.creationStatements.length === 0) throw badRequest('missing creation_statements')
    const creation = statementsOrBadRequest(() =>
      parseStatements(role.creationStatements, dialect, 'creation_statements'),
    )
    if (creation.length === 0) throw badRequest('creation_statements has no statement')
    for (const field of ['revocation', 'rollback', 'renew'] as const) {
      statementsOrBadRequest(() =>
        parseStatements(role[`${field}Statements`], dialect, `${field}_statements`),
      )
    }
    if (role.maxTtl > 0 && role.defaultTtl > role.maxTtl) {
      throw badRequest('default_ttl cannot be greater than max_ttl')
    }
    const credentialType = optionalString(data.credential_type, 'credential_type')
    if (credentialType !== undefined && credentialType !== 'password') {
      throw badRequest('only credential_type "password" is supported')
    }
    await store.putRole(role)
    return null
  }

  const read = async (_req: LogicalRequest, params: Record<string, string>) => {
    const role = await store.getRole(checkName(params.name!, 'role'))
    if (!role) return null
    return {
      data: {
        db_name: role.dbName,
        creation_statements: role.creationStatements,
        revocation_statements: role.revocationStatements,
        rollback_statements: role.rollbackStatements,
        renew_statements: role.renewStatements,
        default_ttl: role.defaultTtl,
        max_ttl: role.maxTtl,
        credential_type: 'password',
      },
    }
  }

  const remove = async (_req: LogicalRequest, params: Record<string, string>) => {
    await store.deleteRole(checkName(params.name!, 'role'))
    return null
  }

  const list = async () => ({ data: { keys: await store.listRoles() } })

  return [
    { pattern: /^roles\/?$/, operations: { list } },
    {
      pattern: /^roles\/(?<name>[^/]+)$/,
      operations: { read, create: write, update: write, delete: remove },
      existence: async (_req, params) =>
        NAME.test(params.name!) && (await store.getRole(params.name!)) !== undefined,
    },
  ]
}
