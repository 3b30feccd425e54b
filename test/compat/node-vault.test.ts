import vault from 'node-vault'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

/*
 * The npm `node-vault` client (axios), unchanged, against a real Stint listener on 127.0.0.1.
 * Its `list` sends the custom LIST HTTP method, which Node's HTTP parser does not know.
 */

let server: TestServer
let endpoint: string

beforeAll(async () => {
  server = await startTestServer()
  endpoint = (await server.listen()).address
})
afterAll(async () => {
  await server?.close()
})

const client = (token?: string) => vault({ endpoint, token: token ?? server.rootToken })

describe('node-vault against Stint', () => {
  it('writes, reads, lists and deletes KV v2 secrets through the generic calls', async () => {
    const vc = client()
    const written = await vc.write('secret/data/compat/app', { data: { user: 'svc', pass: 's3' } })
    expect(written.data.version).toBe(1)
    await vc.write('secret/data/compat/other/x', { data: { a: '1' } })

    const read = await vc.read('secret/data/compat/app')
    expect(read.data.data).toEqual({ user: 'svc', pass: 's3' })
    expect(read.data.metadata.version).toBe(1)

    const listed = await vc.list('secret/metadata/compat/')
    expect(listed.data.keys).toEqual(['app', 'other/'])

    await vc.delete('secret/data/compat/app')
    await expect(vc.read('secret/data/compat/app')).rejects.toMatchObject({
      response: { statusCode: 404 },
    })
    await vc.delete('secret/metadata/compat/app')
    expect((await vc.list('secret/metadata/compat/')).data.keys).toEqual(['other/'])
  })

  it('lists with GET ?list=1 when custom verbs are turned off', async () => {
    const vc = vault({ endpoint, token: server.rootToken, noCustomHTTPVerbs: true })
    await vc.write('secret/data/verbs/a', { data: { a: '1' } })
    expect((await vc.list('secret/metadata/verbs')).data.keys).toEqual(['a'])
  })

  it('keeps a keep-alive connection usable after a LIST', async () => {
    const vc = client()
    await vc.write('secret/data/keepalive/a', { data: { a: '1' } })
    for (let i = 0; i < 5; i++) {
      expect((await vc.list('secret/metadata/keepalive/')).data.keys).toEqual(['a'])
      expect((await vc.read('secret/data/keepalive/a')).data.data).toEqual({ a: '1' })
    }
  })

  it('creates, looks up, renews and revokes tokens', async () => {
    const vc = client()
    const created = await vc.tokenCreate({ policies: ['default'], ttl: '1h', renewable: true })
    const child = created.auth.client_token as string
    expect(child).toBeTruthy()
    expect(created.auth.policies).toContain('default')

    const admin = client()
    const looked = await admin.tokenLookup({ token: child })
    expect(looked.data.policies).toEqual(['default'])
    expect(looked.data.ttl).toBeGreaterThan(3500)

    const self = await client(child).tokenLookupSelf()
    expect(self.data.accessor).toBe(created.auth.accessor)

    const renewed = await client().tokenRenew({ token: child, increment: '2h' })
    expect(renewed.auth.client_token).toBe(child)
    expect(renewed.auth.lease_duration).toBeGreaterThan(3600)

    await admin.tokenRevoke({ token: child })
    await expect(client(child).tokenLookupSelf()).rejects.toThrow(/permission denied/)
  })

  it('writes, reads, lists and removes policies', async () => {
    const vc = client()
    const rules = 'path "secret/data/ci/*" { capabilities = ["read"] }'
    await vc.addPolicy({ name: 'ci-read', rules })
    const got = await vc.getPolicy({ name: 'ci-read' })
    expect(got.rules).toBe(rules)
    const all = await vc.policies()
    expect(all.policies).toContain('ci-read')
    expect(all.data.keys).toContain('ci-read')
    await vc.removePolicy({ name: 'ci-read' })
    await expect(vc.getPolicy({ name: 'ci-read' })).rejects.toMatchObject({
      response: { statusCode: 404 },
    })
  })

  it('lists, enables and disables mounts', async () => {
    const vc = client()
    await vc.mount({ mount_point: 'compat-kv', type: 'kv-v2', description: 'from node-vault' })
    const mounts = await vc.mounts()
    expect(mounts['compat-kv/']).toMatchObject({ type: 'kv', options: { version: '2' } })
    expect(mounts.data['secret/'].type).toBe('kv')
    await vc.write('compat-kv/data/a', { data: { x: '1' } })
    expect((await vc.read('compat-kv/data/a')).data.data).toEqual({ x: '1' })
    await vc.unmount({ mount_point: 'compat-kv' })
    expect((await vc.mounts())['compat-kv/']).toBeUndefined()
  })

  it('reads health and seal status', async () => {
    const vc = client()
    const health = await vc.health()
    expect(health).toMatchObject({ initialized: true, sealed: false })
    const status = await vc.status()
    expect(status).toMatchObject({ initialized: true, sealed: false, t: 1, n: 1 })
  })

  it('reports a denied request with "permission denied"', async () => {
    const vc = client('not-a-token')
    await expect(vc.read('secret/data/compat/app')).rejects.toThrow(/permission denied/)
  })
})

describe('node-vault bootstrapping a new server', () => {
  let fresh: TestServer
  let address: string

  beforeAll(async () => {
    fresh = await startTestServer({ uninitialized: true })
    address = (await fresh.listen()).address
  })
  afterAll(async () => {
    await fresh?.close()
  })

  it('inits, unseals with two of three keys, and uses a scoped child token until it is revoked', async () => {
    const vc = vault({ endpoint: address })
    expect((await vc.initialized()).initialized).toBe(false)
    const init = await vc.init({ secret_shares: 3, secret_threshold: 2 })
    expect(init.keys).toHaveLength(3)
    expect((await vc.status()).sealed).toBe(true)

    const first = await vc.unseal({ key: init.keys[0] })
    expect(first).toMatchObject({ sealed: true, progress: 1, t: 2, n: 3 })
    const second = await vc.unseal({ key: init.keys[2] })
    expect(second.sealed).toBe(false)

    vc.token = init.root_token
    await vc.mount({ mount_point: 'secret', type: 'kv-v2' })
    await vc.write('secret/data/app/db', { data: { password: 'hunter2' } })
    await vc.addPolicy({
      name: 'app-read',
      rules: 'path "secret/data/app/*" { capabilities = ["read"] }',
    })
    const created = await vc.tokenCreate({ policies: ['app-read'] })
    const child = created.auth.client_token as string

    const app = vault({ endpoint: address, token: child })
    expect((await app.read('secret/data/app/db')).data.data).toEqual({ password: 'hunter2' })
    await expect(app.write('secret/data/app/db', { data: { password: 'x' } })).rejects.toThrow(
      /permission denied/,
    )

    const admin = vault({ endpoint: address, token: init.root_token })
    await admin.tokenRevoke({ token: child })
    const denied = await app.read('secret/data/app/db').catch((err: unknown) => err)
    expect(denied).toBeInstanceOf(Error)
    expect((denied as { response: { statusCode: number } }).response.statusCode).toBe(403)
    expect(String((denied as Error).message)).toContain('permission denied')
  })
})
