import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer, request } from '../support/server.js'
import { composeServer } from '../../src/server/compose.js'
import { openStorage } from '../../src/storage/storage.js'
import { readUnsealKey } from '../../src/server/config.js'

const tempDb = () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'stint-seal-')), 'stint.db')}`

/** Every k-element subset of `items`, in order. */
function combinations<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]]
  if (items.length < k) return []
  const [head, ...rest] = items
  return [...combinations(rest, k - 1).map((c) => [head!, ...c]), ...combinations(rest, k)]
}

describe('sys/init', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ uninitialized: true })
  })
  afterAll(async () => {
    await server?.close()
  })

  it('rejects bad share parameters with 400 and stays uninitialised', async () => {
    const bad = [
      { secret_shares: 3, secret_threshold: 4 },
      { secret_shares: 0, secret_threshold: 0 },
      { secret_shares: 3, secret_threshold: 1 },
      { secret_shares: 256, secret_threshold: 2 },
      { secret_shares: 'three', secret_threshold: 2 },
      { secret_shares: 2.5, secret_threshold: 2 },
    ]
    for (const body of bad) {
      const res = await server.call('PUT', 'sys/init', { token: null, body })
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.body.errors.length).toBeGreaterThan(0)
    }
    const init = await server.call('GET', 'sys/init', { token: null })
    expect(init.body).toEqual({ initialized: false })
  })

  it('returns hex and base64 keys plus a root token, then refuses a second init', async () => {
    const res = await server.call('PUT', 'sys/init', {
      token: null,
      body: { secret_shares: 3, secret_threshold: 2 },
    })
    expect(res.status).toBe(200)
    expect(res.body.keys).toHaveLength(3)
    expect(res.body.keys_base64).toHaveLength(3)
    for (let i = 0; i < 3; i++) {
      expect(res.body.keys[i]).toMatch(/^[0-9a-f]+$/)
      expect(Buffer.from(res.body.keys[i], 'hex').toString('base64')).toBe(res.body.keys_base64[i])
    }
    expect(typeof res.body.root_token).toBe('string')
    expect(res.body.root_token.length).toBeGreaterThan(20)

    const status = await server.call('GET', 'sys/seal-status', { token: null })
    expect(status.body).toMatchObject({ initialized: true, sealed: true, t: 2, n: 3, progress: 0 })

    const again = await server.call('PUT', 'sys/init', {
      token: null,
      body: { secret_shares: 1, secret_threshold: 1 },
    })
    expect(again.status).toBe(400)
    expect(again.body.errors[0]).toMatch(/already initialized/)

    // The returned keys and root token really work.
    for (const key of res.body.keys.slice(0, 2)) {
      await server.call('PUT', 'sys/unseal', { token: null, body: { key } })
    }
    const self = await server.call('GET', 'auth/token/lookup-self', { token: res.body.root_token })
    expect(self.status).toBe(200)
    expect(self.body.data.policies).toEqual(['root'])
  })
})

describe('unsealing with 5 shares and a threshold of 3', () => {
  let server: TestServer
  let hex: string[]
  const unseal = (key: string) => server.call('PUT', 'sys/unseal', { token: null, body: { key } })
  const seal = async () => {
    if (server.services.seal.sealed) {
      await server.call('PUT', 'sys/unseal', { token: null, body: { reset: true } })
      return
    }
    const res = await server.call('PUT', 'sys/seal')
    expect(res.status).toBe(204)
  }
  const status = async () => (await server.call('GET', 'sys/seal-status', { token: null })).body

  beforeAll(async () => {
    server = await startTestServer({ shares: 5, threshold: 3 })
    hex = server.unsealKeys.map((k) => Buffer.from(k, 'base64').toString('hex'))
  })
  afterAll(async () => {
    await server?.close()
  })

  it('unseals with every one of the 10 combinations of 3 shares', async () => {
    const combos = combinations([0, 1, 2, 3, 4], 3)
    expect(combos).toHaveLength(10)
    for (const combo of combos) {
      await seal()
      expect((await status()).sealed).toBe(true)
      for (const [i, idx] of combo.entries()) {
        // Alternate hex and base64 encodings of the shares.
        const key = (i + idx) % 2 === 0 ? hex[idx]! : server.unsealKeys[idx]!
        const res = await unseal(key)
        expect(res.status, `combo ${combo.join(',')}`).toBe(200)
      }
      const s = await status()
      expect(s.sealed, `combo ${combo.join(',')}`).toBe(false)
      expect(s.progress).toBe(0)
      expect((await server.call('GET', 'sys/mounts')).status).toBe(200)
    }
  })

  it('stays sealed with t-1 shares and reports the progress', async () => {
    await seal()
    const first = await unseal(hex[0]!)
    expect(first.body).toMatchObject({ sealed: true, t: 3, n: 5, progress: 1 })
    expect(first.body.nonce).not.toBe('')
    const second = await unseal(server.unsealKeys[3]!)
    expect(second.body).toMatchObject({ sealed: true, progress: 2 })
    expect((await status()).sealed).toBe(true)
    expect((await server.call('GET', 'sys/mounts')).status).toBe(503)
    await unseal(hex[4]!)
    expect((await status()).sealed).toBe(false)
  })

  it('refuses a wrong share given with t-1 good ones, and stays sealed', async () => {
    await seal()
    await unseal(hex[0]!)
    await unseal(hex[1]!)
    const wrong = randomBytes(Buffer.from(hex[0]!, 'hex').length).toString('hex')
    const res = await unseal(wrong)
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toMatch(/invalid key/)
    const s = await status()
    expect(s.sealed).toBe(true)
    expect(s.progress).toBe(0)
    // A fresh, correct round still works afterwards.
    for (const k of [hex[2]!, hex[3]!, hex[4]!]) await unseal(k)
    expect((await status()).sealed).toBe(false)
  })

  it('refuses a share of the wrong length and a share that is neither hex nor base64', async () => {
    await seal()
    expect((await unseal(randomBytes(16).toString('hex'))).status).toBe(400)
    expect((await unseal('not a key!')).status).toBe(400)
    expect((await status()).progress).toBe(0)
  })

  it('refuses the same share twice in one round', async () => {
    await seal()
    expect((await unseal(hex[1]!)).status).toBe(200)
    const dup = await unseal(server.unsealKeys[1]!)
    expect(dup.status).toBe(400)
    expect(dup.body.errors[0]).toMatch(/already been provided/)
    expect((await status()).progress).toBe(1)
  })

  it('clears the progress on reset', async () => {
    await seal()
    await unseal(hex[2]!)
    expect((await status()).progress).toBeGreaterThan(0)
    const reset = await server.call('PUT', 'sys/unseal', { token: null, body: { reset: true } })
    expect(reset.status).toBe(200)
    expect(reset.body.progress).toBe(0)
    expect(reset.body.sealed).toBe(true)
    // After reset, two shares are no longer enough.
    await unseal(hex[3]!)
    await unseal(hex[4]!)
    expect((await status()).sealed).toBe(true)
    await unseal(hex[0]!)
    expect((await status()).sealed).toBe(false)
  })

  it('answers 400 to an unseal with neither key nor reset, and to reset while unsealed', async () => {
    const empty = await server.call('PUT', 'sys/unseal', { token: null, body: {} })
    expect(empty.status).toBe(400)
    expect(empty.body.errors[0]).toMatch(/'key' must be specified/)
    const reset = await server.call('PUT', 'sys/unseal', { token: null, body: { reset: true } })
    expect(reset.status).toBe(400)
    expect(reset.body.errors[0]).toMatch(/vault is unsealed/)
  })
})

describe('while sealed', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
    expect((await server.call('PUT', 'sys/seal')).status).toBe(204)
  })
  afterAll(async () => {
    await server?.close()
  })

  it.each([
    ['GET', 'sys/mounts'],
    ['POST', 'sys/mounts/kv2'],
    ['GET', 'sys/auth'],
    ['GET', 'auth/token/lookup-self'],
    ['POST', 'auth/token/create'],
    ['GET', 'secret/data/x'],
    ['POST', 'secret/data/x'],
    ['GET', 'sys/policy'],
    ['GET', 'sys/policies/acl/default'],
    ['POST', 'sys/capabilities-self'],
    ['GET', 'sys/key-status'],
    ['POST', 'sys/rotate'],
    ['GET', 'sys/internal/ui/mounts/secret'],
    ['GET', 'cubbyhole/x'],
    ['GET', 'nothing/mounted/here'],
    ['GET', 'sys/no-such-endpoint'],
    ['LIST', 'auth/token/accessors'],
  ])('%s %s answers 503 Vault is sealed', async (method, path) => {
    const res = await server.call(method, path, { body: method === 'POST' ? {} : undefined })
    expect(res.status).toBe(503)
    expect(res.body).toEqual({ errors: ['Vault is sealed'] })
  })

  it('still serves init, seal-status, health and leader', async () => {
    expect((await server.call('GET', 'sys/init', { token: null })).status).toBe(200)
    const s = await server.call('GET', 'sys/seal-status', { token: null })
    expect(s.status).toBe(200)
    expect(s.body.sealed).toBe(true)
    expect((await server.call('GET', 'sys/health', { token: null })).status).toBe(503)
    expect((await server.call('GET', 'sys/leader', { token: null })).status).toBe(200)
  })
})

describe('sys/seal', () => {
  it('needs sudo: a token without it gets 403 and the server stays unsealed', async () => {
    const server = await startTestServer()
    try {
      await server.call('PUT', 'sys/policy/sealer', {
        body: { policy: 'path "sys/seal" { capabilities = ["update"] }' },
      })
      const child = await server.call('POST', 'auth/token/create', {
        body: { policies: ['sealer'] },
      })
      const token = child.body.auth.client_token as string
      const res = await server.call('PUT', 'sys/seal', { token })
      expect(res.status).toBe(403)
      expect(server.services.seal.sealed).toBe(false)

      await server.call('PUT', 'sys/policy/sealer', {
        body: { policy: 'path "sys/seal" { capabilities = ["update", "sudo"] }' },
      })
      expect((await server.call('PUT', 'sys/seal', { token })).status).toBe(204)
      expect(server.services.seal.sealed).toBe(true)
    } finally {
      await server.close()
    }
  })
})

describe('sys/health', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({ uninitialized: true })
  })
  afterAll(async () => {
    await server?.close()
  })
  const health = (query = '', method = 'GET') =>
    server.call(method, `sys/health${query}`, { token: null })

  it('answers 501 while uninitialised, 503 sealed, 200 active, with query overrides', async () => {
    expect((await health()).status).toBe(501)
    expect((await health('?uninitcode=200')).status).toBe(200)
    const init = await server.call('PUT', 'sys/init', {
      token: null,
      body: { secret_shares: 1, secret_threshold: 1 },
    })
    const sealed = await health()
    expect(sealed.status).toBe(503)
    expect(sealed.body).toMatchObject({ initialized: true, sealed: true, standby: false })
    expect((await health('?sealedcode=299')).status).toBe(299)
    await server.call('PUT', 'sys/unseal', { token: null, body: { key: init.body.keys[0] } })
    const active = await health()
    expect(active.status).toBe(200)
    expect(active.body).toMatchObject({ initialized: true, sealed: false, standby: false })
    expect(typeof active.body.server_time_utc).toBe('number')
    expect(typeof active.body.version).toBe('string')
    expect((await health('?activecode=204')).status).toBe(204)
    expect((await health('?standbycode=200&activecode=299')).status).toBe(299)
  })

  it('rejects a non-integer code with 400', async () => {
    for (const q of ['?activecode=abc', '?standbycode=2.5', '?sealedcode=', '?uninitcode=99999']) {
      expect((await health(q)).status, q).toBe(400)
    }
  })

  it('answers HEAD with the status and no body', async () => {
    const res = await request(server.api, '/v1/sys/health', { method: 'HEAD' })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
    const custom = await request(server.api, '/v1/sys/health?activecode=218', { method: 'HEAD' })
    expect(custom.status).toBe(218)
  })
})

describe('auto-unseal with a static key', () => {
  it('starts unsealed on the second build with the same key, and sealed with a wrong key', async () => {
    const url = tempDb()
    const key = new Uint8Array(randomBytes(32))

    const first = await composeServer({ storage: url, staticUnsealKey: key })
    const init = await request(first.api, '/v1/sys/init', {
      method: 'PUT',
      body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
    })
    expect(init.status).toBe(200)
    const body = (await init.json()) as { keys: string[]; root_token: string }
    expect(body.keys).toEqual([])
    const rootToken = body.root_token
    // With an auto-unseal key, the server unseals right after init, as Vault does.
    expect(first.services.seal.sealed).toBe(false)
    await first.shutdown()

    const second = await composeServer({ storage: url, staticUnsealKey: key })
    try {
      expect(second.services.seal.sealed).toBe(false)
      const status = await request(second.api, '/v1/sys/seal-status')
      expect(await status.json()).toMatchObject({ type: 'static', sealed: false })
      const self = await request(second.api, '/v1/auth/token/lookup-self', {
        headers: { 'X-Vault-Token': rootToken },
      })
      expect(self.status).toBe(200)
      // Shares cannot unseal a static-key server.
      await request(second.api, '/v1/sys/seal', {
        method: 'PUT',
        headers: { 'X-Vault-Token': rootToken },
      })
      const share = await request(second.api, '/v1/sys/unseal', {
        method: 'PUT',
        body: JSON.stringify({ key: Buffer.from(key).toString('hex') }),
      })
      expect(share.status).toBe(400)
    } finally {
      await second.shutdown()
    }

    const storage = openStorage(url)
    try {
      const wrong = new Uint8Array(randomBytes(32))
      await expect(composeServer({ storage, staticUnsealKey: wrong })).rejects.toThrow(
        /unable to decrypt the root key/,
      )
    } finally {
      await storage.close()
    }
  })

  it('reads the key from a file (base64 or hex) and from an environment variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stint-key-'))
    const key = randomBytes(32)
    const b64File = join(dir, 'b64.key')
    const hexFile = join(dir, 'hex.key')
    writeFileSync(b64File, `${key.toString('base64')}\n`)
    writeFileSync(hexFile, key.toString('hex'))
    expect(Buffer.from((await readUnsealKey({ unsealKeyFile: b64File }))!)).toEqual(key)
    expect(Buffer.from((await readUnsealKey({ unsealKeyFile: hexFile }))!)).toEqual(key)
    const env = { MY_KEY: key.toString('base64') }
    expect(Buffer.from((await readUnsealKey({ unsealKeyEnv: 'MY_KEY' }, env))!)).toEqual(key)
    expect(await readUnsealKey({ unsealKeyEnv: 'MISSING' }, {})).toBeUndefined()
    expect(await readUnsealKey({}, env)).toBeUndefined()

    const short = join(dir, 'short.key')
    writeFileSync(short, randomBytes(16).toString('base64'))
    await expect(readUnsealKey({ unsealKeyFile: short })).rejects.toThrow(/32 bytes/)
  })

  it('does not put the key in the error when the key is bad', async () => {
    const bad = 'c2VjcmV0LXZhbHVlLXRoYXQtaXMtdG9vLXNob3J0'
    const err = await readUnsealKey({ unsealKeyEnv: 'K' }, { K: bad }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).not.toContain(bad)
  })
})
