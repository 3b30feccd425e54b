import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { readFileSync, existsSync } from 'node:fs'
import { startTestServer, type TestServer } from '../support/server.js'
import { githubClaims, startIssuer, type TestIssuer } from './jwt-issuer.js'

let server: TestServer
let issuer: TestIssuer

const deployRole = {
  role_type: 'jwt',
  user_claim: 'repository',
  bound_audiences: ['https://github.com/org'],
  bound_claims: { repository: 'org/repo', ref: 'refs/heads/main', environment: 'production' },
  claim_mappings: { repository: 'repository', ref: 'ref', environment: 'environment' },
  token_policies: ['ci-deploy'],
  token_ttl: '10m',
}

beforeAll(async () => {
  server = await startTestServer()
  issuer = await startIssuer()
  expect((await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } })).status).toBe(204)
  expect(
    (
      await server.call('POST', 'sys/policy/ci-deploy', {
        body: { policy: 'path "secret/data/deploy/*" { capabilities = ["read"] }' },
      })
    ).status,
  ).toBe(204)
  const config = await server.call('POST', 'auth/jwt/config', {
    body: { oidc_discovery_url: issuer.url, bound_issuer: issuer.url, default_role: 'deploy' },
  })
  expect(config.status).toBe(204)
  expect((await server.call('POST', 'auth/jwt/role/deploy', { body: deployRole })).status).toBe(204)
})

afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

afterEach(() => {
  vi.useRealTimers()
})

const login = (jwt: string, role: string | undefined = 'deploy') =>
  server.call('POST', 'auth/jwt/login', {
    token: null,
    body: role === undefined ? { jwt } : { role, jwt },
  })

describe('JWT login with GitHub Actions tokens', () => {
  it('logs in a deployment job of the bound repository, branch and environment', async () => {
    const res = await login(await issuer.sign(githubClaims()))
    expect(res.status).toBe(200)
    expect(res.body.auth.client_token).toMatch(/\S{20,}/)
    expect(res.body.auth.policies).toEqual(['ci-deploy', 'default'])
    expect(res.body.auth.metadata).toEqual({
      role: 'deploy',
      repository: 'org/repo',
      ref: 'refs/heads/main',
      environment: 'production',
    })
    expect(res.body.auth.lease_duration).toBe(600)
  })

  it('gives the token the display name from the user claim and the login path', async () => {
    const res = await login(await issuer.sign(githubClaims()))
    const self = await server.call('GET', 'auth/token/lookup-self', {
      token: res.body.auth.client_token,
    })
    expect(self.status).toBe(200)
    expect(self.body.data.display_name).toBe('jwt-org/repo')
    expect(self.body.data.path).toBe('auth/jwt/login')
    expect(self.body.data.meta.repository).toBe('org/repo')
  })

  it('ties the token to the repository entity when the identity store is present', async () => {
    const res = await login(await issuer.sign(githubClaims()))
    const entityId: string = res.body.auth.entity_id
    if (server.services.identity) {
      expect(entityId).not.toBe('')
      const entity = await server.services.identity.entity(entityId)
      expect(entity?.aliases.some((a) => a.name === 'org/repo')).toBe(true)
      const again = await login(await issuer.sign(githubClaims()))
      expect(again.body.auth.entity_id).toBe(entityId)
    } else {
      expect(entityId).toBe('')
    }
  })

  it('uses the token policies for access: the deploy path is readable, others are not', async () => {
    const token = (await login(await issuer.sign(githubClaims()))).body.auth.client_token
    const caps = await server.call('POST', 'sys/capabilities-self', {
      token,
      body: { paths: ['secret/data/deploy/app', 'secret/data/other'] },
    })
    expect(caps.status).toBe(200)
    expect(caps.body['secret/data/deploy/app']).toEqual(['read'])
    expect(caps.body['secret/data/other']).toEqual(['deny'])
  })

  it('falls back to default_role when role is empty or missing (vault-action, GitLab runner)', async () => {
    expect((await login(await issuer.sign(githubClaims()), '')).status).toBe(200)
    expect((await login(await issuer.sign(githubClaims()), undefined)).status).toBe(200)
  })

  const failures: Array<[string, () => Promise<string>, RegExp]> = [
    [
      'a wrong audience',
      () => issuer.sign(githubClaims({ aud: 'https://github.com/evil' })),
      /aud/,
    ],
    [
      'another repository',
      () => issuer.sign(githubClaims({ repository: 'org/other' })),
      /claim "repository" does not match/,
    ],
    [
      'another branch',
      () => issuer.sign(githubClaims({ ref: 'refs/heads/feature' })),
      /claim "ref" does not match/,
    ],
    [
      'another environment',
      () => issuer.sign(githubClaims({ environment: 'staging' })),
      /claim "environment" does not match/,
    ],
    [
      'a token without the environment claim',
      () => issuer.sign(githubClaims({ environment: undefined })),
      /claim "environment" is missing/,
    ],
    [
      'an expired token',
      () => {
        const now = Math.floor(Date.now() / 1000)
        return issuer.sign(githubClaims({ iat: now - 3600, nbf: now - 3600, exp: now - 1800 }))
      },
      /expired|"exp"/,
    ],
    [
      'a token not valid yet (future nbf)',
      () => {
        const now = Math.floor(Date.now() / 1000)
        return issuer.sign(githubClaims({ iat: now, nbf: now + 3600, exp: now + 7200 }))
      },
      /not valid yet|"nbf"/,
    ],
    [
      'a bad signature (payload changed after signing)',
      async () => {
        const good = await issuer.sign(githubClaims())
        const [h, , s] = good.split('.')
        const forged = Buffer.from(
          JSON.stringify({
            ...githubClaims(),
            iss: issuer.url,
            repository: 'org/repo',
            exp: Math.floor(Date.now() / 1000) + 300,
          }),
        ).toString('base64url')
        return `${h}.${forged}.${s}`
      },
      /signature/,
    ],
    [
      'a signature by another key under a published kid',
      async () => issuer.sign(githubClaims(), { key: await issuer.rogueKey(issuer.active.kid) }),
      /signature/,
    ],
    ['alg none', async () => issuer.unsigned(githubClaims()), /alg|Algorithm|JWS/i],
    [
      'a key not in the JWKS',
      async () => issuer.sign(githubClaims(), { key: await issuer.rogueKey() }),
      /no matching key/,
    ],
    [
      'a token for another issuer',
      () => issuer.sign(githubClaims({ iss: 'https://token.actions.githubusercontent.com' })),
      /iss/,
    ],
    ['a JWT that is not a JWT', async () => 'not-a-jwt', /error validating token/],
  ]

  it.each(failures)('refuses %s with a 400', async (_name, make, message) => {
    const jwt = await make()
    const res = await login(jwt)
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toMatch(message)
    expect(JSON.stringify(res.body)).not.toContain(jwt)
  })

  it('refuses an unknown role, a missing token and an oidc-type role with 400', async () => {
    const jwt = await issuer.sign(githubClaims())
    const unknown = await login(jwt, 'nope')
    expect(unknown.status).toBe(400)
    expect(unknown.body.errors).toEqual(['role "nope" could not be found'])
    const missing = await server.call('POST', 'auth/jwt/login', {
      token: null,
      body: { role: 'deploy' },
    })
    expect(missing.status).toBe(400)
    await server.call('POST', 'auth/jwt/role/browser', {
      body: { user_claim: 'sub', allowed_redirect_uris: ['http://localhost:8250/oidc/callback'] },
    })
    const oidc = await login(jwt, 'browser')
    expect(oidc.status).toBe(400)
    expect(oidc.body.errors).toEqual(['role with oidc role_type is not allowed'])
  })

  it('picks up key rotation at the issuer without a restart', async () => {
    expect((await login(await issuer.sign(githubClaims()))).status).toBe(200)
    const old = issuer.active
    await issuer.rotate()
    // jose waits out a 30 s cooldown between JWKS fetches; move the clock past it.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 31_000)
    const fetchesBefore = issuer.jwksFetches
    expect((await login(await issuer.sign(githubClaims()))).status).toBe(200)
    expect(issuer.jwksFetches).toBe(fetchesBefore + 1)
    const stale = await login(await issuer.sign(githubClaims(), { key: old }))
    expect(stale.status).toBe(400)
  })

  it('binds globs when bound_claims_type is glob', async () => {
    const write = await server.call('POST', 'auth/jwt/role/release', {
      body: {
        role_type: 'jwt',
        user_claim: 'repository',
        bound_audiences: 'https://github.com/org',
        bound_claims_type: 'glob',
        bound_claims: { repository: 'org/*', ref: ['refs/heads/release-*', 'refs/tags/v*'] },
      },
    })
    expect(write.status).toBe(204)
    const ok = await login(
      await issuer.sign(githubClaims({ ref: 'refs/heads/release-1.2' })),
      'release',
    )
    expect(ok.status).toBe(200)
    expect(
      (await login(await issuer.sign(githubClaims({ ref: 'refs/tags/v2.0.0' })), 'release')).status,
    ).toBe(200)
    const bad = await login(await issuer.sign(githubClaims({ ref: 'refs/heads/main' })), 'release')
    expect(bad.status).toBe(400)
    expect(
      (await login(await issuer.sign(githubClaims({ repository: 'other/repo' })), 'release'))
        .status,
    ).toBe(400)
  })

  it('reads nested claims through JSON pointers in bound_claims, claim_mappings and user_claim', async () => {
    const write = await server.call('POST', 'auth/jwt/role/nested', {
      body: {
        role_type: 'jwt',
        user_claim: '/ci/job/name',
        user_claim_json_pointer: true,
        bound_audiences: 'https://github.com/org',
        bound_claims: { '/ci/team': 'platform' },
        claim_mappings: { '/ci/team': 'team' },
      },
    })
    expect(write.status).toBe(204)
    const ci = { team: 'platform', job: { name: 'deploy-job' } }
    const ok = await login(await issuer.sign(githubClaims({ ci })), 'nested')
    expect(ok.status).toBe(200)
    expect(ok.body.auth.metadata).toEqual({ role: 'nested', team: 'platform' })
    const other = await login(
      await issuer.sign(githubClaims({ ci: { ...ci, team: 'web' } })),
      'nested',
    )
    expect(other.status).toBe(400)
    expect(other.body.errors[0]).toContain('claim "/ci/team" does not match')
  })

  it('refuses a token with an audience when the role binds none', async () => {
    await server.call('POST', 'auth/jwt/role/noaud', {
      body: {
        role_type: 'jwt',
        user_claim: 'repository',
        bound_subject: 'repo:org/repo:environment:production',
      },
    })
    const res = await login(await issuer.sign(githubClaims()), 'noaud')
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toContain(
      'audience claim found in JWT but no audiences bound to the role',
    )
    const noAud = await login(await issuer.sign(githubClaims({ aud: undefined })), 'noaud')
    expect(noAud.status).toBe(200)
    const otherSub = await login(
      await issuer.sign(githubClaims({ aud: undefined, sub: 'repo:org/repo:ref:refs/heads/main' })),
      'noaud',
    )
    expect(otherSub.status).toBe(400)
  })

  it('never stores the JWT or the issued token in clear', async () => {
    const jwt = await issuer.sign(githubClaims())
    const res = await login(jwt)
    expect(res.status).toBe(200)
    const file = server.storage.file!
    const bytes = [file, `${file}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('')
    expect(bytes.length).toBeGreaterThan(0)
    expect(bytes).not.toContain(jwt.split('.')[2]!)
    expect(bytes).not.toContain(res.body.auth.client_token)
  })
})

describe('real clients against the JWT login', () => {
  it('accepts vault-action’s request: empty role, empty X-Vault-Namespace, over a socket', async () => {
    const running = await server.listen()
    const res = await fetch(`${running.address}/v1/auth/jwt/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Vault-Namespace': '' },
      body: JSON.stringify({ jwt: await issuer.sign(githubClaims()), role: '' }),
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { auth: { client_token: string; policies: string[] } }
    expect(body.auth.policies).toContain('ci-deploy')
  })

  it('works with node-vault’s jwtLogin, which then reads with the new token', async () => {
    const running = await server.listen()
    const { default: nodeVault } = await import('node-vault')
    const client = nodeVault({ endpoint: running.address })
    const auth = await client.jwtLogin({ role: 'deploy', jwt: await issuer.sign(githubClaims()) })
    expect(auth.auth.metadata.repository).toBe('org/repo')
    const self = await client.tokenLookupSelf()
    expect(self.data.display_name).toBe('jwt-org/repo')
  })
})
