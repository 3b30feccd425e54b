import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  importSPKI,
  importX509,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose'
import { ApiError, badRequest } from '../../core/errors.js'
import { sanitizeMessage } from '../../../plugins/sanitize.js'
import {
  SUPPORTED_ALGS,
  describeFetchError,
  fetchDiscovery,
  issuerFetch,
  type JwtConfig,
  type LoadedConfig,
} from './config.js'

/** What the login checks the signature and standard claims with. */
export interface VerifyOptions {
  /** Expected `aud` (one of), when the role binds audiences. */
  audience?: string[]
  /** Expected `sub`, when the role binds a subject. */
  subject?: string
  /** Seconds; the widest leeway the role allows (finer checks follow in the login). */
  clockTolerance: number
}

/** Verifies JWTs for one mount's configuration. */
export interface KeySource {
  /** Issuer the token must carry (`bound_issuer`, else the discovery document's), if any. */
  issuer(): Promise<string | undefined>
  /** Checks signature, algorithm, issuer, subject, audience, exp/nbf; returns the claims. */
  verify(jwt: string, options: VerifyOptions): Promise<JWTPayload>
}

export interface KeySourceDeps {
  /** Refetch cooldown after a successful JWKS fetch (jose's default is 30 s). */
  jwksCooldownMs?: number
  /** How long a fetched JWKS is trusted before refetching (jose's default is 10 min). */
  jwksCacheMaxAgeMs?: number
  fetchImpl?: typeof fetch
}

/**
 * Keeps one key source per configuration version, so key sets (and their caches) survive between
 * logins and are rebuilt when the configuration changes, also when another node changed it.
 */
export function createKeySourceCache(deps: KeySourceDeps = {}) {
  let current: { fingerprint: string; source: KeySource } | undefined
  return {
    for(loaded: LoadedConfig): KeySource {
      const fingerprint = `${loaded.updatedAt}:${JSON.stringify(loaded.config)}`
      if (current?.fingerprint !== fingerprint)
        current = { fingerprint, source: createKeySource(loaded.config, deps) }
      return current.source
    },
    reset(): void {
      current = undefined
    },
  }
}

/** A key source for a config: static PEM keys, a JWKS URL, or OIDC discovery. */
export function createKeySource(config: JwtConfig, deps: KeySourceDeps = {}): KeySource {
  const algorithms =
    config.jwt_supported_algs.length > 0 ? config.jwt_supported_algs : [...SUPPORTED_ALGS]
  const fetchImpl = deps.fetchImpl ?? issuerFetch(config)
  const remote = (url: string) =>
    createRemoteJWKSet(new URL(url), {
      cooldownDuration: deps.jwksCooldownMs ?? 30_000,
      cacheMaxAge: deps.jwksCacheMaxAgeMs ?? 600_000,
      timeoutDuration: 10_000,
      [customFetch]: fetchImpl,
    })

  let discovered: Promise<{ issuer: string; jwks: JWTVerifyGetKey }> | undefined
  const discovery = () => {
    discovered ??= fetchDiscovery(config.oidc_discovery_url, fetchImpl).then(
      (doc) => ({ issuer: doc.issuer, jwks: remote(doc.jwks_uri) }),
      (err: unknown) => {
        discovered = undefined // retry on the next login
        throw err
      },
    )
    return discovered
  }
  const jwks = config.jwks_url ? remote(config.jwks_url) : undefined
  const staticKeys = createStaticKeys(config.jwt_validation_pubkeys)

  const issuer = async () => {
    if (config.bound_issuer) return config.bound_issuer
    if (config.oidc_discovery_url) return (await discovery()).issuer
    return undefined
  }

  return {
    issuer,
    async verify(jwt, options) {
      try {
        const verifyOptions: JWTVerifyOptions = {
          algorithms,
          issuer: await issuer(),
          subject: options.subject || undefined,
          audience: options.audience && options.audience.length > 0 ? options.audience : undefined,
          clockTolerance: options.clockTolerance,
        }
        if (config.oidc_discovery_url) {
          const { jwks: keySet } = await discovery()
          return (await jwtVerify(jwt, keySet, verifyOptions)).payload
        }
        if (jwks) return (await jwtVerify(jwt, jwks, verifyOptions)).payload
        return await staticKeys.verify(jwt, verifyOptions)
      } catch (err) {
        throw toValidationError(err)
      }
    },
  }
}

/** `jwt_validation_pubkeys`: PEM public keys or certificates, tried in order. */
function createStaticKeys(pems: string[]) {
  const imported = new Map<string, Promise<CryptoKey | undefined>>()
  const load = (pem: string, alg: string) => {
    const key = `${alg}\0${pem}`
    let hit = imported.get(key)
    if (!hit) {
      const importer = pem.includes('BEGIN CERTIFICATE') ? importX509 : importSPKI
      // A key of another type than the token's algorithm simply does not apply.
      hit = importer(pem, alg).catch(() => undefined)
      imported.set(key, hit)
    }
    return hit
  }
  return {
    async verify(jwt: string, options: JWTVerifyOptions): Promise<JWTPayload> {
      const { alg } = decodeProtectedHeader(jwt)
      if (!alg || !options.algorithms?.includes(alg)) {
        throw new joseErrors.JOSEAlgNotAllowed(
          '"alg" (Algorithm) Header Parameter value not allowed',
        )
      }
      for (const pem of pems) {
        const key = await load(pem, alg)
        if (!key) continue
        try {
          return (await jwtVerify(jwt, key, options)).payload
        } catch (err) {
          if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue
          throw err
        }
      }
      throw new joseErrors.JWSSignatureVerificationFailed(
        'no known key successfully validated the token signature',
      )
    },
  }
}

/** Every verification failure is a 400 with a short, sanitised reason (never the token). */
export function toValidationError(err: unknown): ApiError {
  if (err instanceof ApiError)
    return err.status === 400 ? err : badRequest(`error validating token: ${err.errors.join('; ')}`)
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return badRequest('error validating token: no matching key found in the JSON Web Key Set')
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) {
    return badRequest(
      `error validating token: unable to fetch the JSON Web Key Set: ${sanitizeMessage(err.message)}`,
    )
  }
  if (err instanceof joseErrors.JOSEError) {
    return badRequest(`error validating token: ${sanitizeMessage(err.message).slice(0, 200)}`)
  }
  return badRequest(`error validating token: unable to fetch keys: ${describeFetchError(err)}`)
}
