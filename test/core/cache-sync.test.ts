import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer, type TestServer, request } from '../support/server.js'
import { composeServer, type Stint } from '../../src/server/compose.js'

describe('two nodes on one storage', () => {
  const key = new Uint8Array(32).fill(9)
  const file = join(mkdtempSync(join(tmpdir(), 'stint-sync-')), 'stint.db')
  let a: TestServer
  let b: Stint

  afterAll(async () => {
    await b?.shutdown()
    await a?.close()
  })

  it('see mounts and policies the other node changed after one sync poll', async () => {
    a = await startTestServer({ storage: `sqlite:${file}`, staticUnsealKey: key })
    b = await composeServer({ storage: `sqlite:${file}`, staticUnsealKey: key })
    expect(b.services.seal.sealed).toBe(false)
    await b.services.cacheSync.poll()

    const call = (app: Stint['api'], method: string, path: string, body?: unknown) =>
      request(app, `/v1/${path}`, {
        method,
        headers: { 'X-Vault-Token': a.rootToken, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })

    expect((await call(a.api, 'POST', 'sys/mounts/team-a', { type: 'kv-v2' })).status).toBe(204)
    expect((await call(a.api, 'POST', 'team-a/data/x', { data: { v: '1' } })).status).toBe(200)
    expect((await call(b.api, 'GET', 'team-a/data/x')).status).toBe(404)
    await b.services.cacheSync.poll()
    const read = await call(b.api, 'GET', 'team-a/data/x')
    expect(read.status).toBe(200)
    expect(((await read.json()) as { data: { data: { v: string } } }).data.data.v).toBe('1')

    const token = await b.services.tokens.create({
      policies: ['reader'],
      path: 'auth/token/create',
      defaultTtl: 3600,
      maxTtl: 3600,
    })
    const asToken = (app: Stint['api']) =>
      request(app, '/v1/team-a/data/x', { headers: { 'X-Vault-Token': token.token } })
    expect((await asToken(b.api)).status).toBe(403)
    // Warm b's policy cache with the missing policy, then write it on a.
    await call(a.api, 'PUT', 'sys/policies/acl/reader', {
      policy: 'path "team-a/data/*" { capabilities = ["read"] }',
    })
    await b.services.cacheSync.poll()
    expect((await asToken(b.api)).status).toBe(200)

    await call(a.api, 'DELETE', 'sys/mounts/team-a')
    await b.services.cacheSync.poll()
    expect((await call(b.api, 'GET', 'team-a/data/x')).status).toBe(404)
  })
})
