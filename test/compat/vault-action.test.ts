import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

/*
 * Replays the HTTP calls of hashicorp/vault-action v3.4.0 (reference §8.1) with plain fetch:
 * `GET v1/<path>` with `X-Vault-Namespace: ""` (always sent, usually empty) and `X-Vault-Token`,
 * then resolves selectors the way it does: prefix `data.data.` when `body.data.data` exists
 * (KV v2), else `data.`.
 */

let server: TestServer
let address: string

beforeAll(async () => {
  server = await startTestServer()
  address = (await server.listen()).address
  await server.call('POST', 'secret/data/ci/app', {
    body: { data: { username: 'ci-user', password: 'ci-pass', 'api-key': 'k-1' } },
  })
  await server.call('POST', 'sys/mounts/kv1', { body: { type: 'kv' } })
  await server.call('POST', 'kv1/ci/legacy', { body: { token: 'legacy-token' } })
})
afterAll(async () => {
  await server?.close()
})

/** vault-action's request for one secret path (got with prefixUrl, JSON response). */
async function actionGet(path: string, token = server.rootToken) {
  const res = await fetch(`${address}/v1/${path}`, {
    headers: {
      'X-Vault-Namespace': '',
      'X-Vault-Token': token,
      'user-agent': 'got (https://github.com/sindresorhus/got)',
      accept: 'application/json',
    },
  })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null }
}

/** vault-action's selector lookup: a dotted path, `data.data.` first when the shape says KV v2. */
function select(body: Record<string, unknown>, selector: string): unknown {
  const data = body.data as Record<string, unknown> | undefined
  const prefix = data && data.data !== undefined ? 'data.data' : 'data'
  if (selector === '*') return prefix === 'data.data' ? data!.data : data
  let value: unknown = body
  for (const part of `${prefix}.${selector}`.split('.')) {
    value = (value as Record<string, unknown> | undefined)?.[part]
  }
  return value
}

describe('vault-action replay', () => {
  it('reads a KV v2 secret and resolves data.data.<key> selectors', async () => {
    const { status, body } = await actionGet('secret/data/ci/app')
    expect(status).toBe(200)
    expect(select(body!, 'username')).toBe('ci-user')
    expect(select(body!, 'password')).toBe('ci-pass')
    expect(select(body!, 'api-key')).toBe('k-1')
    expect(select(body!, '*')).toEqual({
      username: 'ci-user',
      password: 'ci-pass',
      'api-key': 'k-1',
    })
  })

  it('reads a KV v1 secret through the data.<key> selector', async () => {
    const { status, body } = await actionGet('kv1/ci/legacy')
    expect(status).toBe(200)
    expect(select(body!, 'token')).toBe('legacy-token')
  })

  it('gets a 404 for a missing path, as its ignoreNotFound handling expects', async () => {
    const { status, body } = await actionGet('secret/data/ci/missing')
    expect(status).toBe(404)
    expect(body).toEqual({ errors: [] })
  })

  it('gets a 403 with "permission denied" for a token without access', async () => {
    const { status, body } = await actionGet('secret/data/ci/app', 'sts.not-a-real-token')
    expect(status).toBe(403)
    expect(JSON.stringify(body)).toContain('permission denied')
  })

  it('works with a policy-scoped token the way a CI job uses it', async () => {
    await server.call('PUT', 'sys/policy/ci', {
      body: { policy: 'path "secret/data/ci/*" { capabilities = ["read"] }' },
    })
    const created = await server.call('POST', 'auth/token/create', { body: { policies: ['ci'] } })
    const token = created.body.auth.client_token as string
    const ok = await actionGet('secret/data/ci/app', token)
    expect(select(ok.body!, 'password')).toBe('ci-pass')
    expect((await actionGet('kv1/ci/legacy', token)).status).toBe(403)
  })
})
