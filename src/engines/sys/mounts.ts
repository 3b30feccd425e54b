import { ApiError, badRequest, permissionDenied } from '../../core/errors.js'
import type { CoreServices } from '../../core/services.js'
import type { MountConfig, MountEntry } from '../../core/mounts.js'
import type { LogicalRequest, PathDef } from '../../core/request.js'
import { parseDuration } from '../../core/duration.js'
import { requireString, stringList, stringMap } from '../../core/fields.js'

/** sys/mounts, sys/auth (enable, disable, list, tune) and sys/internal/ui/mounts. */
export function mountPaths(
  core: Pick<CoreServices, 'mounts' | 'mountTtls' | 'aclFor' | 'authenticate'>,
): PathDef[] {
  const listing = (kind: 'secret' | 'auth') => async () => {
    const data: Record<string, unknown> = {}
    for (const m of core.mounts.list(kind))
      data[kind === 'auth' ? m.path.slice(5) : m.path] = mountInfo(core, m)
    return { data, injectTopLevel: true }
  }
  const enable =
    (kind: 'secret' | 'auth') => async (req: LogicalRequest, params: Record<string, string>) => {
      let type = requireString(req.data.type, 'type')
      let options = stringMap(req.data.options, 'options')
      if (kind === 'secret' && type === 'kv-v2') {
        type = 'kv'
        options = { ...options, version: '2' }
      }
      if (kind === 'secret' && type === 'kv' && !options?.version)
        options = { ...options, version: '1' }
      await core.mounts.enable({
        path: kind === 'auth' ? `auth/${params.path}` : params.path!,
        kind,
        type,
        description: typeof req.data.description === 'string' ? req.data.description : '',
        options,
        config: parseConfig(req.data.config),
        local: req.data.local === true,
        sealWrap: req.data.seal_wrap === true,
      })
      return null
    }
  const one =
    (kind: 'secret' | 'auth') => async (_req: LogicalRequest, params: Record<string, string>) => {
      const m = core.mounts.get(kind === 'auth' ? `auth/${params.path}` : params.path!)
      if (!m || m.entry.kind !== kind) return null
      return { data: mountInfo(core, m.entry) }
    }
  const disable =
    (kind: 'secret' | 'auth') => async (_req: LogicalRequest, params: Record<string, string>) => {
      const path = kind === 'auth' ? `auth/${params.path}` : params.path!
      const m = core.mounts.get(path)
      if (m && m.entry.kind !== kind) throw badRequest(`no ${kind} mount at ${path}`)
      await core.mounts.disable(path)
      return null
    }
  const readTune =
    (kind: 'secret' | 'auth') => async (_req: LogicalRequest, params: Record<string, string>) => {
      const m = core.mounts.get(kind === 'auth' ? `auth/${params.path}` : params.path!)
      if (!m || m.entry.kind !== kind)
        throw badRequest(`cannot fetch sysview for path "${params.path}"`)
      const { defaultTtl, maxTtl } = core.mountTtls(m.entry)
      return {
        data: {
          default_lease_ttl: defaultTtl,
          max_lease_ttl: maxTtl,
          force_no_cache: m.entry.config.forceNoCache,
          description: m.entry.description,
          options: m.entry.options,
        },
        injectTopLevel: true,
      }
    }
  const writeTune =
    (kind: 'secret' | 'auth') => async (req: LogicalRequest, params: Record<string, string>) => {
      const path = kind === 'auth' ? `auth/${params.path}` : params.path!
      const m = core.mounts.get(path)
      if (!m || m.entry.kind !== kind) throw badRequest(`no mount at ${path}`)
      await core.mounts.tune(path, {
        config: parseConfig(req.data),
        description: typeof req.data.description === 'string' ? req.data.description : undefined,
        options: stringMap(req.data.options, 'options') ?? undefined,
      })
      return null
    }

  return [
    { pattern: /^mounts\/?$/, operations: { read: listing('secret') } },
    {
      pattern: /^mounts\/(?<path>.+?)\/tune\/?$/,
      operations: { read: readTune('secret'), update: writeTune('secret') },
    },
    {
      pattern: /^mounts\/(?<path>.+)$/,
      operations: { read: one('secret'), update: enable('secret'), delete: disable('secret') },
    },
    { pattern: /^auth\/?$/, operations: { read: listing('auth') } },
    {
      pattern: /^auth\/(?<path>.+?)\/tune\/?$/,
      sudo: true,
      operations: { read: readTune('auth'), update: writeTune('auth') },
    },
    {
      pattern: /^auth\/(?<path>.+)$/,
      sudo: true,
      operations: { read: one('auth'), update: enable('auth'), delete: disable('auth') },
    },
    {
      // Unauthenticated path, token checked inside (Vault Agent and `kv` commands call it).
      pattern: /^internal\/ui\/mounts\/(?<path>.+)$/,
      unauthenticated: true,
      operations: {
        read: async (req, params) => {
          const path = params.path!
          const denied = new ApiError(
            403,
            `preflight capability check returned 403, please ensure client's policies grant access to path "${path}"`,
          )
          const hit = core.mounts.match(path)
          if (!hit) throw denied
          let token
          try {
            token = await core.authenticate(req)
          } catch {
            throw permissionDenied()
          }
          const { acl } = await core.aclFor(token)
          if (!acl.hasAnyUnder(hit.entry.path)) throw denied
          return {
            data: {
              ...mountInfo(core, hit.entry),
              path: hit.entry.kind === 'auth' ? hit.entry.path.slice(5) : hit.entry.path,
            },
          }
        },
      },
    },
    {
      pattern: /^internal\/ui\/mounts\/?$/,
      operations: {
        read: async () => {
          const secret: Record<string, unknown> = {}
          const auth: Record<string, unknown> = {}
          for (const m of core.mounts.list('secret')) secret[m.path] = mountInfo(core, m)
          for (const m of core.mounts.list('auth')) auth[m.path.slice(5)] = mountInfo(core, m)
          return { data: { secret, auth } }
        },
      },
    },
  ]
}

/** The mount-info object of `GET sys/mounts`. */
export function mountInfo(
  core: Pick<CoreServices, 'mountTtls'>,
  m: MountEntry,
): Record<string, unknown> {
  const config: Record<string, unknown> = {
    default_lease_ttl: m.config.defaultLeaseTtl,
    max_lease_ttl: m.config.maxLeaseTtl,
    force_no_cache: m.config.forceNoCache,
  }
  if (m.kind === 'auth') config.token_type = m.config.tokenType ?? 'default-service'
  if (m.config.listingVisibility) config.listing_visibility = m.config.listingVisibility
  if (m.config.auditNonHmacRequestKeys)
    config.audit_non_hmac_request_keys = m.config.auditNonHmacRequestKeys
  if (m.config.auditNonHmacResponseKeys)
    config.audit_non_hmac_response_keys = m.config.auditNonHmacResponseKeys
  void core
  return {
    type: m.type,
    description: m.description,
    accessor: m.accessor,
    uuid: m.id,
    local: m.local,
    seal_wrap: m.sealWrap,
    external_entropy_access: false,
    options: m.options,
    config,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    deprecation_status: m.type === 'system' || m.type === 'token' ? undefined : 'supported',
  }
}

function parseConfig(raw: unknown): Partial<MountConfig> {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw badRequest('config must be an object')
  const c = raw as Record<string, unknown>
  const out: Partial<MountConfig> = {}
  const ttl = (v: unknown, f: string) => (v === 'system' ? 0 : parseDuration(v, f))
  if (c.default_lease_ttl !== undefined)
    out.defaultLeaseTtl = ttl(c.default_lease_ttl, 'default_lease_ttl')
  if (c.max_lease_ttl !== undefined) out.maxLeaseTtl = ttl(c.max_lease_ttl, 'max_lease_ttl')
  if (c.force_no_cache !== undefined) out.forceNoCache = c.force_no_cache === true
  if (c.listing_visibility !== undefined) {
    if (!['', 'hidden', 'unauth'].includes(String(c.listing_visibility))) {
      throw badRequest('invalid listing_visibility')
    }
    out.listingVisibility = String(c.listing_visibility)
  }
  if (c.audit_non_hmac_request_keys !== undefined) {
    out.auditNonHmacRequestKeys = stringList(
      c.audit_non_hmac_request_keys,
      'audit_non_hmac_request_keys',
    )
  }
  if (c.audit_non_hmac_response_keys !== undefined) {
    out.auditNonHmacResponseKeys = stringList(
      c.audit_non_hmac_response_keys,
      'audit_non_hmac_response_keys',
    )
  }
  if (c.token_type !== undefined) out.tokenType = String(c.token_type)
  return out
}
