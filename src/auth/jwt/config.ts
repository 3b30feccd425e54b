import { createPublicKey } from 'node:crypto'
import type { CoreServices } from '../../core/services.js'
import { badRequest } from '../../core/errors.js'
import { optionalBool, optionalString, stringList, stringMap } from '../../core/fields.js'
import { sanitizeError } from '../../../plugins/sanitize.js'
import { nowMs, upsert } from '../../storage/storage.js'
import { checkCaPem, fetchWithCa, fetchWithRetry } from './fetch.js'

declare module '../../storage/tables.js' {
  interface Tables {
    jwt_configs: JwtConfigRow
  }
}

interface JwtConfigRow {
  mount_id: string
  /** JSON of {@link JwtConfig} without the client secret. */
  config: string
  /** `oidc_client_secret`, sealed by the barrier. */
  client_secret: string | null
  updated_at: number
}

/** Algorithms a JWT may be signed with. Symmetric algorithms and `none` are never accepted. */
export const SUPPORTED_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'EdDSA',
] as const

/** `auth/<jwt>/config` as stored (Vault's field names). Exactly one key source is set. */
export interface JwtConfig {
  oidc_discovery_url: string
  oidc_discovery_ca_pem: string
  oidc_client_id: string
  oidc_response_mode: string
  oidc_response_types: string[]
  jwks_url: string
  jwks_ca_pem: string
  jwt_validation_pubkeys: string[]
  jwt_supported_algs: string[]
  bound_issuer: string
  default_role: string
  provider_config: Record<string, string>
  namespace_in_state: boolean
}

/** The configuration plus what the key source needs at login, with a fingerprint for caches. */
export interface LoadedConfig {
  config: JwtConfig
  hasClientSecret: boolean
  updatedAt: number
}

const EMPTY: JwtConfig = {
  oidc_discovery_url: '',
  oidc_discovery_ca_pem: '',
  oidc_client_id: '',
  oidc_response_mode: '',
  oidc_response_types: [],
  jwks_url: '',
  jwks_ca_pem: '',
  jwt_validation_pubkeys: [],
  jwt_supported_algs: [],
  bound_issuer: '',
  default_role: '',
  provider_config: {},
  namespace_in_state: true,
}

/** The OIDC discovery document fields Stint uses. */
export interface DiscoveryDocument {
  issuer: string
  jwks_uri: string
}

/**
 * Fetches and checks `<url>/.well-known/openid-configuration`: it must be JSON with an `issuer`
 * equal to the URL (trailing slashes ignored) and an http(s) `jwks_uri`. Errors are 400s with a
 * sanitised message.
 */
export async function fetchDiscovery(
  url: string,
  fetchImpl: typeof fetch = fetchWithRetry,
): Promise<DiscoveryDocument> {
  const wellKnown = `${url.replace(/\/+$/, '')}/.well-known/openid-configuration`
  let body: unknown
  try {
    const res = await fetchImpl(wellKnown, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    })
    if (!res.ok) throw new Error(`unexpected HTTP status ${res.status}`)
    body = await res.json()
  } catch (err) {
    throw badRequest(`error checking oidc discovery URL: ${describeFetchError(err)}`)
  }
  const doc = body as Partial<DiscoveryDocument> | null
  if (!doc || typeof doc.issuer !== 'string' || typeof doc.jwks_uri !== 'string') {
    throw badRequest(
      'error checking oidc discovery URL: discovery document lacks issuer or jwks_uri',
    )
  }
  if (doc.issuer.replace(/\/+$/, '') !== url.replace(/\/+$/, '')) {
    throw badRequest(
      'error checking oidc discovery URL: issuer did not match the issuer returned by provider',
    )
  }
  checkHttpUrl(doc.jwks_uri, 'jwks_uri')
  return { issuer: doc.issuer, jwks_uri: doc.jwks_uri }
}

/** The fetch an issuer's documents are read with: trusting the config's CA bundle, if any. */
export function issuerFetch(config: JwtConfig): typeof fetch {
  const ca = config.oidc_discovery_url ? config.oidc_discovery_ca_pem : config.jwks_ca_pem
  return ca ? fetchWithCa(ca) : fetchWithRetry
}

/** A fetch/parse failure as a short, secret-free text. */
export function describeFetchError(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return sanitizeError(err).slice(0, 200) + sanitizeError(cause).slice(0, 200)
}

function checkHttpUrl(value: string, field: string): void {
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    throw badRequest(`${field} is not a valid URL`)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw badRequest(`${field} must be an http or https URL`)
  }
  if (parsed.username || parsed.password) throw badRequest(`${field} must not contain credentials`)
}

/**
 * Parses a config write (a full replacement, as in Vault). Validates the key source, the PEM keys
 * and the algorithms; the discovery document is fetched by the caller.
 */
export function parseConfig(data: Record<string, unknown>): {
  config: JwtConfig
  clientSecret?: string
} {
  const str = (field: keyof JwtConfig) => (optionalString(data[field], field) ?? '').trim()
  const config: JwtConfig = {
    ...EMPTY,
    oidc_discovery_url: str('oidc_discovery_url'),
    oidc_discovery_ca_pem: str('oidc_discovery_ca_pem'),
    oidc_client_id: str('oidc_client_id'),
    oidc_response_mode: str('oidc_response_mode'),
    oidc_response_types: stringList(data.oidc_response_types, 'oidc_response_types'),
    jwks_url: str('jwks_url'),
    jwks_ca_pem: str('jwks_ca_pem'),
    jwt_validation_pubkeys: stringList(
      typeof data.jwt_validation_pubkeys === 'string'
        ? [data.jwt_validation_pubkeys]
        : data.jwt_validation_pubkeys,
      'jwt_validation_pubkeys',
    ),
    jwt_supported_algs: stringList(data.jwt_supported_algs, 'jwt_supported_algs'),
    bound_issuer: str('bound_issuer'),
    default_role: str('default_role'),
    provider_config: stringMap(data.provider_config, 'provider_config') ?? {},
    namespace_in_state: optionalBool(data.namespace_in_state, 'namespace_in_state') ?? true,
  }
  const sources = [
    config.oidc_discovery_url,
    config.jwks_url,
    config.jwt_validation_pubkeys.length > 0 ? 'keys' : '',
  ].filter(Boolean)
  if (data.jwks_pairs !== undefined) throw badRequest('jwks_pairs is not supported; use jwks_url')
  if (sources.length !== 1) {
    throw badRequest(
      "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
    )
  }
  if (config.oidc_discovery_ca_pem)
    checkCaPem(config.oidc_discovery_ca_pem, 'oidc_discovery_ca_pem')
  if (config.jwks_ca_pem) checkCaPem(config.jwks_ca_pem, 'jwks_ca_pem')
  if (config.oidc_discovery_url) checkHttpUrl(config.oidc_discovery_url, 'oidc_discovery_url')
  if (config.jwks_url) checkHttpUrl(config.jwks_url, 'jwks_url')
  for (const pem of config.jwt_validation_pubkeys) {
    try {
      createPublicKey(pem)
    } catch {
      throw badRequest('error parsing public key in jwt_validation_pubkeys')
    }
  }
  for (const alg of config.jwt_supported_algs) {
    if (!(SUPPORTED_ALGS as readonly string[]).includes(alg)) {
      throw badRequest(`invalid jwt_supported_algs: ${alg.slice(0, 20)} is not supported`)
    }
  }
  const secret = optionalString(data.oidc_client_secret, 'oidc_client_secret')
  return { config, clientSecret: secret || undefined }
}

/** Storage of one mount's config (the client secret sealed by the barrier). */
export function createConfigStore(core: Pick<CoreServices, 'storage' | 'seal'>, mountId: string) {
  const db = core.storage.db
  return {
    async get(): Promise<LoadedConfig | undefined> {
      const row = await db
        .selectFrom('jwt_configs')
        .selectAll()
        .where('mount_id', '=', mountId)
        .executeTakeFirst()
      if (!row) return undefined
      return {
        config: { ...EMPTY, ...(JSON.parse(row.config) as Partial<JwtConfig>) },
        hasClientSecret: row.client_secret !== null,
        updatedAt: Number(row.updated_at),
      }
    },
    async put(config: JwtConfig, clientSecret?: string): Promise<void> {
      const sealed = clientSecret
        ? core.seal.barrier.encrypt('jwt_configs', 'client_secret', mountId, clientSecret)
        : null
      await upsert(
        core.storage,
        'jwt_configs',
        {
          mount_id: mountId,
          config: JSON.stringify(config),
          client_secret: sealed,
          updated_at: nowMs(),
        },
        ['mount_id'],
        ['config', 'client_secret', 'updated_at'],
      )
    },
    async delete(): Promise<void> {
      await db.deleteFrom('jwt_configs').where('mount_id', '=', mountId).execute()
    },
  }
}

export type ConfigStore = ReturnType<typeof createConfigStore>
