import type { LoginDeps } from '../login-deps.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend, LogicalRequest, LogicalResponse } from '../../core/request.js'
import { badRequest } from '../../core/errors.js'
import { inCidrs } from '../../core/cidr.js'
import { sanitizeMessage } from '../../../plugins/sanitize.js'
import { issueLoginToken } from '../token-fields.js'
import { createConfigStore, fetchDiscovery, issuerFetch, parseConfig } from './config.js'
import { createRoleStore, parseRole, roleResponse } from './role.js'
import { createKeySourceCache, type KeySourceDeps } from './keys.js'
import { checkBoundClaims, getClaim, mapClaims, type Claims } from './claims.js'

const ROLE_NAME = '(?<name>\\w(?:[\\w.@-]*\\w)?)'

/**
 * The JWT/OIDC auth method (`auth/jwt/`, also mounted as type `oidc`): `config`, `role/<name>`
 * and `login` with Vault's checks and messages. Tokens are verified with `jose` against static
 * PEM keys, a JWKS URL or an OIDC discovery document; remote key sets are cached and refetched
 * when a token names an unknown `kid`, so key rotation at the issuer needs no restart.
 * The browser OIDC flow (`oidc/auth_url`, `oidc/callback`) is not served.
 */
export function createJwtBackend(
  core: LoginDeps,
  mount: MountEntry,
  deps: KeySourceDeps = {},
): Backend {
  const configs = createConfigStore(core, mount.id)
  const roles = createRoleStore(core.storage, mount.id)
  const keySources = createKeySourceCache(deps)

  const readConfig = async (): Promise<LogicalResponse | null> => {
    const loaded = await configs.get()
    if (!loaded) return null
    return { data: { ...loaded.config } }
  }

  const writeConfig = async (req: LogicalRequest): Promise<null> => {
    const { config, clientSecret } = parseConfig(req.data)
    if (config.oidc_discovery_url) {
      await fetchDiscovery(config.oidc_discovery_url, deps.fetchImpl ?? issuerFetch(config))
    }
    await configs.put(config, clientSecret)
    keySources.reset()
    return null
  }

  const writeRole = async (req: LogicalRequest, params: Record<string, string>): Promise<null> => {
    const existing = await roles.get(params.name!)
    await roles.put(parseRole(params.name!, req.data, existing))
    return null
  }

  const login = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const loaded = await configs.get()
    if (!loaded) throw badRequest('could not load configuration')
    const roleName =
      typeof req.data.role === 'string' && req.data.role !== ''
        ? req.data.role
        : loaded.config.default_role
    if (!roleName) throw badRequest('missing role')
    const role = await roles.get(roleName)
    if (!role)
      throw badRequest(`role "${sanitizeMessage(roleName.slice(0, 100))}" could not be found`)
    if (role.roleType === 'oidc') throw badRequest('role with oidc role_type is not allowed')
    const jwt = req.data.jwt
    if (typeof jwt !== 'string' || jwt === '') throw badRequest('missing token')
    if (
      role.token.tokenBoundCidrs.length > 0 &&
      !inCidrs(req.remoteAddress, role.token.tokenBoundCidrs)
    ) {
      throw badRequest('client address not authorized by the role bound CIDRs')
    }

    const skew = Math.max(0, role.clockSkewLeeway)
    const expLeeway = Math.max(0, role.expirationLeeway)
    const nbfLeeway = Math.max(0, role.notBeforeLeeway)
    const claims = (await keySources.for(loaded).verify(jwt, {
      audience: role.boundAudiences,
      subject: role.boundSubject,
      clockTolerance: skew + Math.max(expLeeway, nbfLeeway),
    })) as Claims
    checkTimes(claims, skew, expLeeway, nbfLeeway)
    if (role.boundAudiences.length === 0 && claims.aud !== undefined) {
      throw badRequest(
        'error validating claims: audience claim found in JWT but no audiences bound to the role',
      )
    }
    checkBoundClaims(claims, role.boundClaims, role.boundClaimsType)
    const mapped = mapClaims(claims, role.claimMappings)

    const userValue = getClaim(claims, role.userClaim, role.userClaimJsonPointer)
    if (userValue === undefined)
      throw badRequest(`claim "${role.userClaim.slice(0, 100)}" not found in token`)
    if (typeof userValue !== 'string' && typeof userValue !== 'number') {
      throw badRequest(`claim "${role.userClaim.slice(0, 100)}" could not be converted to string`)
    }
    const userName = String(userValue)
    if (role.groupsClaim) groupsFrom(claims, role.groupsClaim)

    const entityId = await core.identity.resolveAlias({
      mountAccessor: mount.accessor,
      mountType: mount.type,
      name: userName,
      metadata: mapped,
    })
    const { auth, warnings } = await issueLoginToken(core, {
      mount,
      fields: role.token,
      metadata: { ...mapped, role: role.name },
      verifiedClaims: { ...mapped, role: role.name },
      // A CI run is one login: its grants must not serve other runs of the same subject.
      holdsOwnGrants: true,
      displayName: userName,
      entityId,
      path: req.path.replace(/\/$/, ''),
    })
    return { auth, warnings: warnings.length > 0 ? warnings : undefined }
  }

  return {
    paths: [
      {
        pattern: /^config\/?$/,
        operations: { read: readConfig, update: writeConfig },
      },
      {
        pattern: /^role\/?$/,
        operations: { list: async () => ({ data: { keys: await roles.list() } }) },
      },
      {
        pattern: new RegExp(`^role/${ROLE_NAME}$`),
        existence: async (_req, params) => (await roles.get(params.name!)) !== undefined,
        operations: {
          read: async (_req, params) => {
            const role = await roles.get(params.name!)
            return role ? { data: roleResponse(role) } : null
          },
          create: writeRole,
          update: writeRole,
          delete: async (_req, params) => {
            await roles.delete(params.name!)
            return null
          },
        },
      },
      {
        pattern: /^login\/?$/,
        unauthenticated: true,
        operations: { update: login },
      },
    ],
    async cleanup() {
      await roles.deleteAll()
      await configs.delete()
    },
  }
}

/**
 * exp / nbf / iat with the role's separate leeways (jose already applied the widest one). As
 * Vault (hashicorp/cap jwt): a token needs at least one of the three, and one without `exp`
 * expires `expiration_leeway` after the later of `iat` and `nbf`, plus the clock skew; otherwise
 * a token with no exp, or only an old iat, would be valid forever.
 */
function checkTimes(claims: Claims, skew: number, expLeeway: number, nbfLeeway: number): void {
  const now = Math.floor(Date.now() / 1000)
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined)
  const exp = num(claims.exp)
  const nbf = num(claims.nbf)
  const iat = num(claims.iat)
  if (exp === undefined && nbf === undefined && iat === undefined) {
    throw badRequest(
      'error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token',
    )
  }
  const expired =
    exp !== undefined
      ? now > exp + skew + expLeeway
      : now > Math.max(iat ?? -Infinity, nbf ?? -Infinity) + expLeeway + skew
  if (expired) throw badRequest('error validating token: token is expired')
  if (nbf !== undefined && now < nbf - skew - nbfLeeway)
    throw badRequest('error validating token: token not valid yet')
  if (iat !== undefined && iat > now + skew)
    throw badRequest('error validating token: token issued in the future')
}

/** The groups claim must be a string or a list of strings (Vault's rule). */
function groupsFrom(claims: Claims, name: string): string[] {
  const value = getClaim(claims, name)
  if (value === undefined) throw badRequest(`"${name.slice(0, 100)}" claim not found in token`)
  const list = Array.isArray(value) ? value : [value]
  if (!list.every((g) => typeof g === 'string')) {
    throw badRequest(`"${name.slice(0, 100)}" claim could not be converted to string list`)
  }
  return list as string[]
}
