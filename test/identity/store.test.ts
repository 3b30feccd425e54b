import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdentityStore, type IdentityService } from '../../src/identity/store.js'
import { openStorage, type Storage } from '../../src/storage/storage.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

describe.each(eachDialect)('identity store on %s', (dialect) => {
  let fresh: FreshStorage
  let second: Storage
  let store: IdentityService
  let otherNode: IdentityService

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    store = createIdentityStore({ storage: fresh.storage })
    // A second connection stands in for another node sharing the database.
    second = dialect === 'sqlite' ? fresh.storage : openStorage(fresh.url)
    otherNode = createIdentityStore({ storage: second })
  })
  afterAll(async () => {
    if (second !== fresh.storage) await second.close()
    await fresh.drop()
  })

  it('creates an entity and alias on first login and reuses them afterwards, refreshing metadata', async () => {
    const input = {
      mountAccessor: 'jwt_1',
      mountType: 'jwt',
      name: 'org/repo',
      metadata: { ref: 'main' },
    }
    const id = await store.resolveAlias(input)
    expect(await store.resolveAlias({ ...input, metadata: { ref: 'dev' } })).toBe(id)
    const entity = await store.entity(id)
    expect(entity?.name).toMatch(/^entity_[0-9a-f]{8}$/)
    expect(entity?.aliases).toEqual([
      { mountAccessor: 'jwt_1', name: 'org/repo', metadata: { ref: 'dev' } },
    ])
  })

  it('gives concurrent first logins of one alias a single entity', async () => {
    const input = { mountAccessor: 'approle_1', mountType: 'approle', name: 'role-x' }
    const ids = await Promise.all(Array.from({ length: 6 }, () => store.resolveAlias(input)))
    expect(new Set(ids).size).toBe(1)
    const aliases = (await store.listAliases()).filter((a) => a.name === 'role-x')
    expect(aliases).toHaveLength(1)
    const entities = await store.listEntities()
    expect(entities.filter((e) => e.id === ids[0])).toHaveLength(1)
    expect(entities).toHaveLength(2)
  })

  it('sees a group change made on another node on the next policy question', async () => {
    const id = await store.resolveAlias({
      mountAccessor: 'userpass_1',
      mountType: 'userpass',
      name: 'dana',
    })
    expect(await store.policiesFor(id)).toEqual([])
    const group = await otherNode.createGroup({
      name: 'ops',
      policies: ['ops'],
      memberEntityIds: [id],
    })
    expect(await store.policiesFor(id)).toEqual(['ops'])
    expect(await store.groupsFor(id)).toEqual([{ id: group.id, name: 'ops' }])
    await otherNode.updateGroup(group.id, { policies: ['audit', 'ops'] })
    expect(await store.policiesFor(id)).toEqual(['audit', 'ops'])
    await otherNode.updateEntity(id, { disabled: true, policies: ['self'] })
    expect(await store.isDisabled(id)).toBe(true)
    expect(await store.policiesFor(id)).toEqual(['audit', 'ops', 'self'])
    await otherNode.deleteGroup(group.id)
    expect(await store.policiesFor(id)).toEqual(['self'])
  })

  it("with a staleness window, applies its own writes at once and other nodes' after the window", async () => {
    const lazy = createIdentityStore({ storage: fresh.storage, maxStalenessMs: 60_000 })
    const id = await lazy.resolveAlias({
      mountAccessor: 'userpass_1',
      mountType: 'userpass',
      name: 'erin',
    })
    expect(await lazy.policiesFor(id)).toEqual([])
    const group = await lazy.createGroup({ name: 'mine', policies: ['a'], memberEntityIds: [id] })
    expect(await lazy.policiesFor(id)).toEqual(['a'])
    await otherNode.updateGroup(group.id, { policies: ['b'] })
    expect(await lazy.policiesFor(id)).toEqual(['a'])
    await lazy.updateEntity(id, { metadata: { touched: 'yes' } })
    expect(await lazy.policiesFor(id)).toEqual(['b'])
  })

  it('reports no policies and not disabled for an unknown entity', async () => {
    expect(await store.policiesFor('missing')).toEqual([])
    expect(await store.isDisabled('missing')).toBe(false)
    expect(await store.entity('missing')).toBeUndefined()
  })
})
