import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { startIssuer, type TestIssuer } from './jwt-issuer.js'

/*
 * Issue 12, item 8: a JWT without `exp` was accepted forever (no exp, iat or nbf at all, or only
 * an old iat). As Vault (hashicorp/cap jwt): a token needs at least one of the three, and one
 * without `exp` expires at the later of iat/nbf plus expiration_leeway, with clock_skew_leeway.
 */

let server: TestServer
let issuer: TestIssuer

const AUD = 'https://stint.example.com'
const NO_TIMES = { iat: undefined, nbf: undefined, exp: undefined }

beforeAll(async () => {
  server = await startTestServer()
  issuer = await startIssuer()
  expect((await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } })).status).toBe(204)
  const config = await server.call('POST', 'auth/jwt/config', {
    body: { oidc_discovery_url: issuer.url, bound_issuer: issuer.url },
  })
  expect(config.status).toBe(204)
  for (const [name, leeways] of Object.entries({
    ci: {},
    strict: { expiration_leeway: -1, clock_skew_leeway: -1 },
    generous: { expiration_leeway: '1h' },
  })) {
    const role = await server.call('POST', `auth/jwt/role/${name}`, {
      body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: [AUD], ...leeways },
    })
    expect(role.status).toBe(204)
  }
})

afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

const now = () => Math.floor(Date.now() / 1000)

async function login(claims: Record<string, unknown>, role = 'ci') {
  const jwt = await issuer.sign({ sub: 'job-1', aud: AUD, ...NO_TIMES, ...claims })
  return server.call('POST', 'auth/jwt/login', { token: null, body: { role, jwt } })
}

describe('JWT login without an exp claim', () => {
  it('refuses a signed token with none of exp, iat and nbf (it used to be valid forever)', async () => {
    const res = await login({})
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual([
      'error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token',
    ])
  })

  it('refuses a token whose only time claim is an iat of an hour ago (it used to be accepted)', async () => {
    const res = await login({ iat: now() - 3600 })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['error validating token: token is expired'])
  })

  it('refuses a token whose only time claim is an nbf of an hour ago', async () => {
    const res = await login({ nbf: now() - 3600 })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['error validating token: token is expired'])
  })

  it('accepts a token issued just now without exp (it expires iat + leeways later)', async () => {
    const res = await login({ iat: now() })
    expect(res.status).toBe(200)
    expect(res.body.auth.client_token).toMatch(/\S{20,}/)
  })

  it('derives the expiry from the later of iat and nbf', async () => {
    const res = await login({ iat: now() - 3600, nbf: now() - 10 })
    expect(res.status).toBe(200)
  })

  it("honours the role's leeways: none at all refuses a 100 s old iat, a 1 h one accepts 30 min", async () => {
    const hundredSeconds = await login({ iat: now() - 100 }, 'strict')
    expect(hundredSeconds.status).toBe(400)
    expect(hundredSeconds.body.errors).toEqual(['error validating token: token is expired'])
    // The default leeways (150 s + 60 s) accept the same age.
    expect((await login({ iat: now() - 100 }, 'ci')).status).toBe(200)
    expect((await login({ iat: now() - 1800 }, 'generous')).status).toBe(200)
    expect((await login({ iat: now() - 1800 }, 'ci')).status).toBe(400)
  })

  it('accepts a token with a proper exp as before, also without iat and nbf', async () => {
    expect((await login({ iat: now(), nbf: now() - 5, exp: now() + 300 })).status).toBe(200)
    expect((await login({ exp: now() + 300 })).status).toBe(200)
  })

  it('still refuses an expired exp and a future iat', async () => {
    const expired = await login({ iat: now() - 3600, exp: now() - 1800 })
    expect(expired.status).toBe(400)
    const future = await login({ iat: now() + 3600 })
    expect(future.status).toBe(400)
    expect(future.body.errors).toEqual(['error validating token: token issued in the future'])
  })
})
