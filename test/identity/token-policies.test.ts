import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startUserpassServer, type UserpassServer } from '../auth/userpass-helpers.js'

let t: UserpassServer
beforeEach(async () => {
  t = await startUserpassServer()
  await t.server.call('POST', 'auth/userpass/users/alice', {
    body: { password: 'pw-alice-1', token_policies: 'dev' },
  })
  // `reader` lets a token read the user list of auth/userpass; nothing else grants it.
  const policy = await t.server.call('POST', 'sys/policies/acl/reader', {
    body: { policy: 'path "auth/userpass/users/*" { capabilities = ["read"] }' },
  })
  expect(policy.status).toBe(204)
})
afterEach(async () => {
  await t.server.close()
})

async function loginAlice(): Promise<{ token: string; entityId: string }> {
  const res = await t.login('alice', { password: 'pw-alice-1' })
  expect(res.status).toBe(200)
  return { token: res.body.auth.client_token, entityId: res.body.auth.entity_id }
}

const canRead = async (token: string) =>
  (await t.server.call('GET', 'auth/userpass/users/alice', { token })).status

describe('tokens and their entity', () => {
  it('resolves a userpass token to its entity, which shows the alias', async () => {
    const { token, entityId } = await loginAlice()
    const self = await t.server.call('GET', 'auth/token/lookup-self', { token })
    expect(self.body.data.entity_id).toBe(entityId)
    const entity = await t.server.call('GET', `identity/entity/id/${entityId}`)
    expect(entity.status).toBe(200)
    expect(entity.body.data.name).toMatch(/^entity_[0-9a-f]{8}$/)
    const mounts = await t.server.call('GET', 'sys/auth')
    const accessor = mounts.body.data['userpass/'].accessor
    expect(entity.body.data.aliases).toHaveLength(1)
    expect(entity.body.data.aliases[0]).toMatchObject({
      name: 'alice',
      mount_accessor: accessor,
      mount_type: 'userpass',
      mount_path: 'auth/userpass/',
      canonical_id: entityId,
    })
  })

  it('maps every login of the same user to the same entity', async () => {
    const a = await loginAlice()
    const b = await loginAlice()
    expect(b.entityId).toBe(a.entityId)
    const list = await t.server.call('LIST', 'identity/entity/id')
    expect(list.body.data.keys).toEqual([a.entityId])
  })

  it('applies a group policy change to an existing token at once, both ways', async () => {
    const { token, entityId } = await loginAlice()
    expect(await canRead(token)).toBe(403)

    const group = await t.server.call('POST', 'identity/group', {
      body: { name: 'readers', member_entity_ids: [entityId] },
    })
    expect(group.status).toBe(200)
    expect(await canRead(token)).toBe(403)

    await t.server.call('POST', 'identity/group/name/readers', { body: { policies: 'reader' } })
    expect(await canRead(token)).toBe(200)
    const self = await t.server.call('GET', 'auth/token/lookup-self', { token })
    expect(self.body.data.identity_policies).toEqual(['reader'])

    await t.server.call('POST', 'identity/group/name/readers', { body: { policies: [] } })
    expect(await canRead(token)).toBe(403)
  })

  it('gives an entity the policies of parent groups of its groups', async () => {
    const { token, entityId } = await loginAlice()
    const child = await t.server.call('POST', 'identity/group', {
      body: { name: 'child', member_entity_ids: entityId },
    })
    await t.server.call('POST', 'identity/group', {
      body: { name: 'parent', policies: 'reader', member_group_ids: [child.body.data.id] },
    })
    expect(await canRead(token)).toBe(200)
    await t.server.call('DELETE', 'identity/group/name/parent')
    expect(await canRead(token)).toBe(403)
  })

  it('applies entity policies and removes them when the entity is deleted', async () => {
    const { token, entityId } = await loginAlice()
    await t.server.call('POST', `identity/entity/id/${entityId}`, { body: { policies: 'reader' } })
    expect(await canRead(token)).toBe(200)
    await t.server.call('DELETE', `identity/entity/id/${entityId}`)
    expect(await canRead(token)).toBe(403)
  })

  it('refuses every request of a disabled entity token, and its logins, until re-enabled', async () => {
    const { token, entityId } = await loginAlice()
    await t.server.call('POST', `identity/entity/id/${entityId}`, { body: { disabled: true } })
    expect((await t.server.call('GET', 'auth/token/lookup-self', { token })).status).toBe(403)
    expect((await t.login('alice', { password: 'pw-alice-1' })).status).toBe(403)
    await t.server.call('POST', `identity/entity/id/${entityId}`, { body: { disabled: false } })
    expect((await t.server.call('GET', 'auth/token/lookup-self', { token })).status).toBe(200)
  })

  it('drops the aliases of an auth mount when the mount is disabled', async () => {
    const { entityId } = await loginAlice()
    expect((await t.server.call('DELETE', 'sys/auth/userpass')).status).toBe(204)
    const entity = await t.server.call('GET', `identity/entity/id/${entityId}`)
    expect(entity.body.data.aliases).toEqual([])
  })
})
