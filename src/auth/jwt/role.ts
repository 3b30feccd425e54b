import type { Storage } from '../../storage/storage.js'
import { namesInMount, nowMs, upsert } from '../../storage/storage.js'
import { badRequest } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'
import { optionalBool, optionalString, stringList } from '../../core/fields.js'
import {
  DEFAULT_TOKEN_FIELDS,
  parseTokenFields,
  tokenFieldsResponse,
  type TokenFields,
} from '../token-fields.js'
import { parseBoundClaims, parseClaimMappings, type BoundClaims } from './claims.js'

declare module '../../storage/tables.js' {
  interface Tables {
    jwt_roles: JwtRoleRow
  }
}

interface JwtRoleRow {
  mount_id: string
  name: string
  role_type: string
  user_claim: string
  user_claim_json_pointer: number
  bound_subject: string
  bound_audiences: string
  bound_claims_type: string
  bound_claims: string
  claim_mappings: string
  groups_claim: string
  expiration_leeway: number
  not_before_leeway: number
  clock_skew_leeway: number
  /** JSON of the OIDC-flow-only fields ({@link OidcFields}). */
  oidc: string
  token_fields: string
  created_at: number
  updated_at: number
}

/** Fields only the browser OIDC flow uses; stored and returned so Vault configs round-trip. */
interface OidcFields {
  allowed_redirect_uris: string[]
  oidc_scopes: string[]
  verbose_oidc_logging: boolean
  max_age: number
  callback_mode: string
}

/** A JWT/OIDC role. Leeways are seconds; a negative leeway means "none" (Vault's `-1`). */
export interface JwtRole {
  name: string
  roleType: 'jwt' | 'oidc'
  userClaim: string
  userClaimJsonPointer: boolean
  boundSubject: string
  boundAudiences: string[]
  boundClaimsType: 'string' | 'glob'
  boundClaims: BoundClaims
  claimMappings: Record<string, string>
  groupsClaim: string
  expirationLeeway: number
  notBeforeLeeway: number
  clockSkewLeeway: number
  oidc: OidcFields
  token: TokenFields
}

const DEFAULT_OIDC: OidcFields = {
  allowed_redirect_uris: [],
  oidc_scopes: [],
  verbose_oidc_logging: false,
  max_age: 0,
  callback_mode: 'client',
}

/** Vault accepts negative leeways (-1 = no leeway); durations are otherwise non-negative. */
function leeway(value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback
  if (value === -1 || value === '-1') return -1
  return parseDuration(value, field)
}

/** Applies a role write onto an existing role (or defaults) and checks Vault's role rules. */
export function parseRole(name: string, data: Record<string, unknown>, base?: JwtRole): JwtRole {
  const has = (k: string) => data[k] !== undefined
  const roleType = has('role_type') ? String(data.role_type) : (base?.roleType ?? 'oidc')
  if (roleType !== 'jwt' && roleType !== 'oidc')
    throw badRequest(`invalid 'role_type': ${roleType.slice(0, 20)}`)
  const boundClaimsType = has('bound_claims_type')
    ? String(data.bound_claims_type || 'string')
    : (base?.boundClaimsType ?? 'string')
  if (boundClaimsType !== 'string' && boundClaimsType !== 'glob') {
    throw badRequest(`invalid 'bound_claims_type': ${boundClaimsType.slice(0, 20)}`)
  }
  const role: JwtRole = {
    name,
    roleType,
    userClaim: has('user_claim')
      ? (optionalString(data.user_claim, 'user_claim') ?? '').trim()
      : (base?.userClaim ?? ''),
    userClaimJsonPointer:
      optionalBool(data.user_claim_json_pointer, 'user_claim_json_pointer') ??
      base?.userClaimJsonPointer ??
      false,
    boundSubject: has('bound_subject')
      ? (optionalString(data.bound_subject, 'bound_subject') ?? '')
      : (base?.boundSubject ?? ''),
    boundAudiences: has('bound_audiences')
      ? stringList(data.bound_audiences, 'bound_audiences')
      : (base?.boundAudiences ?? []),
    boundClaimsType,
    boundClaims: has('bound_claims')
      ? parseBoundClaims(data.bound_claims, boundClaimsType)
      : parseBoundClaims(base?.boundClaims ?? {}, boundClaimsType),
    claimMappings: has('claim_mappings')
      ? parseClaimMappings(data.claim_mappings)
      : (base?.claimMappings ?? {}),
    groupsClaim: has('groups_claim')
      ? (optionalString(data.groups_claim, 'groups_claim') ?? '')
      : (base?.groupsClaim ?? ''),
    expirationLeeway: leeway(
      data.expiration_leeway,
      'expiration_leeway',
      base?.expirationLeeway ?? 150,
    ),
    notBeforeLeeway: leeway(
      data.not_before_leeway,
      'not_before_leeway',
      base?.notBeforeLeeway ?? 150,
    ),
    clockSkewLeeway: leeway(
      data.clock_skew_leeway,
      'clock_skew_leeway',
      base?.clockSkewLeeway ?? 60,
    ),
    oidc: {
      allowed_redirect_uris: has('allowed_redirect_uris')
        ? stringList(data.allowed_redirect_uris, 'allowed_redirect_uris')
        : (base?.oidc.allowed_redirect_uris ?? []),
      oidc_scopes: has('oidc_scopes')
        ? stringList(data.oidc_scopes, 'oidc_scopes')
        : (base?.oidc.oidc_scopes ?? []),
      verbose_oidc_logging:
        optionalBool(data.verbose_oidc_logging, 'verbose_oidc_logging') ??
        base?.oidc.verbose_oidc_logging ??
        false,
      max_age: has('max_age') ? parseDuration(data.max_age, 'max_age') : (base?.oidc.max_age ?? 0),
      callback_mode: has('callback_mode')
        ? String(data.callback_mode)
        : (base?.oidc.callback_mode ?? 'client'),
    },
    token: parseTokenFields(data, base?.token ?? DEFAULT_TOKEN_FIELDS),
  }
  if (!role.userClaim) throw badRequest('a user claim must be defined on the role')
  if (role.roleType === 'jwt') {
    const bound =
      role.boundAudiences.length > 0 ||
      role.boundSubject !== '' ||
      Object.keys(role.boundClaims).length > 0 ||
      role.token.tokenBoundCidrs.length > 0
    if (!bound)
      throw badRequest('must have at least one bound constraint when creating/updating a role')
  } else if (role.oidc.allowed_redirect_uris.length === 0) {
    throw badRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.")
  }
  return role
}

/** A role as Vault returns it on read. */
export function roleResponse(role: JwtRole): Record<string, unknown> {
  return {
    role_type: role.roleType,
    user_claim: role.userClaim,
    user_claim_json_pointer: role.userClaimJsonPointer,
    bound_subject: role.boundSubject,
    bound_audiences: role.boundAudiences,
    bound_claims_type: role.boundClaimsType,
    bound_claims: Object.keys(role.boundClaims).length > 0 ? role.boundClaims : null,
    claim_mappings: Object.keys(role.claimMappings).length > 0 ? role.claimMappings : null,
    groups_claim: role.groupsClaim,
    expiration_leeway: role.expirationLeeway,
    not_before_leeway: role.notBeforeLeeway,
    clock_skew_leeway: role.clockSkewLeeway,
    ...role.oidc,
    ...tokenFieldsResponse(role.token),
    // Deprecated names Vault still returns.
    policies: role.token.tokenPolicies,
    ttl: role.token.tokenTtl,
    max_ttl: role.token.tokenMaxTtl,
    period: role.token.tokenPeriod,
    num_uses: role.token.tokenNumUses,
    bound_cidrs: role.token.tokenBoundCidrs,
  }
}

/** Roles of one JWT mount. */
export function createRoleStore(storage: Storage, mountId: string) {
  const db = storage.db
  return {
    async get(name: string): Promise<JwtRole | undefined> {
      const row = await db
        .selectFrom('jwt_roles')
        .selectAll()
        .where('mount_id', '=', mountId)
        .where('name', '=', name)
        .executeTakeFirst()
      return row ? fromRow(row) : undefined
    },
    async put(role: JwtRole): Promise<void> {
      const now = nowMs()
      const row: JwtRoleRow = {
        mount_id: mountId,
        name: role.name,
        role_type: role.roleType,
        user_claim: role.userClaim,
        user_claim_json_pointer: role.userClaimJsonPointer ? 1 : 0,
        bound_subject: role.boundSubject,
        bound_audiences: JSON.stringify(role.boundAudiences),
        bound_claims_type: role.boundClaimsType,
        bound_claims: JSON.stringify(role.boundClaims),
        claim_mappings: JSON.stringify(role.claimMappings),
        groups_claim: role.groupsClaim,
        expiration_leeway: role.expirationLeeway,
        not_before_leeway: role.notBeforeLeeway,
        clock_skew_leeway: role.clockSkewLeeway,
        oidc: JSON.stringify(role.oidc),
        token_fields: JSON.stringify(role.token),
        created_at: now,
        updated_at: now,
      }
      const update = Object.keys(row).filter((k) => !['mount_id', 'name', 'created_at'].includes(k))
      await upsert(storage, 'jwt_roles', { ...row }, ['mount_id', 'name'], update)
    },
    async delete(name: string): Promise<void> {
      await db
        .deleteFrom('jwt_roles')
        .where('mount_id', '=', mountId)
        .where('name', '=', name)
        .execute()
    },
    list(): Promise<string[]> {
      return namesInMount(storage, 'jwt_roles', mountId)
    },
    async deleteAll(): Promise<void> {
      await db.deleteFrom('jwt_roles').where('mount_id', '=', mountId).execute()
    },
  }
}

export type JwtRoleStore = ReturnType<typeof createRoleStore>

function fromRow(row: JwtRoleRow): JwtRole {
  return {
    name: row.name,
    roleType: row.role_type === 'jwt' ? 'jwt' : 'oidc',
    userClaim: row.user_claim,
    userClaimJsonPointer: Number(row.user_claim_json_pointer) === 1,
    boundSubject: row.bound_subject,
    boundAudiences: JSON.parse(row.bound_audiences) as string[],
    boundClaimsType: row.bound_claims_type === 'glob' ? 'glob' : 'string',
    boundClaims: JSON.parse(row.bound_claims) as BoundClaims,
    claimMappings: JSON.parse(row.claim_mappings) as Record<string, string>,
    groupsClaim: row.groups_claim,
    expirationLeeway: Number(row.expiration_leeway),
    notBeforeLeeway: Number(row.not_before_leeway),
    clockSkewLeeway: Number(row.clock_skew_leeway),
    oidc: { ...DEFAULT_OIDC, ...(JSON.parse(row.oidc) as Partial<OidcFields>) },
    token: { ...DEFAULT_TOKEN_FIELDS, ...(JSON.parse(row.token_fields) as Partial<TokenFields>) },
  }
}
