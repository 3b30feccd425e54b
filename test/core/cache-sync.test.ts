import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer, type TestServer } from '../support/server.js'
import { buildStint, type Stint } from '../../src/server/build.js'

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
    b = await buildStint({ storage: `sqlite:${file}`, staticUnsealKey: key })
    expect(b.core.seal.sealed).toBe(false)
    await b.core.cacheSync.poll()

    const call = (app: Stint['app'], method: string, path: string, body?: unknown) =>
      app.request(`/v1/${path}`, {
        method,
        headers: { 'X-Vault-Token': a.rootToken, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })

    expect((await call(a.app, 'POST', 'sys/mounts/team-a', { type: 'kv-v2' })).status).toBe(204)
    expect((await call(a.app, 'POST', 'team-a/data/x', { data: { v: '1' } })).status).toBe(200)
    expect((await call(b.app, 'GET', 'team-a/data/x')).status).toBe(404)
    await b.core.cacheSync.poll()
    const read = await call(b.app, 'GET', 'team-a/data/x')
    expect(read.status).toBe(200)
    expect(((await read.json()) as { data: { data: { v: string } } }).data.data.v).toBe('1')

    const token = await b.core.tokens.create({
      policies: ['reader'],
      path: 'auth/token/create',
      defaultTtl: 3600,
      maxTtl: 3600,
    })
    const asToken = (app: Stint['app']) =>
      app.request('/v1/team-a/data/x', { headers: { 'X-Vault-Token': token.token } })
    expect((await asToken(b.app)).status).toBe(403)
    // Warm b's policy cache with the missing policy, then write it on a.
    await call(a.app, 'PUT', 'sys/policies/acl/reader', {
      policy: 'path "team-a/data/*" { capabilities = ["read"] }',
    })
    await b.core.cacheSync.poll()
    expect((await asToken(b.app)).status).toBe(200)

    await call(a.app, 'DELETE', 'sys/mounts/team-a')
    await b.core.cacheSync.poll()
    expect((await call(b.app, 'GET', 'team-a/data/x')).status).toBe(404)
  })
})
