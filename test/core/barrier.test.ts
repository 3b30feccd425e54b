import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { Barrier, newKeyring, safeEqual } from '../../src/core/barrier.js'
import * as aead from '../../src/crypto/aead.js'

describe('the barrier', () => {
  const barrier = new Barrier()
  beforeAll(() => barrier.load(newKeyring()))

  it('gives a different ciphertext for every write of the same value', () => {
    const a = barrier.encrypt('kv', 'value', 'row-1', 'hunter2')
    const b = barrier.encrypt('kv', 'value', 'row-1', 'hunter2')
    expect(a).not.toBe(b)
    expect(a).not.toContain('hunter2')
    expect(barrier.decrypt('kv', 'value', 'row-1', a)).toBe('hunter2')
    expect(barrier.decrypt('kv', 'value', 'row-1', b)).toBe('hunter2')
  })

  it('binds a ciphertext to its table, column and row', () => {
    const ct = barrier.encrypt('kv', 'value', 'row-1', 'hunter2')
    expect(() => barrier.decrypt('kv', 'value', 'row-2', ct)).toThrow(/failed authentication/)
    expect(() => barrier.decrypt('kv', 'other', 'row-1', ct)).toThrow(/failed authentication/)
    expect(() => barrier.decrypt('leases', 'value', 'row-1', ct)).toThrow(/failed authentication/)
  })

  it('refuses a tampered ciphertext and an unknown key term', () => {
    const ct = barrier.encrypt('kv', 'value', 'row-1', 'hunter2')
    const [term, body] = ct.split(':') as [string, string]
    const bytes = Buffer.from(body, 'base64')
    bytes[bytes.length - 1]! ^= 1
    expect(() =>
      barrier.decrypt('kv', 'value', 'row-1', `${term}:${bytes.toString('base64')}`),
    ).toThrow(/failed authentication/)
    expect(() => barrier.decrypt('kv', 'value', 'row-1', `99:${body}`)).toThrow(/unknown key term/)
  })

  it('keeps old ciphertext readable after a rotation and writes under the new term', () => {
    const local = new Barrier()
    local.load(newKeyring())
    const old = local.encrypt('t', 'c', 'r', 'before')
    expect(old.startsWith('1:')).toBe(true)
    const ring = local.rotate()
    expect(ring.activeTerm).toBe(2)
    expect(local.keyStatus().term).toBe(2)
    const fresh = local.encrypt('t', 'c', 'r', 'after')
    expect(fresh.startsWith('2:')).toBe(true)
    expect(local.decrypt('t', 'c', 'r', old)).toBe('before')
    expect(local.isStale(old)).toBe(true)
    expect(local.isStale(fresh)).toBe(false)
  })

  it('refuses to work once sealed', () => {
    const local = new Barrier()
    local.load(newKeyring())
    const ct = local.encrypt('t', 'c', 'r', 'x')
    local.unload()
    expect(local.sealed).toBe(true)
    expect(() => local.decrypt('t', 'c', 'r', ct)).toThrow(/sealed/)
    expect(() => local.encrypt('t', 'c', 'r', 'x')).toThrow(/sealed/)
    expect(() => local.hmac('token', 'x')).toThrow(/sealed/)
  })

  it('gives a stable keyed hash that depends on the purpose', () => {
    expect(barrier.hmac('token', 'abc')).toBe(barrier.hmac('token', 'abc'))
    expect(barrier.hmac('token', 'abc')).not.toBe(barrier.hmac('secret-id', 'abc'))
    const other = new Barrier()
    other.load(newKeyring())
    expect(other.hmac('token', 'abc')).not.toBe(barrier.hmac('token', 'abc'))
  })

  it('compares strings in constant time and by value', () => {
    expect(safeEqual('abc', 'abc')).toBe(true)
    expect(safeEqual('abc', 'abd')).toBe(false)
    expect(safeEqual('abc', 'abcd')).toBe(false)
  })
})

describe('sys/rotate and sys/key-status', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(async () => {
    await server?.close()
  })

  it('increments the term, keeps old secrets readable and survives a seal/unseal', async () => {
    const before = await server.call('GET', 'sys/key-status')
    expect(before.status).toBe(200)
    expect(before.body.data.term).toBe(1)
    expect(before.body.term).toBe(1)
    expect(Date.parse(before.body.data.install_time)).not.toBeNaN()

    const oldCt = server.services.seal.barrier.encrypt('t', 'c', 'r', 'old-value')
    expect((await server.call('PUT', 'sys/rotate')).status).toBe(204)
    expect((await server.call('PUT', 'sys/rotate')).status).toBe(204)
    const after = await server.call('GET', 'sys/key-status')
    expect(after.body.data.term).toBe(3)
    const newCt = server.services.seal.barrier.encrypt('t', 'c', 'r', 'new-value')
    expect(newCt.startsWith('3:')).toBe(true)

    // The rotated keyring was persisted: after seal and unseal, both terms still decrypt.
    expect((await server.call('PUT', 'sys/seal')).status).toBe(204)
    const unseal = await server.call('PUT', 'sys/unseal', {
      token: null,
      body: { key: server.unsealKeys[0] },
    })
    expect(unseal.body.sealed).toBe(false)
    expect((await server.call('GET', 'sys/key-status')).body.data.term).toBe(3)
    expect(server.services.seal.barrier.decrypt('t', 'c', 'r', oldCt)).toBe('old-value')
    expect(server.services.seal.barrier.decrypt('t', 'c', 'r', newCt)).toBe('new-value')
  })

  it('keeps KV secrets written before a rotation readable and writes new ones under the new term', async () => {
    const termOf = async (path: string) => {
      const rows = await server.storage.db
        .selectFrom('kv_versions')
        .select(['value', 'version'])
        .where('path', '=', path)
        .execute()
      return rows.map((r) => Number(String(r.value).split(':')[0]))
    }
    const before = (await server.call('GET', 'sys/key-status')).body.data.term as number
    await server.call('POST', 'secret/data/rot/old', { body: { data: { v: 'old' } } })
    expect(await termOf('rot/old')).toEqual([before])
    expect((await server.call('PUT', 'sys/rotate')).status).toBe(204)
    await server.call('POST', 'secret/data/rot/new', { body: { data: { v: 'new' } } })
    expect(await termOf('rot/new')).toEqual([before + 1])
    expect((await server.call('GET', 'secret/data/rot/old')).body.data.data).toEqual({ v: 'old' })
    expect((await server.call('GET', 'secret/data/rot/new')).body.data.data).toEqual({ v: 'new' })
  })

  it('needs sudo to rotate', async () => {
    await server.call('PUT', 'sys/policy/rotator', {
      body: { policy: 'path "sys/rotate" { capabilities = ["update"] }' },
    })
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['rotator'] },
    })
    const token = created.body.auth.client_token as string
    const term = (await server.call('GET', 'sys/key-status')).body.data.term
    expect((await server.call('PUT', 'sys/rotate', { token })).status).toBe(403)
    expect((await server.call('GET', 'sys/key-status')).body.data.term).toBe(term)
  })

  it('stores the keyring and root key only as ciphertext', async () => {
    const rows = await server.storage.db.selectFrom('stint_meta').selectAll().execute()
    const byKey = Object.fromEntries(rows.map((r) => [r.key, r.value]))
    for (const name of ['keyring', 'root_key']) {
      const value = byKey[name]!
      expect(value).toMatch(/^[A-Za-z0-9+/]+=*$/)
      const bytes = Buffer.from(value, 'base64')
      expect(bytes.toString('utf8')).not.toMatch(/activeTerm|hmacKey|"keys"/)
      // Not decryptable without the right key.
      expect(() => aead.open(aead.generateKey(), bytes, `stint_meta:value:${name}`)).toThrow()
    }
    // The unseal key share is not the root key: it cannot open the keyring directly.
    const share = Buffer.from(server.unsealKeys[0]!, 'base64')
    expect(() =>
      aead.open(share, Buffer.from(byKey.keyring!, 'base64'), 'stint_meta:value:keyring'),
    ).toThrow()
  })
})
