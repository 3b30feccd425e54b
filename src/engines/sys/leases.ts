import type { CoreServices } from '../../core/services.js'
import { badRequest } from '../../core/errors.js'
import type { LeaseInfo, LeaseManager } from '../../core/leases/types.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import { parseDuration } from '../../core/duration.js'
import { optionalBool, optionalInt, optionalString } from '../../core/fields.js'
import { sanitizeError } from '../../../plugins/sanitize.js'

type Params = Record<string, string>

/** Most irrevocable leases listed without `force` (Vault's limit). */
const LIST_LIMIT = 10_000

/**
 * `sys/leases/*` (reference §2.6) and Vault's legacy `sys/renew`, `sys/revoke`,
 * `sys/revoke-prefix`, `sys/revoke-force` aliases (node-vault's `revokePrefix` still calls them).
 * Who may act on a lease is the ACL's decision on these paths; prefix revocation and listing
 * need sudo.
 */
export function leasePaths(core: Pick<CoreServices, 'leases' | 'logger'>): PathDef[] {
  const leases = (): LeaseManager => core.leases
  const leaseIdOf = (req: LogicalRequest, params: Params) => {
    const id = params.id || optionalString(req.data.lease_id, 'lease_id')?.trim()
    if (!id) throw badRequest('lease_id must be specified')
    return id
  }

  const lookup = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const id = optionalString(req.data.lease_id, 'lease_id')?.trim()
    if (!id) throw badRequest('missing lease id')
    const info = await leases().lookup(id)
    if (!info || info.state === 'pending') throw badRequest('invalid lease')
    return { data: lookupData(info) }
  }

  const listLookup = async (_req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const prefix = params.prefix ?? ''
    const keys = await leases().list(prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`)
    return { data: { keys } }
  }

  const renew = async (req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const id = leaseIdOf(req, params)
    const increment = parseDuration(req.data.increment, 'increment')
    if (increment < 0) throw badRequest('increment must not be negative')
    const { ttl, warnings } = await leases().renew(id, increment)
    return { data: null, secret: { leaseId: id, ttl, renewable: true }, warnings }
  }

  const revoke = async (req: LogicalRequest, params: Params): Promise<LogicalResponse | null> => {
    const id = leaseIdOf(req, params)
    if (optionalBool(req.data.sync, 'sync') === false) {
      background(core, 'lease revocation', () => leases().revoke(id))
      return { status: 202, data: null }
    }
    await leases().revoke(id)
    return null
  }

  const revokePrefix = async (req: LogicalRequest, params: Params) => {
    const prefix = params.prefix ?? ''
    if (optionalBool(req.data.sync, 'sync') === false) {
      background(core, 'prefix revocation', () => leases().revokePrefix(prefix))
      return { status: 202, data: null }
    }
    const summary = await leases().revokePrefix(prefix)
    if (summary.failed > 0) {
      throw badRequest(
        `failed to revoke ${summary.failed} lease(s) under "${prefix}" (they will be retried): ${summary.firstError}`,
      )
    }
    return null
  }

  const revokeForce = async (_req: LogicalRequest, params: Params) => {
    const summary = await leases().revokePrefix(params.prefix ?? '', { force: true })
    if (summary.failed === 0) return null
    return {
      data: null,
      warnings: [
        `${summary.failed} lease(s) were removed although their backend revocation failed; the ` +
          `credentials may still exist on the target. First error: ${summary.firstError}`,
      ],
    }
  }

  const tidy = async () => {
    background(core, 'lease tidy', () => leases().tidy())
    return {
      status: 202,
      data: null,
      warnings: [
        "Tidy operation successfully started. Any information from the operation will be printed to Stint's server logs.",
      ],
    }
  }

  const countLeases = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const state = leaseType(req.data.type, true)
    const counts = await leases().countByMount(state ? { state } : {})
    const total = Object.values(counts).reduce((a, b) => a + b, 0)
    return { data: { lease_count: total, counts } }
  }

  const listIrrevocable = async (req: LogicalRequest): Promise<LogicalResponse> => {
    leaseType(req.data.type, false)
    const force = optionalBool(req.data.force, 'force') === true
    const limit = optionalInt(req.data.limit, 'limit', 1) ?? (force ? 2 ** 31 - 1 : LIST_LIMIT)
    const rows = await leases().irrevocable(limit + 1)
    const warnings =
      rows.length > limit
        ? [`more than ${limit} irrevocable leases: listing the first ${limit}`]
        : []
    const shown = rows.slice(0, limit)
    return {
      data: {
        lease_count: shown.length,
        leases: shown.map((l) => ({
          lease_id: l.id,
          mount_path: l.mountPath,
          error: l.revokeError ?? '',
          attempts: l.attempts,
          expire_time: new Date(l.expireTime).toISOString(),
        })),
      },
      warnings,
    }
  }

  const renewOps = { update: renew }
  const revokeOps = { update: revoke }
  return [
    { pattern: /^leases\/lookup\/?$/, operations: { update: lookup, list: listLookup } },
    { pattern: /^leases\/lookup\/(?<prefix>.+)$/, operations: { list: listLookup }, sudo: true },
    { pattern: /^leases\/renew\/?$/, operations: renewOps },
    { pattern: /^leases\/renew\/(?<id>.+)$/, operations: renewOps },
    { pattern: /^leases\/revoke\/?$/, operations: revokeOps },
    { pattern: /^leases\/revoke\/(?<id>.+)$/, operations: revokeOps },
    {
      pattern: /^leases\/revoke-prefix\/(?<prefix>.+)$/,
      operations: { update: revokePrefix },
      sudo: true,
    },
    {
      pattern: /^leases\/revoke-force\/(?<prefix>.+)$/,
      operations: { update: revokeForce },
      sudo: true,
    },
    { pattern: /^leases\/tidy\/?$/, operations: { update: tidy } },
    { pattern: /^leases\/count\/?$/, operations: { read: countLeases } },
    { pattern: /^leases\/?$/, operations: { read: listIrrevocable } },
    // Legacy aliases (Vault; removed from OpenBao 2.5.4 but still used by node-vault).
    { pattern: /^renew\/?$/, operations: renewOps },
    { pattern: /^renew\/(?<id>.+)$/, operations: renewOps },
    { pattern: /^revoke\/?$/, operations: revokeOps },
    { pattern: /^revoke\/(?<id>.+)$/, operations: revokeOps },
    { pattern: /^revoke-prefix\/(?<prefix>.+)$/, operations: { update: revokePrefix }, sudo: true },
    { pattern: /^revoke-force\/(?<prefix>.+)$/, operations: { update: revokeForce }, sudo: true },
  ]
}

/**
 * `sys/leases/lookup` data, as Vault shapes it (RFC 3339 times, seconds left). Stint adds
 * `revoke_error` once a revocation failed, and `state` (`irrevocable`) once it gave up; such a
 * lease cannot be renewed, so it is not `renewable` either.
 */
function lookupData(info: LeaseInfo): Record<string, unknown> {
  return {
    id: info.id,
    path: info.path,
    issue_time: new Date(info.issueTime).toISOString(),
    expire_time: new Date(info.expireTime).toISOString(),
    last_renewal: info.lastRenewal === null ? null : new Date(info.lastRenewal).toISOString(),
    renewable: info.renewable && info.state === 'active',
    ttl: info.ttl,
    ...(info.revokeError ? { revoke_error: info.revokeError } : {}),
    ...(info.state !== 'active' ? { state: info.state } : {}),
  }
}

/** The `type` query parameter: only `irrevocable` is a lease type (absent = all, when allowed). */
function leaseType(value: unknown, optional: boolean): 'irrevocable' | undefined {
  const type = optionalString(value, 'type')
  if ((type === undefined || type === '') && optional) return undefined
  if (type !== 'irrevocable')
    throw badRequest(`invalid lease type "${type ?? ''}": use "irrevocable"`)
  return 'irrevocable'
}

/** Runs work after the response (async revocation, tidy); failures only reach the log. */
function background(
  core: Pick<CoreServices, 'logger'>,
  what: string,
  work: () => Promise<unknown>,
): void {
  void work().catch((err: unknown) => {
    core.logger.warn({ err: sanitizeError(err) }, `${what} failed`)
  })
}
