import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import {
  SignJWT,
  UnsecuredJWT,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type CryptoKey,
  type JWK,
} from 'jose'

/** A signing key of the test issuer. */
export interface IssuerKey {
  kid: string
  privateKey: CryptoKey
  publicKey: CryptoKey
  jwk: JWK
}

/**
 * A tiny OIDC issuer on loopback: `/.well-known/openid-configuration` and `/.well-known/jwks`,
 * RS256 keys from `jose.generateKeyPair`. It signs whatever claims a test gives it, counts JWKS
 * fetches, and can rotate its key (new kid, old key removed from the JWKS).
 */
export interface TestIssuer {
  url: string
  jwksUrl: string
  active: IssuerKey
  jwksFetches: number
  /** Signs claims with the active key (or `key`); `iss`, `iat`, `nbf`, `exp` default to now. */
  sign(
    claims: Record<string, unknown>,
    options?: { key?: IssuerKey; kid?: string },
  ): Promise<string>
  /** An `alg: none` token with the same claims. */
  unsigned(claims: Record<string, unknown>): string
  /** Replaces the published key with a new one (new kid); returns the new key. */
  rotate(): Promise<IssuerKey>
  /** A key this issuer never publishes. */
  rogueKey(kid?: string): Promise<IssuerKey>
  publicKeyPem(key?: IssuerKey): Promise<string>
  close(): Promise<void>
}

export async function newKey(kid: string = randomUUID()): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  return { kid, privateKey, publicKey, jwk }
}

/** A self-signed certificate for 127.0.0.1 (made with the openssl CLI), for an https issuer. */
export function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'stint-issuer-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  return {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
  }
}

export async function startIssuer(
  options: { tls?: { key: string; cert: string } } = {},
): Promise<TestIssuer> {
  let published: IssuerKey[] = [await newKey()]
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json')
      res.end(
        JSON.stringify({
          issuer: issuer.url,
          jwks_uri: issuer.jwksUrl,
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      )
      return
    }
    if (req.url === '/.well-known/jwks') {
      issuer.jwksFetches++
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }))
      return
    }
    res.statusCode = 404
    res.end()
  }
  const server: Server = options.tls
    ? createHttpsServer(options.tls, handler)
    : createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`

  const issuer: TestIssuer = {
    url,
    jwksUrl: `${url}/.well-known/jwks`,
    active: published[0]!,
    jwksFetches: 0,
    async sign(claims, options = {}) {
      const key = options.key ?? issuer.active
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({
        iss: url,
        iat: now,
        nbf: now - 5,
        exp: now + 300,
        jti: randomUUID(),
        ...claims,
      })
        .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? key.kid, typ: 'JWT' })
        .sign(key.privateKey)
    },
    unsigned(claims) {
      const now = Math.floor(Date.now() / 1000)
      return new UnsecuredJWT({
        iss: url,
        iat: now,
        nbf: now - 5,
        exp: now + 300,
        ...claims,
      }).encode()
    },
    async rotate() {
      const key = await newKey()
      published = [key]
      issuer.active = key
      return key
    },
    rogueKey: (kid) => newKey(kid),
    publicKeyPem: (key) => exportSPKI((key ?? issuer.active).publicKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return issuer
}

/** Claims shaped like a GitHub Actions OIDC token for a deployment job (reference §5.4). */
export function githubClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: 'repo:org/repo:environment:production',
    aud: 'https://github.com/org',
    actor: 'octocat',
    actor_id: '583231',
    repository: 'org/repo',
    repository_id: '1296269',
    repository_owner: 'org',
    repository_owner_id: '9919',
    repository_visibility: 'private',
    ref: 'refs/heads/main',
    ref_type: 'branch',
    ref_protected: 'true',
    sha: 'e83c5163316f89bfbde7d9ab23ca2e25604af290',
    workflow: 'deploy',
    workflow_ref: 'org/repo/.github/workflows/deploy.yml@refs/heads/main',
    job_workflow_ref: 'org/repo/.github/workflows/deploy.yml@refs/heads/main',
    event_name: 'push',
    environment: 'production',
    run_id: '5001',
    run_number: '42',
    run_attempt: '1',
    runner_environment: 'github-hosted',
    ...overrides,
  }
}

/** Claims shaped like a GitLab CI `id_tokens` token (reference §5.5): every value is a string. */
export function gitlabClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sub: 'project_path:group/project:ref_type:branch:ref:main',
    aud: 'https://stint.example.com',
    namespace_id: '72',
    namespace_path: 'group',
    project_id: '20',
    project_path: 'group/project',
    user_id: '5',
    user_login: 'alice',
    user_email: 'alice@example.com',
    pipeline_id: '1212',
    pipeline_source: 'push',
    job_id: '1414',
    ref: 'main',
    ref_type: 'branch',
    ref_path: 'refs/heads/main',
    ref_protected: 'true',
    environment: 'production',
    environment_protected: 'true',
    deployment_tier: 'production',
    runner_id: '1',
    runner_environment: 'gitlab-hosted',
    sha: '714a629c0b401fdce83e847fc9589983fc6f46bc',
    project_visibility: 'private',
    ...overrides,
  }
}
