import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { gitlabClaims, startIssuer, type TestIssuer } from './jwt-issuer.js'

let server: TestServer
let gitlab: TestIssuer

beforeAll(async () => {
  server = await startTestServer()
  gitlab = await startIssuer()
  // GitLab CI's default auth path is `jwt`; here it is mounted elsewhere and fetches keys from jwks_url.
  expect((await server.call('POST', 'sys/auth/gitlab', { body: { type: 'jwt' } })).status).toBe(204)
  const config = await server.call('POST', 'auth/gitlab/config', {
    body: { jwks_url: gitlab.jwksUrl, bound_issuer: gitlab.url, jwt_supported_algs: ['RS256'] },
  })
  expect(config.status).toBe(204)
  const role = await server.call('POST', 'auth/gitlab/role/project-main', {
    body: {
      role_type: 'jwt',
      user_claim: 'project_path',
      bound_audiences: 'https://stint.example.com',
      bound_claims: { project_id: '20', ref: 'main', ref_type: 'branch', ref_protected: 'true' },
      claim_mappings: { project_path: 'project_path', ref: 'ref', pipeline_id: 'pipeline_id' },
      token_policies: 'ci-read',
      token_explicit_max_ttl: '1h',
    },
  })
  expect(role.status).toBe(204)
})

afterAll(async () => {
  await server?.close()
  await gitlab?.close()
})

const login = (jwt: string, role = 'project-main') =>
  server.call('POST', 'auth/gitlab/login', { token: null, body: { role, jwt } })

describe('JWT login with GitLab CI id_tokens', () => {
  it('logs in a pipeline of the bound project on its protected main branch', async () => {
    const res = await login(await gitlab.sign(gitlabClaims()))
    expect(res.status).toBe(200)
    expect(res.body.auth.policies).toEqual(['ci-read', 'default'])
    expect(res.body.auth.metadata).toEqual({
      role: 'project-main',
      project_path: 'group/project',
      ref: 'main',
      pipeline_id: '1212',
    })
  })

  it.each([
    ['another project', { project_id: '21', project_path: 'group/other' }, 'project_id'],
    ['another branch', { ref: 'feature', ref_path: 'refs/heads/feature' }, 'ref'],
    ['a tag of the same name', { ref_type: 'tag' }, 'ref_type'],
    ['an unprotected ref', { ref_protected: 'false' }, 'ref_protected'],
  ])('refuses %s with a 400 naming the claim', async (_name, overrides, claim) => {
    const res = await login(await gitlab.sign(gitlabClaims(overrides)))
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual([
      `error validating claims: claim "${claim}" does not match any associated bound claim values`,
    ])
  })

  it('refuses an audience the job did not declare for Stint', async () => {
    const res = await login(await gitlab.sign(gitlabClaims({ aud: 'https://vault.other.example' })))
    expect(res.status).toBe(400)
  })

  it('refuses an algorithm outside jwt_supported_algs', async () => {
    const good = await gitlab.sign(gitlabClaims())
    const [, payload, signature] = good.split('.')
    const header = Buffer.from(JSON.stringify({ alg: 'RS512', kid: gitlab.active.kid })).toString(
      'base64url',
    )
    const res = await login(`${header}.${payload}.${signature}`)
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toContain('"alg" (Algorithm) Header Parameter value not allowed')
  })

  it('fetches the JWKS once for 10 concurrent first logins, which share one entity', async () => {
    const fresh = await startIssuer()
    try {
      await server.call('POST', 'sys/auth/gitlab-burst', { body: { type: 'jwt' } })
      await server.call('POST', 'auth/gitlab-burst/config', { body: { jwks_url: fresh.jwksUrl } })
      await server.call('POST', 'auth/gitlab-burst/role/r', {
        body: {
          role_type: 'jwt',
          user_claim: 'project_path',
          bound_audiences: 'https://stint.example.com',
        },
      })
      const jwts = await Promise.all(Array.from({ length: 10 }, () => fresh.sign(gitlabClaims())))
      const results = await Promise.all(
        jwts.map((jwt) =>
          server.call('POST', 'auth/gitlab-burst/login', { token: null, body: { role: 'r', jwt } }),
        ),
      )
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200))
      expect(fresh.jwksFetches).toBe(1)
      expect(new Set(results.map((r) => r.body.auth.entity_id)).size).toBe(1)
    } finally {
      await fresh.close()
    }
  })

  it('answers 400 with a sanitised reason when the JWKS cannot be fetched', async () => {
    await server.call('POST', 'sys/auth/gitlab-down', { body: { type: 'jwt' } })
    const config = await server.call('POST', 'auth/gitlab-down/config', {
      body: { jwks_url: 'http://user:hunter2@127.0.0.1:9/keys' },
    })
    expect(config.status).toBe(400)
    await server.call('POST', 'auth/gitlab-down/config', {
      body: { jwks_url: 'http://127.0.0.1:9/keys' },
    })
    await server.call('POST', 'auth/gitlab-down/role/r', {
      body: {
        role_type: 'jwt',
        user_claim: 'project_path',
        bound_audiences: 'https://stint.example.com',
      },
    })
    const jwt = await gitlab.sign(gitlabClaims())
    const res = await server.call('POST', 'auth/gitlab-down/login', {
      token: null,
      body: { role: 'r', jwt },
    })
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toMatch(/^error validating token: /)
    expect(JSON.stringify(res.body)).not.toContain(jwt)
  })
})
