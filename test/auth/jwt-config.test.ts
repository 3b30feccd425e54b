import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { githubClaims, selfSignedCert, startIssuer, type TestIssuer } from './jwt-issuer.js'

let server: TestServer
let issuer: TestIssuer

beforeAll(async () => {
  server = await startTestServer()
  issuer = await startIssuer()
  for (const path of ['jwt', 'pem']) {
    expect((await server.call('POST', `sys/auth/${path}`, { body: { type: 'jwt' } })).status).toBe(
      204,
    )
  }
  expect((await server.call('POST', 'sys/auth/oidc', { body: { type: 'oidc' } })).status).toBe(204)
})

afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

describe('JWT auth configuration', () => {
  it('requires exactly one key source', async () => {
    const none = await server.call('POST', 'auth/jwt/config', {
      body: { bound_issuer: issuer.url },
    })
    expect(none.status).toBe(400)
    expect(none.body.errors[0]).toContain('exactly one of')
    const two = await server.call('POST', 'auth/jwt/config', {
      body: { jwks_url: issuer.jwksUrl, oidc_discovery_url: issuer.url },
    })
    expect(two.status).toBe(400)
    expect((await server.call('GET', 'auth/jwt/config')).status).toBe(404)
  })

  it('checks the discovery document when the config is written', async () => {
    const down = await server.call('POST', 'auth/jwt/config', {
      body: { oidc_discovery_url: 'http://127.0.0.1:9' },
    })
    expect(down.status).toBe(400)
    expect(down.body.errors[0]).toMatch(/^error checking oidc discovery URL/)
    const mismatch = await server.call('POST', 'auth/jwt/config', {
      body: { oidc_discovery_url: `${issuer.url}/other` },
    })
    expect(mismatch.status).toBe(400)
    const ok = await server.call('POST', 'auth/jwt/config', {
      body: { oidc_discovery_url: issuer.url },
    })
    expect(ok.status).toBe(204)
  })

  it('refuses unsupported algorithms and unparseable PEM keys', async () => {
    const hs = await server.call('POST', 'auth/pem/config', {
      body: {
        jwt_validation_pubkeys: [await issuer.publicKeyPem()],
        jwt_supported_algs: ['HS256'],
      },
    })
    expect(hs.status).toBe(400)
    const none = await server.call('POST', 'auth/pem/config', {
      body: { jwt_validation_pubkeys: [await issuer.publicKeyPem()], jwt_supported_algs: ['none'] },
    })
    expect(none.status).toBe(400)
    const junk = await server.call('POST', 'auth/pem/config', {
      body: {
        jwt_validation_pubkeys: ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'],
      },
    })
    expect(junk.status).toBe(400)
  })

  it('never returns oidc_client_secret and seals it in storage', async () => {
    const secret = 'client-secret-7f1e2d3c4b5a'
    const res = await server.call('POST', 'auth/oidc/config', {
      body: { oidc_discovery_url: issuer.url, oidc_client_id: 'stint', oidc_client_secret: secret },
    })
    expect(res.status).toBe(204)
    const read = await server.call('GET', 'auth/oidc/config')
    expect(read.status).toBe(200)
    expect(read.body.data.oidc_client_id).toBe('stint')
    expect(JSON.stringify(read.body)).not.toContain(secret)
    const row = await server.storage.db.selectFrom('jwt_configs').selectAll().execute()
    expect(JSON.stringify(row)).not.toContain(secret)
    expect(row.some((r) => r.client_secret !== null)).toBe(true)
  })
})

describe('JWT roles', () => {
  it('requires a user claim and, for jwt roles, a bound constraint', async () => {
    const noClaim = await server.call('POST', 'auth/jwt/role/r', {
      body: { role_type: 'jwt', bound_subject: 'x' },
    })
    expect(noClaim.status).toBe(400)
    expect(noClaim.body.errors).toEqual(['a user claim must be defined on the role'])
    const unbound = await server.call('POST', 'auth/jwt/role/r', {
      body: { role_type: 'jwt', user_claim: 'sub' },
    })
    expect(unbound.status).toBe(400)
    expect(unbound.body.errors).toEqual([
      'must have at least one bound constraint when creating/updating a role',
    ])
    const reserved = await server.call('POST', 'auth/jwt/role/r', {
      body: {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_subject: 'x',
        claim_mappings: { ref: 'role' },
      },
    })
    expect(reserved.status).toBe(400)
    const ttl = await server.call('POST', 'auth/jwt/role/r', {
      body: {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_subject: 'x',
        token_ttl: '2h',
        token_max_ttl: '1h',
      },
    })
    expect(ttl.status).toBe(400)
    expect((await server.call('GET', 'auth/jwt/role/r')).status).toBe(404)
  })

  it('reads, updates, lists and deletes a role with Vault field names', async () => {
    const body = {
      role_type: 'jwt',
      user_claim: 'repository',
      bound_audiences: 'https://github.com/org',
      bound_claims: { repository: ['org/a', 'org/b'] },
      token_policies: ['a', 'b'],
      token_ttl: '15m',
    }
    expect((await server.call('POST', 'auth/jwt/role/ci', { body })).status).toBe(204)
    expect(
      (await server.call('POST', 'auth/jwt/role/ci', { body: { token_ttl: 1200 } })).status,
    ).toBe(204)
    const read = await server.call('GET', 'auth/jwt/role/ci')
    expect(read.status).toBe(200)
    expect(read.body.data).toMatchObject({
      role_type: 'jwt',
      user_claim: 'repository',
      bound_audiences: ['https://github.com/org'],
      bound_claims: { repository: ['org/a', 'org/b'] },
      bound_claims_type: 'string',
      token_policies: ['a', 'b'],
      token_ttl: 1200,
      expiration_leeway: 150,
      not_before_leeway: 150,
      clock_skew_leeway: 60,
    })
    const list = await server.call('LIST', 'auth/jwt/role')
    expect(list.body.data.keys).toContain('ci')
    expect((await server.call('DELETE', 'auth/jwt/role/ci')).status).toBe(204)
    expect((await server.call('GET', 'auth/jwt/role/ci')).status).toBe(404)
  })
})

describe('JWT login with static PEM keys', () => {
  it('verifies tokens with jwt_validation_pubkeys and refuses other keys', async () => {
    const other = await issuer.rogueKey()
    const config = await server.call('POST', 'auth/pem/config', {
      body: {
        jwt_validation_pubkeys: [await issuer.publicKeyPem(other), await issuer.publicKeyPem()],
        bound_issuer: issuer.url,
      },
    })
    expect(config.status).toBe(204)
    await server.call('POST', 'auth/pem/role/ci', {
      body: {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_audiences: 'https://github.com/org',
        bound_claims: { repository: 'org/repo' },
      },
    })
    const ok = await server.call('POST', 'auth/pem/login', {
      token: null,
      body: { role: 'ci', jwt: await issuer.sign(githubClaims()) },
    })
    expect(ok.status).toBe(200)
    expect(ok.body.auth.metadata).toEqual({ role: 'ci' })
    const rogue = await issuer.rogueKey()
    const bad = await server.call('POST', 'auth/pem/login', {
      token: null,
      body: { role: 'ci', jwt: await issuer.sign(githubClaims(), { key: rogue }) },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.errors[0]).toContain('signature')
    const wrongIss = await server.call('POST', 'auth/pem/login', {
      token: null,
      body: { role: 'ci', jwt: await issuer.sign(githubClaims({ iss: 'https://elsewhere' })) },
    })
    expect(wrongIss.status).toBe(400)
  })

  it('applies the role leeways: a token expired a minute ago passes the default leeway, not a zero one', async () => {
    const now = Math.floor(Date.now() / 1000)
    const jwt = await issuer.sign(githubClaims({ iat: now - 400, nbf: now - 400, exp: now - 60 }))
    const login = () =>
      server.call('POST', 'auth/pem/login', { token: null, body: { role: 'ci', jwt } })
    expect((await login()).status).toBe(200)
    await server.call('POST', 'auth/pem/role/ci', {
      body: { expiration_leeway: -1, clock_skew_leeway: -1 },
    })
    const res = await login()
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['error validating token: token is expired'])
  })
})

describe('fetching from the issuer', () => {
  it('retries once when an idle keep-alive connection was reset, and not for HTTP errors', async () => {
    const { fetchWithRetry } = await import('../../src/auth/jwt/fetch.js')
    let calls = 0
    vi.stubGlobal('fetch', async () => {
      calls++
      if (calls === 1) throw new TypeError('fetch failed', { cause: new Error('read ECONNRESET') })
      return new Response('{}', { status: calls === 2 ? 200 : 500 })
    })
    try {
      expect((await fetchWithRetry('http://127.0.0.1/x')).status).toBe(200)
      expect(calls).toBe(2)
      expect((await fetchWithRetry('http://127.0.0.1/x')).status).toBe(500)
      expect(calls).toBe(3)
    } finally {
      vi.unstubAllGlobals()
    }
  })
})

describe('issuers behind a private CA', () => {
  it('trusts oidc_discovery_ca_pem for discovery and keys, and refuses the issuer without it', async () => {
    const tls = selfSignedCert()
    const private_ = await startIssuer({ tls })
    try {
      await server.call('POST', 'sys/auth/private', { body: { type: 'jwt' } })
      const untrusted = await server.call('POST', 'auth/private/config', {
        body: { oidc_discovery_url: private_.url },
      })
      expect(untrusted.status).toBe(400)
      expect(untrusted.body.errors[0]).toMatch(/^error checking oidc discovery URL/)
      const badCa = await server.call('POST', 'auth/private/config', {
        body: { oidc_discovery_url: private_.url, oidc_discovery_ca_pem: 'not a certificate' },
      })
      expect(badCa.status).toBe(400)
      const trusted = await server.call('POST', 'auth/private/config', {
        body: { oidc_discovery_url: private_.url, oidc_discovery_ca_pem: tls.cert },
      })
      expect(trusted.status).toBe(204)
      await server.call('POST', 'auth/private/role/r', {
        body: {
          role_type: 'jwt',
          user_claim: 'repository',
          bound_audiences: 'https://github.com/org',
        },
      })
      const res = await server.call('POST', 'auth/private/login', {
        token: null,
        body: { role: 'r', jwt: await private_.sign(githubClaims()) },
      })
      expect(res.status).toBe(200)
      expect(private_.jwksFetches).toBe(1)
    } finally {
      await private_.close()
    }
  })
})

describe('bad JWT input', () => {
  it.each([
    ['role/bad', { role_type: 'saml', user_claim: 'sub', bound_subject: 'x' }],
    ['role/bad', { role_type: 'jwt', user_claim: 'sub', bound_claims: 'repo' }],
    ['role/bad', { role_type: 'jwt', user_claim: 'sub', bound_claims: { a: { b: 1 } } }],
    [
      'role/bad',
      { role_type: 'jwt', user_claim: 'sub', bound_claims_type: 'glob', bound_claims: { a: 1 } },
    ],
    [
      'role/bad',
      { role_type: 'jwt', user_claim: 'sub', bound_subject: 'x', claim_mappings: ['a'] },
    ],
    [
      'role/bad',
      {
        role_type: 'jwt',
        user_claim: 'sub',
        bound_subject: 'x',
        claim_mappings: { a: 'm', b: 'm' },
      },
    ],
    [
      'role/bad',
      { role_type: 'jwt', user_claim: 'sub', bound_subject: 'x', expiration_leeway: 'later' },
    ],
    [
      'role/bad',
      { role_type: 'jwt', user_claim: 'sub', bound_subject: 'x', token_bound_cidrs: 'x' },
    ],
    ['role/bad', { role_type: 'jwt', user_claim: 7, bound_subject: 'x' }],
    ['config', { jwks_url: 'ftp://127.0.0.1/keys' }],
    ['config', { jwks_url: 'not a url' }],
    ['config', { jwks_url: 'http://127.0.0.1:9/k', jwt_supported_algs: 'RS256,none' }],
    ['login', { role: 'nope', jwt: { a: 1 } }],
    ['login', { jwt: 'x.y.z' }],
  ])('answers 400, not 500, to POST %s %j', async (path, body) => {
    const res = await server.call('POST', `auth/pem/${path}`, {
      body,
      token: path === 'login' ? null : undefined,
    })
    expect(res.status).toBe(400)
    expect(res.body.errors).toHaveLength(1)
    expect((await server.call('GET', 'auth/pem/role/bad')).status).toBe(404)
  })
})
