import { randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import type { LoginDeps } from '../login-deps.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend, LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import { ApiError, badRequest } from '../../core/errors.js'
import { inCidrs, parseCidrs } from '../../core/cidr.js'
import { parseDuration } from '../../core/duration.js'
import { optionalInt, optionalString } from '../../core/fields.js'
import { sanitizeError } from '../../../plugins/sanitize.js'
import { issueLoginToken } from '../token-fields.js'
import { createRoleStore, checkRoleId, parseRole, roleResponse, type AppRole } from './role.js'
import { createSecretIdStore, type SecretIdEntry } from './secret-ids.js'

const NAME = '(?<name>\\w(?:[\\w.@-]*\\w)?)'
const INVALID = 'invalid role or secret ID'
const SWEEP_MS = 5 * 60_000

/** Per-field sub-paths (`role/<name>/secret-id-ttl` ...): response key and accepted request keys. */
const FIELD_PATHS: Record<string, { key: string; inputs: string[] }> = {
  policies: { key: 'token_policies', inputs: ['token_policies', 'policies'] },
  'bind-secret-id': { key: 'bind_secret_id', inputs: ['bind_secret_id'] },
  'secret-id-bound-cidrs': { key: 'secret_id_bound_cidrs', inputs: ['secret_id_bound_cidrs'] },
  'bound-cidr-list': {
    key: 'secret_id_bound_cidrs',
    inputs: ['bound_cidr_list', 'secret_id_bound_cidrs'],
  },
  'secret-id-num-uses': { key: 'secret_id_num_uses', inputs: ['secret_id_num_uses'] },
  'secret-id-ttl': { key: 'secret_id_ttl', inputs: ['secret_id_ttl'] },
  'local-secret-ids': { key: 'local_secret_ids', inputs: [] },
  period: { key: 'token_period', inputs: ['token_period', 'period'] },
  'token-num-uses': { key: 'token_num_uses', inputs: ['token_num_uses'] },
  'token-ttl': { key: 'token_ttl', inputs: ['token_ttl'] },
  'token-max-ttl': { key: 'token_max_ttl', inputs: ['token_max_ttl'] },
  'token-bound-cidrs': { key: 'token_bound_cidrs', inputs: ['token_bound_cidrs'] },
}

/**
 * The AppRole auth method (`auth/approle/`): roles, role ids, secret-ids (stored only as keyed
 * hashes, with accessors, CIDR bindings, use counts and TTLs) and `login` with Vault's
 * deliberately vague `invalid role or secret ID`.
 */
export function createAppRoleBackend(core: LoginDeps, mount: MountEntry): Backend {
  const roles = createRoleStore(core, mount.id)
  const secretIds = createSecretIdStore(core, mount.id)

  // Expired secret-ids are refused on sight; this sweep keeps the table from growing meanwhile.
  const sweeper = setInterval(() => {
    secretIds.tidy().catch((err: unknown) => {
      core.logger.warn({ err: sanitizeError(err) }, 'approle secret-id sweep failed')
    })
  }, SWEEP_MS)
  sweeper.unref()

  const roleOr404 = async (rawName: string): Promise<AppRole> => {
    const role = await roles.get(rawName.toLowerCase())
    if (!role) throw new ApiError(404, `role "${rawName.slice(0, 100)}" does not exist`)
    return role
  }
  const roleOr400 = async (rawName: string): Promise<AppRole> => {
    const role = await roles.get(rawName.toLowerCase())
    if (!role) throw badRequest(`role "${rawName.slice(0, 100)}" does not exist`)
    return role
  }

  const writeRole = async (req: LogicalRequest, params: Record<string, string>) => {
    const name = params.name!.toLowerCase()
    const existing = await roles.get(name)
    await roles.put(parseRole(name, req.data, existing), existing !== undefined)
    return null
  }

  const issueSecretId =
    (custom: boolean) => async (req: LogicalRequest, params: Record<string, string>) => {
      const role = await roleOr400(params.name!)
      const d = req.data
      if (!role.bindSecretId) throw badRequest('bind_secret_id is not set on the role')
      const secretId = custom ? optionalString(d.secret_id, 'secret_id') : randomUUID()
      if (!secretId) throw badRequest('missing secret_id')
      const cidrList = parseCidrs(d.cidr_list, 'cidr_list')
      if (!cidrsWithin(cidrList, role.secretIdBoundCidrs)) {
        throw badRequest(
          "failed to verify the CIDR restrictions set on the secret ID: cidr_list is not a subset of the role's secret_id_bound_cidrs",
        )
      }
      const tokenBoundCidrs = parseCidrs(d.token_bound_cidrs, 'token_bound_cidrs')
      if (!cidrsWithin(tokenBoundCidrs, role.token.tokenBoundCidrs)) {
        throw badRequest(
          "failed to verify the CIDR restrictions set on the secret ID: token_bound_cidrs is not a subset of the role's token_bound_cidrs",
        )
      }
      const requestedUses = optionalInt(d.num_uses, 'num_uses')
      const numUses = requestedUses ?? role.secretIdNumUses
      if (role.secretIdNumUses > 0 && (numUses === 0 || numUses > role.secretIdNumUses)) {
        throw badRequest("num_uses cannot be higher than the role's secret_id_num_uses")
      }
      const requestedTtl = parseDuration(d.ttl, 'ttl')
      if (role.secretIdTtl > 0 && requestedTtl > role.secretIdTtl) {
        throw badRequest("ttl is longer than the role's secret_id_ttl")
      }
      const ttl = requestedTtl > 0 ? requestedTtl : role.secretIdTtl
      const created = await secretIds.create({
        roleName: role.name,
        secretId,
        metadata: parseMetadata(d.metadata),
        cidrList,
        tokenBoundCidrs,
        numUses,
        ttl,
      })
      return {
        data: {
          secret_id: secretId,
          secret_id_accessor: created.accessor,
          secret_id_ttl: created.ttl,
          secret_id_num_uses: created.numUses,
        },
      }
    }

  const secretIdInfo = (entry: SecretIdEntry): Record<string, unknown> => ({
    cidr_list: entry.cidrList,
    token_bound_cidrs: entry.tokenBoundCidrs,
    creation_time: new Date(entry.createdAt).toISOString(),
    expiration_time:
      entry.expiresAt === null ? '0001-01-01T00:00:00Z' : new Date(entry.expiresAt).toISOString(),
    last_updated_time: new Date(entry.updatedAt).toISOString(),
    metadata: entry.metadata,
    secret_id_accessor: entry.accessor,
    secret_id_num_uses: entry.numUses === 0 ? 0 : entry.remainingUses,
    secret_id_ttl: entry.ttl,
  })

  const bySecretId = async (req: LogicalRequest, params: Record<string, string>) => {
    const role = await roleOr400(params.name!)
    const secretId = optionalString(req.data.secret_id, 'secret_id')
    if (!secretId) throw badRequest('missing secret_id')
    return { role, entry: await secretIds.find(role.name, secretId) }
  }
  const byAccessor = async (req: LogicalRequest, params: Record<string, string>) => {
    const role = await roleOr400(params.name!)
    const accessor = optionalString(req.data.secret_id_accessor, 'secret_id_accessor')
    if (!accessor) throw badRequest('missing secret_id_accessor')
    return { role, entry: await secretIds.byAccessor(role.name, accessor) }
  }

  const login = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const roleId = req.data.role_id
    if (typeof roleId !== 'string' || roleId === '') throw badRequest('missing role_id')
    const role = await roles.byRoleId(roleId)
    if (!role) throw badRequest(INVALID)
    if (
      role.secretIdBoundCidrs.length > 0 &&
      !inCidrs(req.remoteAddress, role.secretIdBoundCidrs)
    ) {
      throw badRequest(INVALID)
    }
    const metadata: Record<string, string> = {}
    let tokenBoundCidrs = role.token.tokenBoundCidrs
    if (role.bindSecretId) {
      const secretId = req.data.secret_id
      if (typeof secretId !== 'string' || secretId === '') throw badRequest('missing secret_id')
      const entry = await secretIds.find(role.name, secretId)
      if (!entry) throw badRequest(INVALID)
      if (entry.cidrList.length > 0 && !inCidrs(req.remoteAddress, entry.cidrList))
        throw badRequest(INVALID)
      if (!(await secretIds.consume(entry))) throw badRequest(INVALID)
      Object.assign(metadata, entry.metadata)
      if (entry.tokenBoundCidrs.length > 0) tokenBoundCidrs = entry.tokenBoundCidrs
    }
    metadata.role_name = role.name
    const entityId = await core.identity.resolveAlias({
      mountAccessor: mount.accessor,
      mountType: mount.type,
      // Vault names the alias after the role id; Stint uses the role name so the role id,
      // a login credential, never lands in storage in clear.
      name: role.name,
      metadata: { role_name: role.name },
    })
    const { auth, warnings } = await issueLoginToken(core, {
      mount,
      fields: { ...role.token, tokenBoundCidrs },
      metadata,
      // Secret-id metadata is written by whoever generated the secret id: shown, never trusted.
      verifiedClaims: { role_name: role.name },
      displayName: role.name,
      entityId,
      path: req.path.replace(/\/$/, ''),
    })
    return { auth, warnings: warnings.length > 0 ? warnings : undefined }
  }

  const fieldPath: PathDef = {
    pattern: new RegExp(`^role/${NAME}/(?<field>${Object.keys(FIELD_PATHS).join('|')})$`),
    operations: {
      read: async (_req, params) => {
        const role = await roleOr404(params.name!)
        const spec = FIELD_PATHS[params.field!]!
        return { data: { [spec.key]: roleResponse(role)[spec.key] } }
      },
      update: async (req, params) => {
        const role = await roleOr400(params.name!)
        const spec = FIELD_PATHS[params.field!]!
        const input = spec.inputs.map((k) => req.data[k]).find((v) => v !== undefined)
        if (spec.inputs.length === 0)
          throw badRequest(`${spec.key} cannot be changed after the role is created`)
        if (input === undefined) throw badRequest(`missing ${spec.inputs[0]}`)
        await roles.put(parseRole(role.name, { [spec.inputs[0]!]: input }, role), true)
        return null
      },
      delete: async (_req, params) => {
        const role = await roleOr400(params.name!)
        const spec = FIELD_PATHS[params.field!]!
        if (spec.inputs.length === 0)
          throw badRequest(`${spec.key} cannot be changed after the role is created`)
        const reset =
          spec.key === 'bind_secret_id'
            ? true
            : spec.key.endsWith('cidrs') || spec.key === 'token_policies'
              ? []
              : 0
        await roles.put(parseRole(role.name, { [spec.inputs[0]!]: reset }, role), true)
        return null
      },
    },
  }

  return {
    paths: [
      { pattern: /^login\/?$/, unauthenticated: true, operations: { update: login } },
      {
        pattern: /^role\/?$/,
        operations: { list: async () => ({ data: { keys: await roles.list() } }) },
      },
      {
        pattern: new RegExp(`^role/${NAME}/role-id$`),
        operations: {
          read: async (_req, params) => ({
            data: { role_id: (await roleOr404(params.name!)).roleId },
          }),
          update: async (req, params) => {
            const role = await roleOr400(params.name!)
            const roleId = optionalString(req.data.role_id, 'role_id')
            if (!roleId) throw badRequest('missing role_id')
            await roles.put({ ...role, roleId: checkRoleId(roleId) }, true)
            return null
          },
        },
      },
      {
        pattern: new RegExp(`^role/${NAME}/secret-id/?$`),
        operations: {
          update: issueSecretId(false),
          list: async (_req, params) => {
            const role = await roleOr404(params.name!)
            return { data: { keys: await secretIds.accessors(role.name) } }
          },
        },
      },
      {
        pattern: new RegExp(`^role/${NAME}/custom-secret-id$`),
        operations: { update: issueSecretId(true) },
      },
      {
        pattern: new RegExp(`^role/${NAME}/secret-id/lookup$`),
        operations: {
          update: async (req, params) => {
            const { entry } = await bySecretId(req, params)
            return entry ? { data: secretIdInfo(entry) } : null
          },
        },
      },
      {
        pattern: new RegExp(`^role/${NAME}/secret-id/destroy$`),
        operations: {
          update: async (req, params) => {
            const { entry } = await bySecretId(req, params)
            if (entry) await secretIds.delete(entry.id)
            return null
          },
          delete: async (req, params) => {
            const { entry } = await bySecretId(req, params)
            if (entry) await secretIds.delete(entry.id)
            return null
          },
        },
      },
      {
        pattern: new RegExp(`^role/${NAME}/secret-id-accessor/lookup$`),
        operations: {
          update: async (req, params) => {
            const { entry } = await byAccessor(req, params)
            if (!entry)
              throw new ApiError(404, 'failed to find accessor entry for secret_id_accessor')
            return { data: secretIdInfo(entry) }
          },
        },
      },
      {
        pattern: new RegExp(`^role/${NAME}/secret-id-accessor/destroy$`),
        operations: {
          update: async (req, params) => {
            const { entry } = await byAccessor(req, params)
            if (entry) await secretIds.delete(entry.id)
            return null
          },
          delete: async (req, params) => {
            const { entry } = await byAccessor(req, params)
            if (entry) await secretIds.delete(entry.id)
            return null
          },
        },
      },
      fieldPath,
      {
        pattern: new RegExp(`^role/${NAME}$`),
        existence: async (_req, params) =>
          (await roles.get(params.name!.toLowerCase())) !== undefined,
        operations: {
          read: async (_req, params) => {
            const role = await roles.get(params.name!.toLowerCase())
            return role ? { data: roleResponse(role) } : null
          },
          create: writeRole,
          update: writeRole,
          delete: async (_req, params) => {
            const name = params.name!.toLowerCase()
            await secretIds.deleteRole(name)
            await roles.delete(name)
            return null
          },
        },
      },
      {
        pattern: /^tidy\/secret-id\/?$/,
        operations: {
          update: async () => {
            const listedAt = Date.now()
            const removed = await secretIds.tidy({ roleNames: await roles.list(), listedAt })
            return {
              status: 202,
              data: { removed },
              warnings: [
                'Tidy operation successfully started. Any information from the operation will be printed to the server logs.',
              ],
            }
          },
        },
      },
    ],
    async cleanup() {
      clearInterval(sweeper)
      await secretIds.deleteAll()
      await roles.deleteAll()
    },
    async close() {
      clearInterval(sweeper)
    },
  }
}

/** `metadata`: a JSON string (Vault's form) or an object, of string values. */
function parseMetadata(value: unknown): Record<string, string> {
  if (value === undefined || value === null || value === '') return {}
  let parsed: unknown = value
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value)
    } catch {
      throw badRequest('failed to parse metadata: it must be a JSON object of strings')
    }
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badRequest('failed to parse metadata: it must be a JSON object of strings')
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v !== 'string') throw badRequest('failed to parse metadata: values must be strings')
    out[k] = v
  }
  return out
}

/** True when every CIDR in `inner` lies inside one of `outer` (or `outer` is empty). */
export function cidrsWithin(inner: string[], outer: string[]): boolean {
  if (outer.length === 0) return true
  const bitsOf = (cidr: string) => {
    const [addr, bits] = cidr.split('/')
    return bits === undefined ? (isIP(addr ?? '') === 6 ? 128 : 32) : Number(bits)
  }
  return inner.every((cidr) => {
    const addr = cidr.split('/')[0]!
    return outer.some((o) => bitsOf(cidr) >= bitsOf(o) && inCidrs(addr, [o]))
  })
}
