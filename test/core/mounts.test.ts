import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

const enable = (path: string, body: Record<string, unknown>) =>
  server.call('POST', `sys/mounts/${path}`, { body })

describe('secrets engine mounts', () => {
  it('resolves side-by-side multi-segment mounts by longest prefix', async () => {
    expect((await enable('kv/team-a', { type: 'kv', options: { version: '2' } })).status).toBe(204)
    expect((await enable('kv/team-b', { type: 'kv', options: { version: '2' } })).status).toBe(204)
    const a = await server.call('POST', 'kv/team-a/data/app', { body: { data: { who: 'a' } } })
    expect(a.status).toBe(200)
    const b = await server.call('POST', 'kv/team-b/data/app', { body: { data: { who: 'b' } } })
    expect(b.status).toBe(200)
    expect((await server.call('GET', 'kv/team-a/data/app')).body.data.data).toEqual({ who: 'a' })
    expect((await server.call('GET', 'kv/team-b/data/app')).body.data.data).toEqual({ who: 'b' })
    expect((await server.call('GET', 'kv/team-c/data/app')).status).toBe(404)

    const mounts = await server.call('GET', 'sys/mounts')
    expect(mounts.body.data['kv/team-a/'].type).toBe('kv')
    expect(mounts.body.data['kv/team-a/'].options).toEqual({ version: '2' })
    expect(mounts.body.data['kv/team-a/'].accessor).not.toBe(
      mounts.body.data['kv/team-b/'].accessor,
    )
  })

  it('lists mounts with every built-in, in data and at the top level', async () => {
    const res = await server.call('GET', 'sys/mounts')
    expect(res.status).toBe(200)
    for (const path of ['sys/', 'secret/', 'cubbyhole/', 'identity/']) {
      expect(res.body.data[path], path).toBeDefined()
      expect(res.body[path], path).toEqual(res.body.data[path])
    }
    expect(res.body.data['sys/'].type).toBe('system')
    expect(res.body.data['secret/'].options).toEqual({ version: '2' })
    expect(res.body.data['secret/'].config).toMatchObject({
      default_lease_ttl: 0,
      max_lease_ttl: 0,
    })
    expect(res.body.data['auth/token/']).toBeUndefined()
  })

  it('reads one mount and 404s on an unknown one', async () => {
    const one = await server.call('GET', 'sys/mounts/kv/team-a')
    expect(one.status).toBe(200)
    expect(one.body.data.type).toBe('kv')
    expect((await server.call('GET', 'sys/mounts/not-there')).status).toBe(404)
  })

  it('accepts kv-v2 as a type alias and kv without a version as v1', async () => {
    expect((await enable('alias-v2', { type: 'kv-v2' })).status).toBe(204)
    expect((await enable('plain-kv', { type: 'kv' })).status).toBe(204)
    const mounts = (await server.call('GET', 'sys/mounts')).body.data
    expect(mounts['alias-v2/']).toMatchObject({ type: 'kv', options: { version: '2' } })
    expect(mounts['plain-kv/']).toMatchObject({ type: 'kv', options: { version: '1' } })
  })

  it('refuses duplicate, nested, reserved and malformed paths, and unknown types, with 400', async () => {
    expect((await enable('dupe', { type: 'kv' })).status).toBe(204)
    const cases: Array<[string, Record<string, unknown>]> = [
      ['dupe', { type: 'kv' }],
      ['dupe/inner', { type: 'kv' }],
      ['kv', { type: 'kv' }],
      ['secret/nested', { type: 'kv' }],
      ['sys/mine', { type: 'kv' }],
      ['auth/mine', { type: 'kv' }],
      ['identity/x', { type: 'kv' }],
      ['cubbyhole/x', { type: 'kv' }],
      ['weird path', { type: 'kv' }],
      ['fresh', { type: 'no-such-engine' }],
      ['fresh', {}],
      ['fresh', { type: 'kv', config: 'not-an-object' }],
      ['fresh', { type: 'kv', options: ['x'] }],
      ['fresh', { type: 'kv', config: { default_lease_ttl: '2h', max_lease_ttl: '1h' } }],
      ['fresh', { type: 'kv', config: { default_lease_ttl: 'soon' } }],
    ]
    for (const [path, body] of cases) {
      const res = await enable(path, body)
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400)
      expect(res.body.errors.length).toBeGreaterThan(0)
    }
    expect((await server.call('GET', 'sys/mounts')).body.data['fresh/']).toBeUndefined()
  })

  it('tunes TTLs, refuses default > max, and reports the effective values', async () => {
    expect((await enable('tuned', { type: 'kv' })).status).toBe(204)
    const tune = await server.call('POST', 'sys/mounts/tuned/tune', {
      body: { default_lease_ttl: '1h', max_lease_ttl: '2h', description: 'tuned up' },
    })
    expect(tune.status).toBe(204)
    const read = await server.call('GET', 'sys/mounts/tuned/tune')
    expect(read.body.data).toMatchObject({
      default_lease_ttl: 3600,
      max_lease_ttl: 7200,
      description: 'tuned up',
    })
    const bad = await server.call('POST', 'sys/mounts/tuned/tune', {
      body: { default_lease_ttl: '3h' },
    })
    expect(bad.status).toBe(400)
    expect((await server.call('GET', 'sys/mounts/tuned/tune')).body.data.default_lease_ttl).toBe(
      3600,
    )
    const missing = await server.call('POST', 'sys/mounts/nowhere/tune', {
      body: { default_lease_ttl: '1h' },
    })
    expect(missing.status).toBe(400)
  })

  it('disables a mount and forgets its data; the path can be reused', async () => {
    expect((await enable('temp', { type: 'kv', options: { version: '2' } })).status).toBe(204)
    expect((await server.call('POST', 'temp/data/x', { body: { data: { a: '1' } } })).status).toBe(
      200,
    )
    expect((await server.call('DELETE', 'sys/mounts/temp')).status).toBe(204)
    expect((await server.call('GET', 'temp/data/x')).status).toBe(404)
    expect((await server.call('GET', 'sys/mounts')).body.data['temp/']).toBeUndefined()
    expect((await enable('temp', { type: 'kv', options: { version: '2' } })).status).toBe(204)
    expect((await server.call('GET', 'temp/data/x')).status).toBe(404)
  })

  it('refuses to unmount the built-in mounts', async () => {
    for (const path of ['sys', 'cubbyhole', 'identity']) {
      const res = await server.call('DELETE', `sys/mounts/${path}`)
      expect(res.status, path).toBe(400)
    }
    expect((await server.call('DELETE', 'sys/auth/token')).status).toBe(400)
    const mounts = (await server.call('GET', 'sys/mounts')).body.data
    expect(mounts['sys/']).toBeDefined()
    expect(mounts['cubbyhole/']).toBeDefined()
  })

  it('keeps mounts across a seal and unseal', async () => {
    expect((await enable('persist/me', { type: 'kv', options: { version: '2' } })).status).toBe(204)
    await server.call('POST', 'persist/me/data/k', { body: { data: { v: 'kept' } } })
    await server.call('PUT', 'sys/seal')
    await server.call('PUT', 'sys/unseal', { token: null, body: { key: server.unsealKeys[0] } })
    expect((await server.call('GET', 'persist/me/data/k')).body.data.data).toEqual({ v: 'kept' })
  })
})

describe('auth method mounts', () => {
  it('enables, lists (with top-level keys), tunes and disables an auth method', async () => {
    const on = await server.call('POST', 'sys/auth/my-approle', { body: { type: 'approle' } })
    expect(on.status).toBe(204)
    const list = await server.call('GET', 'sys/auth')
    expect(list.status).toBe(200)
    expect(list.body.data['token/'].type).toBe('token')
    expect(list.body.data['my-approle/'].type).toBe('approle')
    expect(list.body['my-approle/']).toEqual(list.body.data['my-approle/'])
    expect(list.body.data['my-approle/'].config.token_type).toBe('default-service')

    const tune = await server.call('POST', 'sys/auth/my-approle/tune', {
      body: { max_lease_ttl: '1h', default_lease_ttl: '2h' },
    })
    expect(tune.status).toBe(400)
    expect(
      (await server.call('POST', 'sys/auth/my-approle/tune', { body: { max_lease_ttl: '1h' } }))
        .status,
    ).toBe(204)
    expect((await server.call('GET', 'sys/auth/my-approle/tune')).body.data.max_lease_ttl).toBe(
      3600,
    )

    const dup = await server.call('POST', 'sys/auth/my-approle', { body: { type: 'approle' } })
    expect(dup.status).toBe(400)
    const unknown = await server.call('POST', 'sys/auth/other', { body: { type: 'nope' } })
    expect(unknown.status).toBe(400)
    const token = await server.call('POST', 'sys/auth/token', { body: { type: 'token' } })
    expect(token.status).toBe(400)

    expect((await server.call('DELETE', 'sys/auth/my-approle')).status).toBe(204)
    expect((await server.call('GET', 'sys/auth')).body.data['my-approle/']).toBeUndefined()
  })

  it('revokes tokens issued through an auth mount when it is disabled', async () => {
    await server.call('POST', 'sys/auth/gone', { body: { type: 'approle' } })
    const mount = server.services.mounts.get('auth/gone/')!
    const created = await server.services.tokens.create({
      policies: ['default'],
      path: 'auth/gone/login',
      mountAccessor: mount.entry.accessor,
      defaultTtl: 3600,
      maxTtl: 3600,
    })
    const look = () =>
      server.call('GET', 'auth/token/lookup-self', { token: created.token }).then((r) => r.status)
    expect(await look()).toBe(200)
    expect((await server.call('DELETE', 'sys/auth/gone')).status).toBe(204)
    expect(await look()).toBe(403)
  })
})
