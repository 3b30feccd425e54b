import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  // A policy that lets a non-root token create children and manage tokens.
  const policy = `
    path "auth/token/*" { capabilities = ["create", "read", "update", "list"] }
    path "secret/*" { capabilities = ["read"] }`
  expect((await server.call('PUT', 'sys/policy/tokenmaker', { body: { policy } })).status).toBe(204)
  expect(
    (
      await server.call('PUT', 'sys/policy/reader', {
        body: { policy: 'path "secret/data/*" { capabilities = ["read"] }' },
      })
    ).status,
  ).toBe(204)
})
afterAll(async () => {
  await server?.close()
})

type Body = Record<string, unknown>

async function create(body: Body = {}, token?: string, path = 'auth/token/create') {
  const res = await server.call('POST', path, { body, token })
  return res
}

async function createToken(body: Body = {}, token?: string): Promise<string> {
  const res = await create(body, token)
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  return res.body.auth.client_token as string
}

const lookupSelf = (token: string) => server.call('GET', 'auth/token/lookup-self', { token })
const alive = async (token: string) => (await lookupSelf(token)).status === 200

describe('token creation', () => {
  it('returns an auth block and no data', async () => {
    const res = await create({ policies: ['reader'], meta: { team: 'a' }, display_name: 'ci' })
    expect(res.status).toBe(200)
    expect(res.body.data).toBeNull()
    const auth = res.body.auth
    expect(auth.client_token).toMatch(/^sts\./)
    expect(typeof auth.accessor).toBe('string')
    expect(auth.policies).toEqual(['default', 'reader'])
    expect(auth.token_policies).toEqual(['default', 'reader'])
    expect(auth.metadata).toEqual({ team: 'a' })
    expect(auth.renewable).toBe(true)
    expect(auth.orphan).toBe(false)
    expect(auth.token_type).toBe('service')
    expect(auth.lease_duration).toBe(768 * 3600)

    const look = await lookupSelf(auth.client_token)
    expect(look.body.data).toMatchObject({
      id: auth.client_token,
      accessor: auth.accessor,
      display_name: 'token-ci',
      meta: { team: 'a' },
      policies: ['default', 'reader'],
      path: 'auth/token/create',
      orphan: false,
      renewable: true,
      num_uses: 0,
      type: 'service',
    })
  })

  it('gives alphanumeric accessors, as Vault: never one a CLI would read as a flag', async () => {
    const accessors = await Promise.all(
      Array.from({ length: 40 }, async () => (await create({})).body.auth.accessor as string),
    )
    for (const accessor of accessors) expect(accessor).toMatch(/^[A-Za-z0-9]{24}$/)
    expect(new Set(accessors).size).toBe(accessors.length)
  })

  it('attaches the default policy unless no_default_policy is set', async () => {
    const without = await create({ policies: ['reader'], no_default_policy: true })
    expect(without.body.auth.policies).toEqual(['reader'])
    const inherited = await create({})
    expect(inherited.body.auth.policies).toEqual(['root'])
  })

  it('gives a child its parent policies when none are asked for', async () => {
    const parent = await createToken({ policies: ['tokenmaker', 'reader'] })
    const child = await create({}, parent)
    expect(child.status).toBe(200)
    expect(child.body.auth.policies).toEqual(['default', 'reader', 'tokenmaker'])
  })

  it('refuses policies the parent lacks unless the parent is root', async () => {
    const parent = await createToken({ policies: ['tokenmaker'] })
    const refused = await create({ policies: ['reader'] }, parent)
    expect(refused.status).toBe(400)
    expect(refused.body.errors[0]).toMatch(/child policies must be subset of parent/)
    const rootOnly = await create({ policies: ['root'] }, parent)
    expect(rootOnly.status).toBe(400)
    // A subset (and default) is fine.
    expect((await create({ policies: ['tokenmaker', 'default'] }, parent)).status).toBe(200)
    // Root can hand out any policy, even one that does not exist yet (with a warning).
    const fromRoot = await create({ policies: ['reader', 'not-written-yet'] })
    expect(fromRoot.status).toBe(200)
    expect(fromRoot.body.warnings.join(' ')).toMatch(/not-written-yet/)
  })

  it('creates orphans through create-orphan and, with sudo, no_parent', async () => {
    const parent = await createToken({ policies: ['tokenmaker'] })
    const orphan = await create({ policies: ['tokenmaker'] }, parent, 'auth/token/create-orphan')
    expect(orphan.status).toBe(200)
    expect(orphan.body.auth.orphan).toBe(true)
    // no_parent needs sudo.
    expect((await create({ no_parent: true }, parent)).status).toBe(400)
    const rootOrphan = await create({ no_parent: true, policies: ['reader'] })
    expect(rootOrphan.body.auth.orphan).toBe(true)
    // An orphan survives its creator's revocation.
    await server.call('POST', 'auth/token/revoke', { body: { token: parent } })
    expect(await alive(parent)).toBe(false)
    expect(await alive(orphan.body.auth.client_token)).toBe(true)
  })

  it('refuses bad field values with 400', async () => {
    for (const body of [
      { ttl: 'forever' },
      { ttl: -5 },
      { num_uses: -1 },
      { num_uses: 'many' },
      { renewable: 'maybe' },
      { meta: 'not-a-map' },
      { meta: { a: { nested: true } } },
      { policies: [1, 2] },
      { type: 'weird' },
      { explicit_max_ttl: '1y' },
    ]) {
      const res = await create(body)
      expect(res.status, JSON.stringify(body)).toBe(400)
    }
  })
})

describe('TTLs', () => {
  it('uses the requested ttl and reports it in lookup', async () => {
    const res = await create({ policies: ['reader'], ttl: '1h' })
    expect(res.body.auth.lease_duration).toBe(3600)
    const look = await lookupSelf(res.body.auth.client_token)
    expect(look.body.data.creation_ttl).toBe(3600)
    expect(look.body.data.ttl).toBeGreaterThan(3590)
    expect(look.body.data.ttl).toBeLessThanOrEqual(3600)
    expect(Date.parse(look.body.data.expire_time)).toBeGreaterThan(Date.now())
  })

  it('caps the ttl at explicit_max_ttl with a warning', async () => {
    const res = await create({ policies: ['reader'], ttl: '2h', explicit_max_ttl: '1h' })
    expect(res.status).toBe(200)
    expect(res.body.auth.lease_duration).toBe(3600)
    expect(res.body.warnings.join(' ')).toMatch(
      /TTL of "2h0m0s" exceeded the effective max_ttl of "1h0m0s"; TTL value is capped accordingly/,
    )
    const look = await lookupSelf(res.body.auth.client_token)
    expect(look.body.data.explicit_max_ttl).toBe(3600)
  })

  it('caps the ttl at the token mount max_lease_ttl with a warning', async () => {
    const tune = await server.call('POST', 'sys/auth/token/tune', {
      body: { max_lease_ttl: '2h', default_lease_ttl: '30m' },
    })
    expect(tune.status).toBe(204)
    try {
      const capped = await create({ policies: ['reader'], ttl: '5h' })
      expect(capped.body.auth.lease_duration).toBe(7200)
      expect(capped.body.warnings.join(' ')).toMatch(/capped accordingly/)
      const byDefault = await create({ policies: ['reader'] })
      expect(byDefault.body.auth.lease_duration).toBe(1800)
    } finally {
      await server.call('POST', 'sys/auth/token/tune', {
        body: { max_lease_ttl: 0, default_lease_ttl: 0 },
      })
    }
  })

  it('renews up to the max TTL, then answers past the max TTL', async () => {
    const res = await create({ policies: ['reader'], ttl: '10m', explicit_max_ttl: '1h' })
    const token = res.body.auth.client_token as string
    const renewed = await server.call('POST', 'auth/token/renew-self', {
      token,
      body: { increment: '5h' },
    })
    expect(renewed.status).toBe(200)
    expect(renewed.body.auth.client_token).toBe(token)
    expect(renewed.body.auth.lease_duration).toBeLessThanOrEqual(3600)
    expect(renewed.body.auth.lease_duration).toBeGreaterThan(3590)
    expect(renewed.body.warnings.join(' ')).toMatch(/capped accordingly/)

    // Move the max expire time into the past: a renewal must now fail.
    const id = server.services.tokens.hash(token)
    await server.storage.db
      .updateTable('tokens')
      .set({ max_expire_time: Date.now() - 1000 })
      .where('id', '=', id)
      .execute()
    server.services.tokens.clearCache()
    const past = await server.call('POST', 'auth/token/renew', { body: { token } })
    expect(past.status).toBe(400)
    expect(past.body.errors[0]).toMatch(/past the max TTL/)
  })

  it('renews by token and by itself, recording the renewal time', async () => {
    const token = await createToken({ policies: ['reader'], ttl: '10m' })
    const byOther = await server.call('POST', 'auth/token/renew', {
      body: { token, increment: '20m' },
    })
    expect(byOther.status).toBe(200)
    expect(byOther.body.auth.lease_duration).toBe(1200)
    const look = await lookupSelf(token)
    expect(look.body.data.ttl).toBeGreaterThan(1190)
    expect(typeof look.body.data.last_renewal_time).toBe('number')
    const self = await server.call('PUT', 'auth/token/renew-self', { token, body: {} })
    expect(self.status).toBe(200)
    expect(self.body.auth.lease_duration).toBe(600)
  })

  it('refuses to renew a token created with renewable=false', async () => {
    const token = await createToken({ policies: ['reader'], ttl: '10m', renewable: false })
    expect((await lookupSelf(token)).body.data.renewable).toBe(false)
    const res = await server.call('POST', 'auth/token/renew-self', { token, body: {} })
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toMatch(/not renewable/)
  })

  it('renews a periodic token back to its period and never past explicit_max_ttl', async () => {
    const res = await create({ policies: ['reader'], period: '2m', ttl: '1h' })
    expect(res.status).toBe(200)
    expect(res.body.auth.lease_duration).toBe(120)
    const token = res.body.auth.client_token as string
    expect((await lookupSelf(token)).body.data.period).toBe(120)
    const renewed = await server.call('POST', 'auth/token/renew-self', {
      token,
      body: { increment: '10h' },
    })
    expect(renewed.body.auth.lease_duration).toBe(120)
    // A non-root token may not create periodic tokens.
    const maker = await createToken({ policies: ['tokenmaker'] })
    expect((await create({ period: '1m' }, maker)).status).toBe(400)
  })

  it('refuses an expired token with 403', async () => {
    const token = await createToken({ policies: ['reader'], ttl: '1h' })
    expect(await alive(token)).toBe(true)
    await server.storage.db
      .updateTable('tokens')
      .set({ expire_time: Date.now() - 10 })
      .where('id', '=', server.services.tokens.hash(token))
      .execute()
    // Lookups are cached for a second; a changed row is seen once the entry is gone.
    server.services.tokens.clearCache()
    const res = await lookupSelf(token)
    expect(res.status).toBe(403)
    expect(res.body.errors).toEqual(['permission denied'])
  })

  it('expires a 1 second token on its own', async () => {
    const token = await createToken({ policies: ['reader'], ttl: '1s' })
    expect(await alive(token)).toBe(true)
    await new Promise((r) => setTimeout(r, 1200))
    expect((await lookupSelf(token)).status).toBe(403)
  })
})

describe('custom token ids', () => {
  it('accepts a short id chosen by a root token, as dev mode does with -dev-root-token-id=root', async () => {
    const res = await server.call('POST', 'auth/token/create', {
      body: { id: 'abc', policies: ['default'] },
    })
    expect(res.status).toBe(200)
    expect(res.body.auth.client_token).toBe('abc')
    const self = await server.call('GET', 'auth/token/lookup-self', { token: 'abc' })
    expect(self.status).toBe(200)
    expect(self.body.data.id).toBe('abc')
    const bad = await server.call('POST', 'auth/token/create', { body: { id: 'has space' } })
    expect(bad.status).toBe(400)
  })
})

describe('num_uses', () => {
  it('lets a num_uses=2 token make two requests, then refuses it', async () => {
    const res = await create({ policies: ['reader'], num_uses: 2 })
    expect(res.body.auth.num_uses).toBe(2)
    const token = res.body.auth.client_token as string
    const first = await lookupSelf(token)
    expect(first.status).toBe(200)
    expect(first.body.data.num_uses).toBe(1)
    expect((await lookupSelf(token)).status).toBe(200)
    const third = await lookupSelf(token)
    expect(third.status).toBe(403)
    expect(third.body.errors[0]).toMatch(/permission denied/)
  })

  it('does not let a limited-use token create children', async () => {
    const token = await createToken({ policies: ['tokenmaker'], num_uses: 5 })
    const res = await create({}, token)
    expect(res.status).toBe(400)
  })
})

describe('lookup', () => {
  it('looks up another token by value (POST and GET) and by accessor (without its id)', async () => {
    const res = await create({ policies: ['reader'] })
    const { client_token: token, accessor } = res.body.auth
    const post = await server.call('POST', 'auth/token/lookup', { body: { token } })
    expect(post.status).toBe(200)
    expect(post.body.data.id).toBe(token)
    const get = await server.call('GET', `auth/token/lookup?token=${encodeURIComponent(token)}`)
    expect(get.status).toBe(200)
    expect(get.body.data.accessor).toBe(accessor)
    const byAccessor = await server.call('POST', 'auth/token/lookup-accessor', {
      body: { accessor },
    })
    expect(byAccessor.status).toBe(200)
    expect(byAccessor.body.data.id).toBe('')
    expect(byAccessor.body.data.policies).toEqual(['default', 'reader'])
  })

  it('answers 403 for an unknown token and 400 for an unknown accessor', async () => {
    const unknown = await server.call('POST', 'auth/token/lookup', {
      body: { token: 'sts.this-token-does-not-exist' },
    })
    expect(unknown.status).toBe(403)
    expect(unknown.body).toEqual({ errors: ['bad token'] })
    const badAccessor = await server.call('POST', 'auth/token/lookup-accessor', {
      body: { accessor: 'nope' },
    })
    expect(badAccessor.status).toBe(400)
    expect((await server.call('POST', 'auth/token/lookup', { body: {} })).status).toBe(400)
  })
})

describe('revocation', () => {
  async function family() {
    const parent = await createToken({ policies: ['tokenmaker'] })
    const child = await createToken({}, parent)
    const grandchild = await createToken({}, child)
    const sibling = await createToken({}, parent)
    const greatGrandchild = await createToken({}, grandchild)
    return { parent, child, grandchild, sibling, greatGrandchild }
  }

  it('revokes every descendant with the parent', async () => {
    const f = await family()
    for (const t of Object.values(f)) expect(await alive(t)).toBe(true)
    const res = await server.call('POST', 'auth/token/revoke', { body: { token: f.parent } })
    expect(res.status).toBe(204)
    for (const t of Object.values(f)) expect(await alive(t)).toBe(false)
  })

  it('revokes only the subtree below a middle token', async () => {
    const f = await family()
    await server.call('POST', 'auth/token/revoke', { body: { token: f.child } })
    expect(await alive(f.parent)).toBe(true)
    expect(await alive(f.sibling)).toBe(true)
    expect(await alive(f.child)).toBe(false)
    expect(await alive(f.grandchild)).toBe(false)
    expect(await alive(f.greatGrandchild)).toBe(false)
  })

  it('revoke-orphan keeps the children alive as orphans', async () => {
    const f = await family()
    const res = await server.call('POST', 'auth/token/revoke-orphan', { body: { token: f.child } })
    expect(res.status).toBe(204)
    expect(await alive(f.child)).toBe(false)
    expect(await alive(f.grandchild)).toBe(true)
    expect((await lookupSelf(f.grandchild)).body.data.orphan).toBe(true)
    expect(await alive(f.greatGrandchild)).toBe(true)
    // The former grandchild is now a root of its own tree: revoking the parent leaves it.
    await server.call('POST', 'auth/token/revoke', { body: { token: f.parent } })
    expect(await alive(f.grandchild)).toBe(true)
    expect(await alive(f.sibling)).toBe(false)
  })

  it('revoke-orphan needs sudo', async () => {
    const f = await family()
    const res = await server.call('POST', 'auth/token/revoke-orphan', {
      token: f.parent,
      body: { token: f.child },
    })
    expect(res.status).toBe(403)
    expect(await alive(f.child)).toBe(true)
  })

  it('revoke-self revokes the caller and its children', async () => {
    const f = await family()
    const res = await server.call('POST', 'auth/token/revoke-self', { token: f.child, body: {} })
    expect(res.status).toBe(204)
    expect(await alive(f.child)).toBe(false)
    expect(await alive(f.grandchild)).toBe(false)
    expect(await alive(f.parent)).toBe(true)
  })

  it('revoke-accessor revokes the token and its tree', async () => {
    const parent = await create({ policies: ['tokenmaker'] })
    const child = await createToken({}, parent.body.auth.client_token)
    const res = await server.call('POST', 'auth/token/revoke-accessor', {
      body: { accessor: parent.body.auth.accessor },
    })
    expect(res.status).toBe(204)
    expect(await alive(parent.body.auth.client_token)).toBe(false)
    expect(await alive(child)).toBe(false)
    const again = await server.call('POST', 'auth/token/revoke-accessor', {
      body: { accessor: parent.body.auth.accessor },
    })
    expect(again.status).toBe(400)
  })

  it('answers 204 when revoking an unknown token', async () => {
    const res = await server.call('POST', 'auth/token/revoke', {
      body: { token: 'sts.unknown-token-value' },
    })
    expect(res.status).toBe(204)
  })
})

describe('LIST auth/token/accessors', () => {
  it('lists accessors for a sudo token and refuses others', async () => {
    const res = await create({ policies: ['tokenmaker'] })
    const list = await server.call('LIST', 'auth/token/accessors')
    expect(list.status).toBe(200)
    expect(list.body.data.keys).toContain(res.body.auth.accessor)
    const viaGet = await server.call('GET', 'auth/token/accessors?list=true')
    expect(viaGet.body.data.keys).toContain(res.body.auth.accessor)
    const denied = await server.call('LIST', 'auth/token/accessors', {
      token: res.body.auth.client_token,
    })
    expect(denied.status).toBe(403)
  })
})

describe('token storage and presentation', () => {
  it('stores only the keyed hash of a token', async () => {
    const token = await createToken({ policies: ['reader'] })
    const rows = await server.storage.db.selectFrom('tokens').selectAll().execute()
    const dump = JSON.stringify(rows)
    expect(dump).not.toContain(token)
    expect(dump).not.toContain(token.slice(4))
    expect(dump).not.toContain(server.rootToken)
    const ids = rows.map((r) => r.id)
    expect(ids).toContain(server.services.tokens.hash(token))
    expect(server.services.tokens.hash(token)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('answers 403 permission denied to a missing or unknown token', async () => {
    for (const token of [null, 'sts.bogus', 'x', 'a'.repeat(600)]) {
      const res = await server.call('GET', 'auth/token/lookup-self', { token })
      expect(res.status).toBe(403)
      expect(res.body.errors).toEqual(['permission denied'])
    }
  })

  it('accepts Authorization: Bearer, and X-Vault-Token wins over it', async () => {
    const token = await createToken({ policies: ['reader'], display_name: 'bearer' })
    const bearer = await server.call('GET', 'auth/token/lookup-self', {
      token: null,
      headers: { Authorization: `Bearer ${token}` },
    })
    expect(bearer.status).toBe(200)
    expect(bearer.body.data.display_name).toBe('token-bearer')
    const both = await server.call('GET', 'auth/token/lookup-self', {
      token: server.rootToken,
      headers: { Authorization: `Bearer ${token}` },
    })
    expect(both.body.data.policies).toEqual(['root'])
    const badVaultToken = await server.call('GET', 'auth/token/lookup-self', {
      token: 'sts.bogus',
      headers: { Authorization: `Bearer ${token}` },
    })
    expect(badVaultToken.status).toBe(403)
  })
})
