import { ApiError, badRequest, permissionDenied } from '../../core/errors.js'
import type { CoreServices } from '../../core/services.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend, LogicalRequest, LogicalResponse } from '../../core/request.js'
import { remainingTtl, type TokenEntry } from '../../core/tokens.js'
import { parseDuration } from '../../core/duration.js'
import { optionalBool, optionalInt, stringList, stringMap } from '../../core/fields.js'
import { authInfo } from '../token-fields.js'
import { normalizePolicies } from '../../core/fields.js'

/**
 * The built-in token auth method (`auth/token/`): create (child, orphan), lookup, renew and
 * revoke by token, by accessor or for the caller itself, and the accessor listing.
 */
export function createTokenBackend(
  core: Pick<CoreServices, 'tokens' | 'policies' | 'mountTtls' | 'aclFor' | 'effectivePolicies'>,
  mount: MountEntry,
): Backend {
  const hasSudo = async (token: TokenEntry, path: string) => {
    const { acl } = await core.aclFor(token)
    return acl.check(path, 'update', { sudo: true }).allowed
  }

  const create =
    (orphanEndpoint: boolean) =>
    async (req: LogicalRequest): Promise<LogicalResponse> => {
      const parent = req.token!
      const d = req.data
      if (parent.type === 'batch') throw badRequest('batch tokens cannot create more tokens')
      if (parent.numUses > 0) throw badRequest('token with limited uses cannot create child tokens')
      const parentIsRoot = parent.policies.includes('root')
      const sudo = parentIsRoot || (await hasSudo(parent, req.path))

      const noParent = optionalBool(d.no_parent, 'no_parent') ?? false
      if (noParent && !sudo && !orphanEndpoint)
        throw badRequest('root or sudo privileges required to create orphan token')
      if (d.id !== undefined && (typeof d.id !== 'string' || d.id.length > 512 || /\s/.test(d.id)))
        throw badRequest('id must be a string of at most 512 characters without spaces')
      if (d.id !== undefined && !sudo)
        throw badRequest('root or sudo privileges required to specify token id')
      const period = parseDuration(d.period, 'period')
      if (period > 0 && !sudo)
        throw badRequest('root or sudo privileges required to create periodic token')
      const type = d.type === undefined || d.type === '' ? 'service' : String(d.type)
      if (type !== 'service' && type !== 'batch')
        throw badRequest(`unsupported token type "${type}"`)

      const noDefault = optionalBool(d.no_default_policy, 'no_default_policy') ?? false
      const requested =
        d.policies === undefined ? undefined : normalizePolicies(stringList(d.policies, 'policies'))
      const warnings: string[] = []
      let policies: string[]
      if (requested === undefined || requested.length === 0) {
        policies = parent.policies.filter((p) => (noDefault ? p !== 'default' : true))
      } else {
        if (requested.includes('root') && !parentIsRoot)
          throw badRequest('root tokens may not be created without root privileges')
        if (!sudo) {
          const allowed = new Set(parent.policies)
          const extra = requested.filter((p) => p !== 'default' && !allowed.has(p))
          if (extra.length > 0) throw badRequest('child policies must be subset of parent')
        }
        policies = requested
      }
      if (!noDefault && !policies.includes('root'))
        policies = normalizePolicies([...policies, 'default'])
      if (policies.includes('root') && policies.length > 1) policies = ['root']
      for (const p of policies) {
        if (p !== 'root' && !(await core.policies.get(p)))
          warnings.push(`Policy "${p}" does not exist`)
      }

      const numUses = optionalInt(d.num_uses, 'num_uses') ?? 0
      const ttl = parseDuration(d.ttl ?? d.lease, 'ttl')
      const explicitMaxTtl = parseDuration(d.explicit_max_ttl, 'explicit_max_ttl')
      const { defaultTtl, maxTtl } = core.mountTtls(mount)
      const displayName =
        typeof d.display_name === 'string' && d.display_name ? `token-${d.display_name}` : 'token'
      const created = await core.tokens.create({
        policies,
        parent,
        orphan: noParent || orphanEndpoint,
        meta: stringMap(d.meta, 'meta'),
        displayName: displayName.slice(0, 255),
        ttl,
        explicitMaxTtl,
        period,
        numUses,
        renewable: optionalBool(d.renewable, 'renewable') ?? true,
        path: req.path.replace(/\/$/, ''),
        mountAccessor: mount.accessor,
        entityId: parent.entityId,
        type,
        id: typeof d.id === 'string' && d.id ? d.id : undefined,
        // A child created by a root token without a TTL never expires, as in Vault.
        defaultTtl: policies.includes('root') && ttl === 0 ? 0 : defaultTtl,
        maxTtl,
      })
      return {
        auth: authInfo(
          created.token,
          created.entry,
          (await core.effectivePolicies(created.entry)).identity,
        ),
        warnings: [...warnings, ...created.warnings],
      }
    }

  const lookupData = async (
    entry: TokenEntry,
    rawToken: string,
  ): Promise<Record<string, unknown>> => {
    const { identity } = await core.effectivePolicies(entry)
    const data: Record<string, unknown> = {
      accessor: entry.accessor,
      creation_time: Math.floor(entry.creationTime / 1000),
      creation_ttl: entry.creationTtl,
      display_name: entry.displayName,
      entity_id: entry.entityId,
      expire_time: entry.expireTime === null ? null : new Date(entry.expireTime).toISOString(),
      explicit_max_ttl: entry.explicitMaxTtl,
      id: rawToken,
      issue_time: new Date(entry.creationTime).toISOString(),
      meta: entry.meta,
      num_uses: entry.numUses,
      orphan: entry.orphan,
      path: entry.path,
      policies: entry.policies,
      renewable: entry.renewable,
      ttl: remainingTtl(entry),
      type: entry.type,
    }
    if (identity.length) data.identity_policies = identity
    if (entry.period) data.period = entry.period
    if (entry.role) data.role = entry.role
    if (entry.boundCidrs.length) data.bound_cidrs = entry.boundCidrs
    if (entry.lastRenewal !== null) {
      data.last_renewal_time = Math.floor(entry.lastRenewal / 1000)
      data.last_renewal = new Date(entry.lastRenewal).toISOString()
    }
    return data
  }

  const byToken = async (req: LogicalRequest): Promise<{ entry: TokenEntry; raw: string }> => {
    const raw = req.data.token
    if (typeof raw !== 'string' || raw === '') throw badRequest('missing token')
    const entry = await core.tokens.lookup(raw)
    if (!entry) throw permissionDenied()
    return { entry, raw }
  }
  /** `auth/token/lookup`: an unknown token is a 403 `bad token`, as in Vault. */
  const lookupOther = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const { entry, raw } = await byToken(req).catch((err: unknown) => {
      throw err instanceof ApiError && err.status === 403 ? new ApiError(403, 'bad token') : err
    })
    return { data: await lookupData(entry, raw) }
  }
  const byAccessor = async (req: LogicalRequest): Promise<TokenEntry> => {
    const accessor = req.data.accessor
    if (typeof accessor !== 'string' || accessor === '') throw badRequest('missing accessor')
    const entry = await core.tokens.lookupAccessor(accessor)
    if (!entry) throw badRequest('invalid accessor')
    return entry
  }
  const renew = async (
    entry: TokenEntry,
    raw: string,
    req: LogicalRequest,
  ): Promise<LogicalResponse> => {
    const increment = parseDuration(req.data.increment, 'increment')
    const { entry: renewed, warnings } = await core.tokens.renew(entry, increment)
    return {
      auth: authInfo(raw, renewed, (await core.effectivePolicies(renewed)).identity),
      warnings,
    }
  }
  const revokeBatchGuard = (entry: TokenEntry) => {
    if (entry.type === 'batch') throw badRequest('batch tokens cannot be revoked')
  }

  return {
    paths: [
      { pattern: /^create-orphan$/, operations: { update: create(true) } },
      { pattern: /^create$/, operations: { update: create(false) } },
      {
        pattern: /^lookup-self$/,
        operations: {
          read: async (req) => ({ data: await lookupData(req.token!, req.clientToken!) }),
        },
      },
      {
        pattern: /^lookup$/,
        operations: {
          read: (req) => lookupOther(req),
          update: (req) => lookupOther(req),
        },
      },
      {
        pattern: /^lookup-accessor$/,
        operations: {
          update: async (req) => ({ data: await lookupData(await byAccessor(req), '') }),
        },
      },
      {
        pattern: /^renew-self$/,
        operations: { update: async (req) => renew(req.token!, req.clientToken!, req) },
      },
      {
        pattern: /^renew$/,
        operations: {
          update: async (req) => {
            const { entry, raw } = await byToken(req)
            return renew(entry, raw, req)
          },
        },
      },
      {
        pattern: /^revoke-self$/,
        operations: {
          update: async (req) => {
            revokeBatchGuard(req.token!)
            await core.tokens.revokeTree(req.token!)
            return null
          },
        },
      },
      {
        pattern: /^revoke$/,
        operations: {
          update: async (req) => {
            if (typeof req.data.token !== 'string' || !req.data.token)
              throw badRequest('missing token')
            const entry = await core.tokens.lookup(req.data.token)
            if (entry) {
              revokeBatchGuard(entry)
              await core.tokens.revokeTree(entry)
            }
            return null
          },
        },
      },
      {
        pattern: /^revoke-accessor$/,
        operations: {
          update: async (req) => {
            const entry = await byAccessor(req)
            revokeBatchGuard(entry)
            await core.tokens.revokeTree(entry)
            return null
          },
        },
      },
      {
        pattern: /^revoke-orphan$/,
        sudo: true,
        operations: {
          update: async (req) => {
            const { entry } = await byToken(req)
            revokeBatchGuard(entry)
            await core.tokens.revokeOrphan(entry)
            return null
          },
        },
      },
      {
        pattern: /^accessors\/?$/,
        sudo: true,
        operations: { list: async () => ({ data: { keys: await core.tokens.listAccessors() } }) },
      },
      {
        pattern: /^tidy$/,
        operations: {
          update: async () => {
            await core.tokens.expireDue(10_000)
            return { status: 202, warnings: ['Tidy operation successfully started.'] }
          },
        },
      },
    ],
  }
}
