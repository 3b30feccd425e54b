import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let s: TestServer
let accessor: string
beforeEach(async () => {
  s = await startTestServer({ devMounts: false })
  await s.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
  accessor = (await s.call('GET', 'sys/auth')).body.data['userpass/'].accessor
})
afterEach(async () => {
  await s.close()
})

describe('identity/entity', () => {
  it('creates an entity and reads it back by id and by name', async () => {
    const created = await s.call('POST', 'identity/entity', {
      body: { name: 'svc-billing', metadata: { team: 'billing' }, policies: ['Ops', 'dev'] },
    })
    expect(created.status).toBe(200)
    expect(created.body.data).toEqual({ id: expect.any(String), name: 'svc-billing', aliases: [] })
    const byId = await s.call('GET', `identity/entity/id/${created.body.data.id}`)
    expect(byId.body.data).toMatchObject({
      name: 'svc-billing',
      metadata: { team: 'billing' },
      policies: ['dev', 'ops'],
      disabled: false,
      aliases: [],
      group_ids: [],
      namespace_id: 'root',
    })
    expect(byId.body.data.creation_time).toMatch(/^\d{4}-\d\d-\d\dT/)
    const byName = await s.call('GET', 'identity/entity/name/svc-billing')
    expect(byName.body.data.id).toBe(created.body.data.id)
  })

  it('updates an existing entity when identity/entity is posted with its name', async () => {
    const first = await s.call('POST', 'identity/entity', { body: { name: 'bob', policies: 'a' } })
    const second = await s.call('POST', 'identity/entity', { body: { name: 'bob', policies: 'b' } })
    expect(second.body.data.id).toBe(first.body.data.id)
    expect((await s.call('GET', 'identity/entity/name/bob')).body.data.policies).toEqual(['b'])
  })

  it('creates an entity through entity/name/<name> and lists entities by id and by name', async () => {
    expect(
      (await s.call('POST', 'identity/entity/name/zed', { body: { policies: 'x' } })).status,
    ).toBe(200)
    await s.call('POST', 'identity/entity', { body: { name: 'amy' } })
    const names = await s.call('LIST', 'identity/entity/name')
    expect(names.body.data.keys).toEqual(['amy', 'zed'])
    const ids = await s.call('LIST', 'identity/entity/id')
    expect(ids.body.data.keys).toHaveLength(2)
    expect(
      Object.values(ids.body.data.key_info)
        .map((i) => (i as { name: string }).name)
        .sort(),
    ).toEqual(['amy', 'zed'])
  })

  it('refuses the root policy, a taken name and bad field types without changing anything', async () => {
    const a = await s.call('POST', 'identity/entity', { body: { name: 'a' } })
    await s.call('POST', 'identity/entity', { body: { name: 'b' } })
    const root = await s.call('POST', 'identity/entity', { body: { name: 'c', policies: 'root' } })
    expect(root.status).toBe(400)
    const rename = await s.call('POST', `identity/entity/id/${a.body.data.id}`, {
      body: { name: 'b' },
    })
    expect(rename.status).toBe(400)
    const badMeta = await s.call('POST', 'identity/entity', { body: { name: 'd', metadata: [1] } })
    expect(badMeta.status).toBe(400)
    expect((await s.call('LIST', 'identity/entity/name')).body.data.keys).toEqual(['a', 'b'])
  })

  it('returns 404 for a missing entity and for an empty listing', async () => {
    expect((await s.call('GET', 'identity/entity/id/nope')).status).toBe(404)
    expect((await s.call('LIST', 'identity/entity/id')).status).toBe(404)
  })

  it('deletes an entity with its aliases and group memberships', async () => {
    const e = (await s.call('POST', 'identity/entity', { body: { name: 'gone' } })).body.data.id
    const alias = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'gone-user', canonical_id: e, mount_accessor: accessor },
    })
    await s.call('POST', 'identity/group', { body: { name: 'g', member_entity_ids: [e] } })
    expect((await s.call('DELETE', `identity/entity/id/${e}`)).status).toBe(204)
    expect((await s.call('GET', `identity/entity-alias/id/${alias.body.data.id}`)).status).toBe(404)
    expect((await s.call('GET', 'identity/group/name/g')).body.data.member_entity_ids).toEqual([])
  })

  it('looks an entity up by name, id or alias', async () => {
    const e = (await s.call('POST', 'identity/entity', { body: { name: 'lu' } })).body.data.id
    await s.call('POST', 'identity/entity-alias', {
      body: { name: 'lu-user', canonical_id: e, mount_accessor: accessor },
    })
    const byAlias = await s.call('POST', 'identity/lookup/entity', {
      body: { alias_name: 'lu-user', alias_mount_accessor: accessor },
    })
    expect(byAlias.body.data.id).toBe(e)
    expect(
      (await s.call('POST', 'identity/lookup/entity', { body: { name: 'lu' } })).body.data.id,
    ).toBe(e)
    expect(
      (await s.call('POST', 'identity/lookup/entity', { body: { name: 'nobody' } })).status,
    ).toBe(204)
    expect((await s.call('POST', 'identity/lookup/entity', { body: {} })).status).toBe(400)
  })
})

describe('identity/entity-alias', () => {
  it('creates an alias (and an entity when no canonical_id is given) and reads it', async () => {
    const created = await s.call('POST', 'identity/entity-alias', {
      body: {
        name: 'carol',
        mount_accessor: accessor,
        custom_metadata: { email: 'c@example.com' },
      },
    })
    expect(created.status).toBe(200)
    const read = await s.call('GET', `identity/entity-alias/id/${created.body.data.id}`)
    expect(read.body.data).toMatchObject({
      name: 'carol',
      canonical_id: created.body.data.canonical_id,
      mount_accessor: accessor,
      mount_type: 'userpass',
      mount_path: 'auth/userpass/',
      custom_metadata: { email: 'c@example.com' },
    })
    const entity = await s.call('GET', `identity/entity/id/${created.body.data.canonical_id}`)
    expect(entity.body.data.aliases.map((a: { name: string }) => a.name)).toEqual(['carol'])
    const list = await s.call('LIST', 'identity/entity-alias/id')
    expect(list.body.data.keys).toEqual([created.body.data.id])
  })

  it('keeps aliases unique per mount and one per entity per mount', async () => {
    const e = (await s.call('POST', 'identity/entity', { body: { name: 'e' } })).body.data.id
    const ok = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'x', canonical_id: e, mount_accessor: accessor },
    })
    expect(ok.status).toBe(200)
    const dup = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'x', mount_accessor: accessor },
    })
    expect(dup.status).toBe(400)
    const second = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'y', canonical_id: e, mount_accessor: accessor },
    })
    expect(second.status).toBe(400)
    expect(second.body.errors).toEqual(['entity already has an alias on this mount'])
  })

  it('refuses an unknown or non-auth mount accessor and an unknown entity', async () => {
    const unknown = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'x', mount_accessor: 'nope' },
    })
    expect(unknown.status).toBe(400)
    expect(unknown.body.errors).toEqual(['invalid mount accessor'])
    const identityMount = (await s.call('GET', 'sys/mounts')).body.data['identity/'].accessor
    expect(
      (
        await s.call('POST', 'identity/entity-alias', {
          body: { name: 'x', mount_accessor: identityMount },
        })
      ).status,
    ).toBe(400)
    const noEntity = await s.call('POST', 'identity/entity-alias', {
      body: { name: 'x', mount_accessor: accessor, canonical_id: 'missing' },
    })
    expect(noEntity.status).toBe(400)
  })

  it('moves an alias to another entity and deletes it', async () => {
    const a = (await s.call('POST', 'identity/entity', { body: { name: 'a' } })).body.data.id
    const b = (await s.call('POST', 'identity/entity', { body: { name: 'b' } })).body.data.id
    const alias = (
      await s.call('POST', 'identity/entity-alias', {
        body: { name: 'x', canonical_id: a, mount_accessor: accessor },
      })
    ).body.data.id
    const moved = await s.call('POST', `identity/entity-alias/id/${alias}`, {
      body: { canonical_id: b },
    })
    expect(moved.body.data.canonical_id).toBe(b)
    expect((await s.call('GET', `identity/entity/id/${a}`)).body.data.aliases).toEqual([])
    expect((await s.call('DELETE', `identity/entity-alias/id/${alias}`)).status).toBe(204)
    expect((await s.call('GET', `identity/entity/id/${b}`)).body.data.aliases).toEqual([])
  })
})

describe('identity/group', () => {
  it('creates, reads, lists, updates and deletes a group', async () => {
    const e = (await s.call('POST', 'identity/entity', { body: { name: 'm' } })).body.data.id
    const g = await s.call('POST', 'identity/group', {
      body: {
        name: 'devs',
        policies: 'dev',
        member_entity_ids: [e],
        metadata: { k: 'v' },
        type: 'internal',
      },
    })
    expect(g.status).toBe(200)
    expect(g.body.data).toEqual({ id: expect.any(String), name: 'devs' })
    const read = await s.call('GET', `identity/group/id/${g.body.data.id}`)
    expect(read.body.data).toMatchObject({
      name: 'devs',
      type: 'internal',
      policies: ['dev'],
      member_entity_ids: [e],
      member_group_ids: [],
      parent_group_ids: [],
      metadata: { k: 'v' },
    })
    expect((await s.call('LIST', 'identity/group/name')).body.data.keys).toEqual(['devs'])
    expect(
      (await s.call('LIST', 'identity/group/id')).body.data.key_info[g.body.data.id],
    ).toMatchObject({
      name: 'devs',
      num_member_entities: 1,
    })
    await s.call('POST', `identity/group/id/${g.body.data.id}`, { body: { policies: 'ops' } })
    expect((await s.call('GET', 'identity/group/name/devs')).body.data.policies).toEqual(['ops'])
    const entity = await s.call('GET', `identity/entity/id/${e}`)
    expect(entity.body.data.direct_group_ids).toEqual([g.body.data.id])
    expect((await s.call('DELETE', 'identity/group/name/devs')).status).toBe(204)
    expect((await s.call('GET', `identity/group/id/${g.body.data.id}`)).status).toBe(404)
  })

  it('refuses cycles, self-membership, unknown members and external groups', async () => {
    const a = (await s.call('POST', 'identity/group', { body: { name: 'a' } })).body.data.id
    const b = (
      await s.call('POST', 'identity/group', { body: { name: 'b', member_group_ids: [a] } })
    ).body.data.id
    const cycle = await s.call('POST', `identity/group/id/${a}`, {
      body: { member_group_ids: [b] },
    })
    expect(cycle.status).toBe(400)
    expect(cycle.body.errors).toEqual(['cyclic relationship detected in member group ids'])
    expect(
      (await s.call('POST', `identity/group/id/${a}`, { body: { member_group_ids: [a] } })).status,
    ).toBe(400)
    expect(
      (
        await s.call('POST', 'identity/group', {
          body: { name: 'c', member_entity_ids: ['missing'] },
        })
      ).status,
    ).toBe(400)
    expect(
      (await s.call('POST', 'identity/group', { body: { name: 'd', type: 'external' } })).status,
    ).toBe(400)
    expect((await s.call('GET', `identity/group/id/${a}`)).body.data.member_group_ids).toEqual([])
    expect((await s.call('GET', `identity/group/id/${a}`)).body.data.parent_group_ids).toEqual([b])
  })

  it('shows inherited groups on the entity', async () => {
    const e = (await s.call('POST', 'identity/entity', { body: { name: 'm' } })).body.data.id
    const child = (
      await s.call('POST', 'identity/group', { body: { name: 'child', member_entity_ids: [e] } })
    ).body.data.id
    const parent = (
      await s.call('POST', 'identity/group', {
        body: { name: 'parent', member_group_ids: [child] },
      })
    ).body.data.id
    const entity = (await s.call('GET', `identity/entity/id/${e}`)).body.data
    expect(entity.direct_group_ids).toEqual([child])
    expect(entity.inherited_group_ids).toEqual([parent])
    expect(entity.group_ids.sort()).toEqual([child, parent].sort())
  })

  it('needs a policy for identity paths: a token without one is refused', async () => {
    await s.call('POST', 'sys/policies/acl/none', {
      body: { policy: 'path "x/*" { capabilities = ["read"] }' },
    })
    const token = (await s.call('POST', 'auth/token/create', { body: { policies: 'none' } })).body
      .auth.client_token
    expect(
      (
        await s.call('POST', 'identity/group', {
          token,
          body: { name: 'sneaky', policies: 'admin' },
        })
      ).status,
    ).toBe(403)
  })
})
