import type { CoreServices } from '../core/services.js'
import type { IdentityStore } from '../identity/types.js'
import type { MountEntry } from '../core/mounts.js'
import type { AuthInfo } from '../core/request.js'
import type { TokenEntry } from '../core/tokens.js'
import { parseDuration } from '../core/duration.js'
import { parseCidrs } from '../core/cidr.js'
import { normalizePolicies, optionalBool, optionalInt, stringList } from '../core/fields.js'
import { badRequest } from '../core/errors.js'

/** The `token_*` fields every auth method role carries (Vault's tokenutil). Durations in seconds. */
export interface TokenFields {
  tokenPolicies: string[]
  tokenTtl: number
  tokenMaxTtl: number
  tokenExplicitMaxTtl: number
  tokenPeriod: number
  tokenBoundCidrs: string[]
  tokenNumUses: number
  tokenNoDefaultPolicy: boolean
  tokenType: 'default' | 'service' | 'batch' | 'default-service' | 'default-batch'
}

export const DEFAULT_TOKEN_FIELDS: TokenFields = {
  tokenPolicies: [],
  tokenTtl: 0,
  tokenMaxTtl: 0,
  tokenExplicitMaxTtl: 0,
  tokenPeriod: 0,
  tokenBoundCidrs: [],
  tokenNumUses: 0,
  tokenNoDefaultPolicy: false,
  tokenType: 'default',
}

/**
 * Reads `token_*` fields from a request body onto existing values (for updates), accepting the
 * deprecated names (`policies`, `ttl`, `max_ttl`, `period`, `num_uses`, `bound_cidrs`) too.
 */
export function parseTokenFields(
  data: Record<string, unknown>,
  base: TokenFields = DEFAULT_TOKEN_FIELDS,
): TokenFields {
  const pick = (name: string, legacy?: string) =>
    data[name] !== undefined ? data[name] : legacy ? data[legacy] : undefined
  const out = { ...base }
  const policies = pick('token_policies', 'policies')
  if (policies !== undefined)
    out.tokenPolicies = normalizePolicies(stringList(policies, 'token_policies'))
  const ttl = pick('token_ttl', 'ttl')
  if (ttl !== undefined) out.tokenTtl = parseDuration(ttl, 'token_ttl')
  const maxTtl = pick('token_max_ttl', 'max_ttl')
  if (maxTtl !== undefined) out.tokenMaxTtl = parseDuration(maxTtl, 'token_max_ttl')
  const explicit = pick('token_explicit_max_ttl')
  if (explicit !== undefined)
    out.tokenExplicitMaxTtl = parseDuration(explicit, 'token_explicit_max_ttl')
  const period = pick('token_period', 'period')
  if (period !== undefined) out.tokenPeriod = parseDuration(period, 'token_period')
  const cidrs = pick('token_bound_cidrs', 'bound_cidrs')
  if (cidrs !== undefined) out.tokenBoundCidrs = parseCidrs(cidrs, 'token_bound_cidrs')
  const uses = pick('token_num_uses', 'num_uses')
  if (uses !== undefined) out.tokenNumUses = optionalInt(uses, 'token_num_uses') ?? 0
  const noDefault = optionalBool(pick('token_no_default_policy'), 'token_no_default_policy')
  if (noDefault !== undefined) out.tokenNoDefaultPolicy = noDefault
  const type = pick('token_type')
  if (type !== undefined) {
    if (
      !['default', 'service', 'batch', 'default-service', 'default-batch'].includes(String(type))
    ) {
      throw badRequest('invalid token_type')
    }
    out.tokenType = String(type) as TokenFields['tokenType']
  }
  if (out.tokenMaxTtl > 0 && out.tokenTtl > out.tokenMaxTtl) {
    throw badRequest('"token_ttl" value must be less than "token_max_ttl" value')
  }
  return out
}

/** The `token_*` fields as Vault returns them on a role read (durations in seconds). */
export function tokenFieldsResponse(f: TokenFields): Record<string, unknown> {
  return {
    token_policies: f.tokenPolicies,
    token_ttl: f.tokenTtl,
    token_max_ttl: f.tokenMaxTtl,
    token_explicit_max_ttl: f.tokenExplicitMaxTtl,
    token_period: f.tokenPeriod,
    token_bound_cidrs: f.tokenBoundCidrs,
    token_num_uses: f.tokenNumUses,
    token_no_default_policy: f.tokenNoDefaultPolicy,
    token_type: f.tokenType,
  }
}

export interface LoginInput {
  mount: MountEntry
  fields: TokenFields
  /** Token metadata (Vault's `auth.metadata`): shown to clients, never trusted for decisions. */
  metadata: Record<string, string>
  /**
   * What this auth method verified at login (a JWT's mapped claims, a userpass username):
   * recorded on the token with the mount, where no caller can write it.
   */
  verifiedClaims: Record<string, string>
  /** The second factor this login checked (`totp`), if any. */
  mfa?: string
  /** CI logins: JIT grants belong to this token and its children, not to the entity. */
  holdsOwnGrants?: boolean
  displayName: string
  entityId?: string
  /** Path the token is created at, e.g. `auth/approle/login`. */
  path: string
}

/**
 * Creates the token a successful login returns, shaped by the role's `token_*` fields and the
 * mount's TTLs. Login tokens are orphans, as in Vault.
 */
export async function issueLoginToken(
  core: Pick<CoreServices, 'mountTtls' | 'tokens'> & {
    identity: Pick<IdentityStore, 'policiesFor'>
  },
  input: LoginInput,
): Promise<{ auth: AuthInfo; entry: TokenEntry; warnings: string[] }> {
  const { fields } = input
  if (fields.tokenPolicies.includes('root'))
    throw badRequest('the root policy cannot be granted by a login')
  const policies = fields.tokenNoDefaultPolicy
    ? fields.tokenPolicies
    : normalizePolicies([...fields.tokenPolicies, 'default'])
  const mountTtls = core.mountTtls(input.mount)
  const maxTtl =
    fields.tokenMaxTtl > 0 ? Math.min(fields.tokenMaxTtl, mountTtls.maxTtl) : mountTtls.maxTtl
  const created = await core.tokens.create({
    policies,
    meta: input.metadata,
    displayName:
      `${input.mount.path.slice(5).replace(/\/$/, '').replace(/\//g, '-')}-${input.displayName}`.slice(
        0,
        255,
      ),
    ttl: fields.tokenTtl,
    explicitMaxTtl: fields.tokenExplicitMaxTtl,
    period: fields.tokenPeriod,
    numUses: fields.tokenNumUses,
    path: input.path,
    mountAccessor: input.mount.accessor,
    entityId: input.entityId ?? '',
    type:
      fields.tokenType === 'batch' || fields.tokenType === 'default-batch' ? 'batch' : 'service',
    orphan: true,
    boundCidrs: fields.tokenBoundCidrs,
    login: { mount: input.mount.accessor, claims: input.verifiedClaims },
    mfa: input.mfa ?? null,
    holdsOwnGrants: input.holdsOwnGrants ?? false,
    defaultTtl: Math.min(mountTtls.defaultTtl, maxTtl),
    maxTtl,
  })
  const identity = input.entityId ? await core.identity.policiesFor(input.entityId) : []
  return {
    auth: authInfo(created.token, created.entry, identity),
    entry: created.entry,
    warnings: created.warnings,
  }
}

/** The `auth` block for a token (login, create, renew). */
export function authInfo(
  token: string,
  entry: TokenEntry,
  identityPolicies: string[] = [],
): AuthInfo {
  const ttl =
    entry.expireTime === null ? 0 : Math.max(0, Math.round((entry.expireTime - Date.now()) / 1000))
  return {
    clientToken: token,
    accessor: entry.accessor,
    policies: [...new Set([...entry.policies, ...identityPolicies])].sort(),
    tokenPolicies: entry.policies,
    identityPolicies,
    metadata: entry.meta,
    leaseDuration: ttl,
    renewable: entry.renewable,
    entityId: entry.entityId,
    tokenType: entry.type,
    orphan: entry.orphan,
    numUses: entry.numUses,
  }
}
