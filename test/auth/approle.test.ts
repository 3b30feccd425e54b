import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  expect(
    (await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } })).status,
  ).toBe(204)
})

afterAll(async () => {
  await server?.close()
})

afterEach(() => {
  vi.useRealTimers()
})

const writeRole = (name: string, body: Record<string, unknown>) =>
  server.call('POST', `auth/approle/role/${name}`, { body })
const roleId = async (name: string): Promise<string> =>
  (await server.call('GET', `auth/approle/role/${name}/role-id`)).body.data.role_id
const newSecretId = async (name: string, body: Record<string, unknown> = {}) => {
  const res = await server.call('POST', `auth/approle/role/${name}/secret-id`, { body })
  expect(res.status).toBe(200)
  return res.body.data as {
    secret_id: string
    secret_id_accessor: string
    secret_id_ttl: number
    secret_id_num_uses: number
  }
}
const login = (role_id: string, secret_id?: string) =>
  server.call('POST', 'auth/approle/login', { token: null, body: { role_id, secret_id } })

interface LoginBody {
  errors?: string[]
  auth: { client_token: string }
}

/** A login over a real socket from a chosen loopback address. */
function socketLogin(
  url: string,
  localAddress: string,
  body: unknown,
): Promise<{ status: number; body: LoginBody }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/auth/approle/login`,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }),
        )
      },
    )
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

describe('AppRole roles', () => {
  it('creates, reads, lists and deletes a role with Vault field names and defaults', async () => {
    expect(
      (
        await writeRole('svc', {
          token_policies: 'svc-read',
          secret_id_ttl: '10m',
          secret_id_num_uses: 5,
          token_ttl: '20m',
        })
      ).status,
    ).toBe(204)
    const read = await server.call('GET', 'auth/approle/role/svc')
    expect(read.status).toBe(200)
    expect(read.body.data).toMatchObject({
      bind_secret_id: true,
      secret_id_bound_cidrs: [],
      secret_id_num_uses: 5,
      secret_id_ttl: 600,
      token_policies: ['svc-read'],
      token_ttl: 1200,
      token_type: 'default',
    })
    expect(read.body.data.role_id).toBeUndefined()
    expect((await server.call('LIST', 'auth/approle/role')).body.data.keys).toContain('svc')
    expect(await roleId('svc')).toMatch(/^[0-9a-f-]{36}$/)
    expect((await server.call('DELETE', 'auth/approle/role/svc')).status).toBe(204)
    expect((await server.call('GET', 'auth/approle/role/svc')).status).toBe(404)
  })

  it('accepts a custom role id and refuses one already used by another role', async () => {
    expect((await writeRole('custom', { role_id: 'my-role-id', token_policies: 'a' })).status).toBe(
      204,
    )
    expect(await roleId('custom')).toBe('my-role-id')
    const clash = await writeRole('clash', { role_id: 'my-role-id' })
    expect(clash.status).toBe(400)
    expect(
      (
        await server.call('POST', 'auth/approle/role/custom/role-id', {
          body: { role_id: 'renamed-id' },
        })
      ).status,
    ).toBe(204)
    expect(await roleId('custom')).toBe('renamed-id')
  })

  it('serves per-field sub-paths such as secret-id-ttl and policies', async () => {
    await writeRole('fields', { token_policies: 'a' })
    expect(
      (
        await server.call('POST', 'auth/approle/role/fields/secret-id-ttl', {
          body: { secret_id_ttl: '1h' },
        })
      ).status,
    ).toBe(204)
    expect((await server.call('GET', 'auth/approle/role/fields/secret-id-ttl')).body.data).toEqual({
      secret_id_ttl: 3600,
    })
    await server.call('POST', 'auth/approle/role/fields/policies', { body: { policies: 'b,c' } })
    expect((await server.call('GET', 'auth/approle/role/fields/policies')).body.data).toEqual({
      token_policies: ['b', 'c'],
    })
  })

  it('refuses a role without secret-id binding and without any CIDR constraint', async () => {
    const res = await writeRole('open', { bind_secret_id: false })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['at least one constraint should be enabled on the role'])
  })
})

describe('AppRole login', () => {
  it('logs in with role id and secret id and returns a token with the role policies and metadata', async () => {
    await writeRole('app', { token_policies: ['app-read'], token_ttl: '5m' })
    const sid = await newSecretId('app', { metadata: JSON.stringify({ team: 'payments' }) })
    expect(sid.secret_id).toMatch(/^[0-9a-f-]{36}$/)
    const res = await login(await roleId('app'), sid.secret_id)
    expect(res.status).toBe(200)
    expect(res.body.auth.policies).toEqual(['app-read', 'default'])
    expect(res.body.auth.metadata).toEqual({ role_name: 'app', team: 'payments' })
    expect(res.body.auth.lease_duration).toBe(300)
    const self = await server.call('GET', 'auth/token/lookup-self', {
      token: res.body.auth.client_token,
    })
    expect(self.body.data.path).toBe('auth/approle/login')
    if (server.services.identity) expect(res.body.auth.entity_id).not.toBe('')
    else expect(res.body.auth.entity_id).toBe('')
  })

  it('answers with Vault’s vague 400 for every wrong credential', async () => {
    await writeRole('vague', { token_policies: 'x' })
    const rid = await roleId('vague')
    const sid = await newSecretId('vague')
    const missingRole = await login('', sid.secret_id)
    expect(missingRole.status).toBe(400)
    expect(missingRole.body.errors).toEqual(['missing role_id'])
    const missingSecret = await login(rid)
    expect(missingSecret.body.errors).toEqual(['missing secret_id'])
    for (const [r, s] of [
      ['not-a-role-id', sid.secret_id],
      [rid, 'not-a-secret-id'],
      [await roleId('app'), sid.secret_id],
    ]) {
      const res = await login(r!, s)
      expect(res.status).toBe(400)
      expect(res.body.errors).toEqual(['invalid role or secret ID'])
    }
  })

  it('lets a num_uses=1 secret id log in once and never again', async () => {
    await writeRole('once', { token_policies: 'x' })
    const rid = await roleId('once')
    const sid = await newSecretId('once', { num_uses: 1 })
    expect(sid.secret_id_num_uses).toBe(1)
    expect((await login(rid, sid.secret_id)).status).toBe(200)
    const again = await login(rid, sid.secret_id)
    expect(again.status).toBe(400)
    expect(again.body.errors).toEqual(['invalid role or secret ID'])
    expect((await server.call('LIST', 'auth/approle/role/once/secret-id')).status).toBe(404)
  })

  it('lets exactly one of 10 concurrent logins use a num_uses=1 secret id', async () => {
    const rid = await roleId('once')
    const sid = await newSecretId('once', { num_uses: 1 })
    const results = await Promise.all(Array.from({ length: 10 }, () => login(rid, sid.secret_id)))
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    expect(results.filter((r) => r.status === 400)).toHaveLength(9)
    expect((await login(rid, sid.secret_id)).status).toBe(400)
  })

  it('lets exactly three of 10 concurrent logins use a num_uses=3 secret id', async () => {
    const rid = await roleId('once')
    const sid = await newSecretId('once', { num_uses: 3 })
    const results = await Promise.all(Array.from({ length: 10 }, () => login(rid, sid.secret_id)))
    expect(results.filter((r) => r.status === 200)).toHaveLength(3)
  })

  it('refuses an expired secret id', async () => {
    await writeRole('short', { token_policies: 'x', secret_id_ttl: '1m' })
    const rid = await roleId('short')
    const sid = await newSecretId('short', { ttl: '30s' })
    expect(sid.secret_id_ttl).toBe(30)
    const tooLong = await server.call('POST', 'auth/approle/role/short/secret-id', {
      body: { ttl: '2m' },
    })
    expect(tooLong.status).toBe(400)
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 31_000)
    const res = await login(rid, sid.secret_id)
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['invalid role or secret ID'])
  })

  it('refuses a CIDR-bound secret id from another address', async () => {
    await writeRole('cidr', { token_policies: 'x' })
    const rid = await roleId('cidr')
    const sid = await newSecretId('cidr', { cidr_list: '127.0.0.1/32' })
    const running = await server.listen()
    const other = await socketLogin(running.address, '127.0.0.2', {
      role_id: rid,
      secret_id: sid.secret_id,
    })
    expect(other.status).toBe(400)
    expect(other.body.errors).toEqual(['invalid role or secret ID'])
    const same = await socketLogin(running.address, '127.0.0.1', {
      role_id: rid,
      secret_id: sid.secret_id,
    })
    expect(same.status).toBe(200)
  })

  it('refuses a login from outside the role’s secret_id_bound_cidrs', async () => {
    await writeRole('rolecidr', { token_policies: 'x', secret_id_bound_cidrs: ['127.0.0.1/32'] })
    const rid = await roleId('rolecidr')
    const sid = await newSecretId('rolecidr')
    const wider = await server.call('POST', 'auth/approle/role/rolecidr/secret-id', {
      body: { cidr_list: '10.0.0.0/8' },
    })
    expect(wider.status).toBe(400)
    const running = await server.listen()
    expect(
      (await socketLogin(running.address, '127.0.0.2', { role_id: rid, secret_id: sid.secret_id }))
        .status,
    ).toBe(400)
    expect(
      (await socketLogin(running.address, '127.0.0.1', { role_id: rid, secret_id: sid.secret_id }))
        .status,
    ).toBe(200)
  })

  it('binds the issued token to the secret id’s token_bound_cidrs', async () => {
    await writeRole('tokcidr', { token_policies: 'x' })
    const sid = await newSecretId('tokcidr', { token_bound_cidrs: ['127.0.0.1/32'] })
    const running = await server.listen()
    const res = await socketLogin(running.address, '127.0.0.1', {
      role_id: await roleId('tokcidr'),
      secret_id: sid.secret_id,
    })
    expect(res.status).toBe(200)
    const self = await server.call('GET', 'auth/token/lookup-self', {
      token: res.body.auth.client_token,
    })
    expect(self.body.data.bound_cidrs).toEqual(['127.0.0.1/32'])
  })

  it('accepts an empty secret id when bind_secret_id is false', async () => {
    expect(
      (
        await writeRole('nosecret', {
          bind_secret_id: false,
          secret_id_bound_cidrs: '127.0.0.0/8',
          token_policies: 'x',
        })
      ).status,
    ).toBe(204)
    const res = await login(await roleId('nosecret'), '')
    expect(res.status).toBe(200)
    expect(res.body.auth.metadata).toEqual({ role_name: 'nosecret' })
  })
})

describe('AppRole secret ids', () => {
  it('lists, looks up and destroys secret ids by accessor', async () => {
    await writeRole('acc', { token_policies: 'x' })
    const rid = await roleId('acc')
    const sid = await newSecretId('acc', { metadata: '{"host":"web-1"}' })
    const list = await server.call('LIST', 'auth/approle/role/acc/secret-id')
    expect(list.body.data.keys).toEqual([sid.secret_id_accessor])
    const lookup = await server.call('POST', 'auth/approle/role/acc/secret-id-accessor/lookup', {
      body: { secret_id_accessor: sid.secret_id_accessor },
    })
    expect(lookup.status).toBe(200)
    expect(lookup.body.data).toMatchObject({
      secret_id_accessor: sid.secret_id_accessor,
      metadata: { host: 'web-1' },
    })
    expect(JSON.stringify(lookup.body)).not.toContain(sid.secret_id)
    const destroy = await server.call('POST', 'auth/approle/role/acc/secret-id-accessor/destroy', {
      body: { secret_id_accessor: sid.secret_id_accessor },
    })
    expect(destroy.status).toBe(204)
    expect((await login(rid, sid.secret_id)).status).toBe(400)
    const gone = await server.call('POST', 'auth/approle/role/acc/secret-id-accessor/lookup', {
      body: { secret_id_accessor: sid.secret_id_accessor },
    })
    expect(gone.status).toBe(404)
  })

  it('looks up and destroys a secret id by its value', async () => {
    const rid = await roleId('acc')
    const sid = await newSecretId('acc', { num_uses: 0 })
    const lookup = await server.call('POST', 'auth/approle/role/acc/secret-id/lookup', {
      body: { secret_id: sid.secret_id },
    })
    expect(lookup.body.data.secret_id_accessor).toBe(sid.secret_id_accessor)
    await server.call('POST', 'auth/approle/role/acc/secret-id/destroy', {
      body: { secret_id: sid.secret_id },
    })
    expect((await login(rid, sid.secret_id)).status).toBe(400)
  })

  it('registers a custom secret id once', async () => {
    const rid = await roleId('acc')
    const custom = await server.call('POST', 'auth/approle/role/acc/custom-secret-id', {
      body: { secret_id: 'my-custom-secret-1' },
    })
    expect(custom.status).toBe(200)
    expect(custom.body.data.secret_id).toBe('my-custom-secret-1')
    const twice = await server.call('POST', 'auth/approle/role/acc/custom-secret-id', {
      body: { secret_id: 'my-custom-secret-1' },
    })
    expect(twice.status).toBe(400)
    expect((await login(rid, 'my-custom-secret-1')).status).toBe(200)
  })

  it('tidies expired secret ids', async () => {
    await writeRole('tidy', { token_policies: 'x' })
    await newSecretId('tidy', { ttl: '10s' })
    await newSecretId('tidy')
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 11_000)
    const res = await server.call('POST', 'auth/approle/tidy/secret-id')
    expect(res.status).toBe(202)
    const left = await server.storage.db
      .selectFrom('approle_secret_ids')
      .select('id')
      .where('role_name', '=', 'tidy')
      .execute()
    expect(left).toHaveLength(1)
  })

  it('never stores a secret id, role id or token in clear', async () => {
    await writeRole('clear', { token_policies: 'x', role_id: 'role-id-visible-check' })
    const sid = await newSecretId('clear')
    const res = await login('role-id-visible-check', sid.secret_id)
    expect(res.status).toBe(200)
    const file = server.storage.file!
    const bytes = [file, `${file}-wal`]
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f).toString('latin1'))
      .join('')
    expect(bytes).toContain(sid.secret_id_accessor)
    expect(bytes).not.toContain(sid.secret_id)
    expect(bytes).not.toContain('role-id-visible-check')
    expect(bytes).not.toContain(res.body.auth.client_token)
  })
})

describe('real clients against the AppRole login', () => {
  it('works with node-vault’s approle commands over a socket', async () => {
    await writeRole('nv', { token_policies: 'x' })
    const running = await server.listen()
    const { default: nodeVault } = await import('node-vault')
    const admin = nodeVault({ endpoint: running.address, token: server.rootToken })
    const { data: rid } = await admin.getApproleRoleId({ role_name: 'nv' })
    const { data: sid } = await admin.getApproleRoleSecret({
      role_name: 'nv',
      metadata: '{"a":"b"}',
    })
    const accessors = await admin.approleSecretAccessors({ role_name: 'nv' })
    expect(accessors.data.keys).toEqual([sid.secret_id_accessor])
    const client = nodeVault({ endpoint: running.address })
    const res = await client.approleLogin({ role_id: rid.role_id, secret_id: sid.secret_id })
    expect(res.auth.metadata).toEqual({ role_name: 'nv', a: 'b' })
    expect((await client.tokenLookupSelf()).data.path).toBe('auth/approle/login')
  })
})

describe('bad AppRole input', () => {
  it.each([
    ['role/bad', { secret_id_num_uses: -1 }],
    ['role/bad', { secret_id_ttl: 'soon' }],
    ['role/bad', { secret_id_bound_cidrs: 'not-a-cidr' }],
    ['role/bad', { token_ttl: '2h', token_max_ttl: '1h' }],
    ['role/bad', { token_policies: { a: 1 } }],
    ['role/bad', { bind_secret_id: 'maybe' }],
    ['role/bad', { role_id: ' padded ' }],
    ['role/acc/secret-id', { metadata: '{not json' }],
    ['role/acc/secret-id', { metadata: '{"a":1}' }],
    ['role/acc/secret-id', { cidr_list: '300.1.1.1/8' }],
    ['role/acc/secret-id', { num_uses: 'x' }],
    ['role/acc/custom-secret-id', { secret_id: 42 }],
    ['role/missing/secret-id', {}],
    ['login', { role_id: 42, secret_id: 'x' }],
    ['login', { role_id: 'x', secret_id: ['a'] }],
  ])('answers 400, not 500, to POST %s %j', async (path, body) => {
    await writeRole('acc', { token_policies: 'x' })
    const res = await server.call('POST', `auth/approle/${path}`, {
      body,
      token: path === 'login' ? null : undefined,
    })
    expect(res.status).toBe(400)
    expect(res.body.errors).toHaveLength(1)
    expect((await server.call('GET', 'auth/approle/role/bad')).status).toBe(404)
  })
})
