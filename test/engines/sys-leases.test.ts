import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { LeaseManagerControl } from '../../src/core/leases/manager.js'
import { startTestServer, type TestServer } from '../support/server.js'
import { LEAKY_SECRET, newRecorder, testEngine, type Recorder } from '../core/leases-fixture.js'

describe('sys/leases endpoints', () => {
  let server: TestServer
  let recorder: Recorder

  beforeAll(async () => {
    recorder = newRecorder()
    server = await startTestServer({
      devMounts: false,
      compose: { engines: { 'test-leases': testEngine(recorder) } },
    })
    await server.services.mounts.enable({ path: 'leasetest/', kind: 'secret', type: 'test-leases' })
    await (server.leases as LeaseManagerControl).worker().stop()
  })
  afterAll(async () => {
    await server?.close()
  })
  beforeEach(async () => {
    Object.assign(recorder, newRecorder())
    await server.storage.db.deleteFrom('leases').execute()
  })

  async function issue(target: string, query = '', token?: string): Promise<string> {
    const res = await server.call('GET', `leasetest/creds/${target}${query}`, { token })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    return res.body.lease_id as string
  }
  async function tokenWith(policies: string[]): Promise<string> {
    const res = await server.call('POST', 'auth/token/create', { body: { policies } })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    return res.body.auth.client_token as string
  }
  const exists = async (id: string) =>
    (await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })).status === 200

  it('looks up a lease with Vault field names', async () => {
    const id = await issue('alpha', '?ttl=120')
    const res = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })
    expect(res.status).toBe(200)
    expect(res.body.data).toMatchObject({ id, renewable: true, last_renewal: null })
    expect(res.body.data.ttl).toBeGreaterThan(110)
    expect(Date.parse(res.body.data.expire_time) - Date.parse(res.body.data.issue_time)).toBe(
      120_000,
    )
  })

  it('answers 400 invalid lease for an unknown lease id', async () => {
    const res = await server.call('PUT', 'sys/leases/lookup', {
      body: { lease_id: 'leasetest/creds/x/nope' },
    })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['invalid lease'])
  })

  it('lists lease ids under a prefix for sudo holders only', async () => {
    const id = await issue('alpha')
    const res = await server.call('LIST', 'sys/leases/lookup/leasetest/creds/')
    expect(res.status).toBe(200)
    expect(res.body.data.keys).toEqual(['alpha/'])
    const leaf = await server.call('GET', 'sys/leases/lookup/leasetest/creds/alpha?list=true')
    expect(leaf.body.data.keys).toEqual([id.split('/').pop()])
    const empty = await server.call('LIST', 'sys/leases/lookup/nothing/')
    expect(empty.status).toBe(404)
    const plain = await tokenWith(['default'])
    const denied = await server.call('LIST', 'sys/leases/lookup/leasetest/creds/', { token: plain })
    expect(denied.status).toBe(403)
  })

  it('renews a lease and returns the lease envelope with the capping warning', async () => {
    const id = await issue('alpha', '?ttl=10&max_ttl=30')
    const res = await server.call('PUT', 'sys/leases/renew', {
      body: { lease_id: id, increment: '1h' },
    })
    expect(res.status).toBe(200)
    expect(res.body.lease_id).toBe(id)
    expect(res.body.renewable).toBe(true)
    expect(res.body.lease_duration).toBeLessThanOrEqual(30)
    expect(res.body.lease_duration).toBeGreaterThanOrEqual(29)
    expect(res.body.warnings[0]).toContain('TTL value is capped accordingly')
  })

  it('renews through the URL form and the legacy sys/renew alias', async () => {
    const id = await issue('alpha', '?ttl=10&max_ttl=300')
    const byUrl = await server.call('PUT', `sys/leases/renew/${id}`, { body: { increment: 60 } })
    expect(byUrl.status).toBe(200)
    expect(byUrl.body.lease_duration).toBe(60)
    const legacy = await server.call('PUT', 'sys/renew', { body: { lease_id: id, increment: 90 } })
    expect(legacy.status).toBe(200)
    expect(legacy.body.lease_duration).toBe(90)
    expect(recorder.renews).toHaveLength(2)
  })

  it('refuses to renew a lease that is not renewable, and rejects a nonsense increment', async () => {
    const id = await issue('alpha', '?renewable=false')
    const res = await server.call('PUT', 'sys/leases/renew', { body: { lease_id: id } })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['lease is not renewable'])
    const bad = await server.call('PUT', 'sys/leases/renew', {
      body: { lease_id: id, increment: 'soon' },
    })
    expect(bad.status).toBe(400)
    const missing = await server.call('PUT', 'sys/leases/renew', { body: {} })
    expect(missing.status).toBe(400)
  })

  it('revokes a lease by body, by URL, and through the legacy aliases', async () => {
    const ids = [
      await issue('alpha'),
      await issue('alpha'),
      await issue('alpha'),
      await issue('alpha'),
    ]
    expect(
      (await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: ids[0] } })).status,
    ).toBe(204)
    expect((await server.call('PUT', `sys/leases/revoke/${ids[1]}`)).status).toBe(204)
    expect((await server.call('PUT', 'sys/revoke', { body: { lease_id: ids[2] } })).status).toBe(
      204,
    )
    expect((await server.call('PUT', `sys/revoke/${ids[3]}`)).status).toBe(204)
    for (const id of ids) expect(await exists(id)).toBe(false)
    expect(recorder.revokes).toHaveLength(4)
  })

  it('revokes in the background when sync is false', async () => {
    const id = await issue('alpha')
    const res = await server.call('PUT', 'sys/leases/revoke', {
      body: { lease_id: id, sync: false },
    })
    expect(res.status).toBe(202)
    await new Promise((r) => setTimeout(r, 100))
    expect(await exists(id)).toBe(false)
  })

  it('reports a failed revocation without leaking the backend secret and keeps the lease', async () => {
    recorder.failTargets.add('dead')
    const id = await issue('dead')
    const res = await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: id } })
    expect(res.status).toBe(400)
    expect(res.body.errors[0]).toContain('failed to revoke lease')
    expect(JSON.stringify(res.body)).not.toContain(LEAKY_SECRET)
    const lookup = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })
    expect(lookup.body.data.revoke_error).toContain('refused')
  })

  it('revokes by prefix, as node-vault does through sys/revoke-prefix', async () => {
    const a = await issue('alpha')
    const b = await issue('beta')
    const res = await server.call('PUT', 'sys/revoke-prefix/leasetest/creds/alpha')
    expect(res.status).toBe(204)
    expect(await exists(a)).toBe(false)
    expect(await exists(b)).toBe(true)
    const modern = await server.call('PUT', 'sys/leases/revoke-prefix/leasetest/')
    expect(modern.status).toBe(204)
    expect(await exists(b)).toBe(false)
  })

  it('needs sudo for prefix and force revocation', async () => {
    const id = await issue('alpha')
    const token = await tokenWith(['default'])
    for (const path of [
      'sys/leases/revoke-prefix/leasetest/',
      'sys/revoke-prefix/leasetest/',
      'sys/leases/revoke-force/leasetest/',
      'sys/revoke-force/leasetest/',
    ]) {
      expect((await server.call('PUT', path, { token })).status).toBe(403)
    }
    expect(await exists(id)).toBe(true)
  })

  it('lets the default policy renew and look up but not revoke', async () => {
    const token = await tokenWith(['default'])
    const id = await issue('alpha')
    expect(
      (await server.call('PUT', 'sys/leases/lookup', { token, body: { lease_id: id } })).status,
    ).toBe(200)
    expect(
      (await server.call('PUT', 'sys/leases/renew', { token, body: { lease_id: id } })).status,
    ).toBe(200)
    expect(
      (await server.call('PUT', 'sys/leases/revoke', { token, body: { lease_id: id } })).status,
    ).toBe(403)
    expect(await exists(id)).toBe(true)
  })

  it('force-revokes irrevocable leases, warns about it, and counts and lists them first', async () => {
    recorder.failTargets.add('dead')
    const leases = server.leases as LeaseManagerControl
    const id = await issue('dead')
    await issue('alpha')
    await server.storage.db
      .updateTable('leases')
      .set({ state: 'irrevocable', last_error: 'role "x" does not exist' })
      .where('id', '=', id)
      .execute()
    const count = await server.call('GET', 'sys/leases/count?type=irrevocable')
    expect(count.body.data).toEqual({ lease_count: 1, counts: { 'leasetest/': 1 } })
    const total = await server.call('GET', 'sys/leases/count')
    expect(total.body.data.lease_count).toBe(2)
    const listed = await server.call('GET', 'sys/leases?type=irrevocable&limit=10')
    expect(listed.status).toBe(200)
    expect(listed.body.data.leases).toEqual([
      expect.objectContaining({ lease_id: id, error: 'role "x" does not exist' }),
    ])
    // Its lookup says so, and does not offer a renewal that would be refused.
    const lookup = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: id } })
    expect(lookup.body.data).toMatchObject({ state: 'irrevocable', renewable: false })
    expect(lookup.body.data.revoke_error).toBe('role "x" does not exist')
    const renewed = await server.call('PUT', 'sys/leases/renew', { body: { lease_id: id } })
    expect(renewed.status).toBe(400)
    expect((await server.call('GET', 'sys/leases?type=bogus')).status).toBe(400)

    const forced = await server.call('PUT', 'sys/leases/revoke-force/leasetest/creds/dead')
    expect(forced.status).toBe(200)
    expect(forced.body.warnings[0]).toContain('backend revocation failed')
    expect(JSON.stringify(forced.body)).not.toContain(LEAKY_SECRET)
    expect(await exists(id)).toBe(false)
    expect(await leases.count({ state: 'irrevocable' })).toBe(0)
  })

  it('tidies leases of tokens that no longer exist and answers 202', async () => {
    const id = await issue('alpha')
    await server.storage.db.updateTable('leases').set({ token_id: 'gone' }).execute()
    const res = await server.call('PUT', 'sys/leases/tidy')
    expect(res.status).toBe(202)
    expect(res.body.warnings).toHaveLength(1)
    await new Promise((r) => setTimeout(r, 100))
    expect(await exists(id)).toBe(false)
  })

  it('revokes a token’s leases when the token is revoked over the API', async () => {
    const token = await tokenWith(['root'])
    const id = await issue('alpha', '', token)
    const res = await server.call('POST', 'auth/token/revoke', { body: { token } })
    expect(res.status).toBe(204)
    expect(await exists(id)).toBe(false)
  })
})
