import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  for (const [path, type, config] of [
    ['kv1', 'kv', undefined],
    ['old', 'generic', undefined],
    ['tuned', 'kv', { default_lease_ttl: '1h' }],
  ] as const) {
    const res = await server.call('POST', `sys/mounts/${path}`, { body: { type, config } })
    expect(res.status).toBe(204)
  }
})
afterAll(async () => {
  await server?.close()
})

describe('KV v1', () => {
  it('is what a plain kv mount gets', async () => {
    const res = await server.call('GET', 'sys/mounts/kv1')
    expect(res.body.data.options).toEqual({ version: '1' })
  })

  it('writes with 204 and reads the map back with the mount TTL and no lease', async () => {
    expect(
      (await server.call('POST', 'kv1/app/db', { body: { user: 'u', pass: 'p' } })).status,
    ).toBe(204)
    const res = await server.call('GET', 'kv1/app/db')
    expect(res.status).toBe(200)
    expect(res.body.data).toEqual({ user: 'u', pass: 'p' })
    expect(res.body.lease_id).toBe('')
    expect(res.body.renewable).toBe(false)
    expect(res.body.lease_duration).toBe(2764800)
  })

  it('reports the tuned default TTL, or the ttl key of the secret', async () => {
    await server.call('PUT', 'tuned/a', { body: { v: '1' } })
    expect((await server.call('GET', 'tuned/a')).body.lease_duration).toBe(3600)
    await server.call('PUT', 'tuned/b', { body: { v: '1', ttl: '30m' } })
    expect((await server.call('GET', 'tuned/b')).body.lease_duration).toBe(1800)
    const bad = await server.call('PUT', 'tuned/c', { body: { v: '1', ttl: 'later' } })
    expect(bad.status).toBe(400)
    expect((await server.call('GET', 'tuned/c')).status).toBe(404)
  })

  it('replaces the whole map on write, without versions', async () => {
    await server.call('POST', 'kv1/replace', { body: { a: '1', b: '2' } })
    await server.call('POST', 'kv1/replace', { body: { c: '3' } })
    expect((await server.call('GET', 'kv1/replace')).body.data).toEqual({ c: '3' })
    const rows = await server.storage.db
      .selectFrom('kv_versions')
      .select('version')
      .where('path', '=', 'replace')
      .execute()
    expect(rows).toEqual([{ version: 1 }])
  })

  it('lists keys and folders and deletes keys', async () => {
    await server.call('POST', 'old/team/x', { body: { a: '1' } })
    await server.call('POST', 'old/team/sub/y', { body: { a: '1' } })
    const listed = await server.call('LIST', 'old/team')
    expect(listed.body.data.keys).toEqual(['sub/', 'x'])
    expect((await server.call('DELETE', 'old/team/x')).status).toBe(204)
    expect((await server.call('GET', 'old/team/x')).status).toBe(404)
    expect((await server.call('GET', 'old/team/?list=true')).body.data.keys).toEqual(['sub/'])
    expect((await server.call('LIST', 'old/empty/')).status).toBe(404)
  })

  it('refuses empty bodies, oversized keys and bad paths, and changes nothing', async () => {
    expect((await server.call('POST', 'kv1/bad', { body: {} })).status).toBe(400)
    expect(
      (await server.call('POST', 'kv1/bad', { body: { ['k'.repeat(1025)]: 'v' } })).status,
    ).toBe(400)
    expect((await server.call('POST', 'kv1/a//b', { body: { a: '1' } })).status).toBe(400)
    expect((await server.call('POST', 'kv1/', { body: { a: '1' } })).status).toBe(400)
    expect((await server.call('GET', 'kv1/bad')).status).toBe(404)
  })

  it('needs create for a new key and update for an existing one', async () => {
    await server.call('POST', 'kv1/acl/existing', { body: { a: '1' } })
    await server.call('PUT', 'sys/policy/kv1-update', {
      body: { policy: 'path "kv1/acl/*" { capabilities = ["update"] }' },
    })
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['kv1-update'] },
    })
    const token = created.body.auth.client_token as string
    expect((await server.call('POST', 'kv1/acl/new', { body: { a: '1' }, token })).status).toBe(403)
    expect(
      (await server.call('POST', 'kv1/acl/existing', { body: { a: '2' }, token })).status,
    ).toBe(204)
  })

  it('keeps its secrets when the mount is upgraded to version 2', async () => {
    expect((await server.call('POST', 'sys/mounts/up', { body: { type: 'kv' } })).status).toBe(204)
    await server.call('POST', 'up/app', { body: { a: '1' } })
    const tuned = await server.call('POST', 'sys/mounts/up/tune', {
      body: { options: { version: '2' } },
    })
    expect(tuned.status).toBe(204)
    const res = await server.call('GET', 'up/data/app')
    expect(res.status).toBe(200)
    expect(res.body.data.data).toEqual({ a: '1' })
    expect(res.body.data.metadata.version).toBe(1)
  })
})
