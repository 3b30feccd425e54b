import { randomBytes, randomUUID } from 'node:crypto'
import { badRequest } from '../core/errors.js'
import { nowMs, type Storage } from '../storage/storage.js'
import type { IdentityStore } from './types.js'
import { createsCycle, groupPolicies, groupsContaining } from './membership.js'
import { createIdentityCache } from './cache.js'
import {
  aliasFromRow,
  aliasToRow,
  entityFromRow,
  entityToRow,
  groupFromRow,
  groupToRow,
  type Alias,
  type Entity,
  type EntityChanges,
  type Group,
  type GroupChanges,
} from './rows.js'

export type { Alias, Entity, EntityChanges, Group, GroupChanges } from './rows.js'

/** The identity store with the CRUD the `identity/` backend serves. */
export interface IdentityService extends IdentityStore {
  getEntity(id: string): Promise<Entity | undefined>
  getEntityByName(name: string): Promise<Entity | undefined>
  listEntities(): Promise<Entity[]>
  /** Creates the entity (generated name when none) or updates the given one. */
  createEntity(changes: EntityChanges): Promise<Entity>
  updateEntity(id: string, changes: EntityChanges): Promise<Entity>
  /** Deletes the entity, its aliases and its group memberships. */
  deleteEntity(id: string): Promise<void>
  /** True when the entity exists and is disabled (cached like policies). */
  isDisabled(entityId: string): Promise<boolean>

  getAlias(id: string): Promise<Alias | undefined>
  findAlias(mountAccessor: string, name: string): Promise<Alias | undefined>
  aliasesOf(entityId: string): Promise<Alias[]>
  listAliases(): Promise<Alias[]>
  createAlias(input: Omit<Alias, 'id' | 'createdAt' | 'updatedAt' | 'metadata'>): Promise<Alias>
  updateAlias(
    id: string,
    changes: Partial<
      Pick<Alias, 'name' | 'canonicalId' | 'mountAccessor' | 'mountType' | 'customMetadata'>
    >,
  ): Promise<Alias>
  deleteAlias(id: string): Promise<void>
  /** Removes every alias of an auth mount (the mount is being disabled). */
  deleteAliasesForMount(mountAccessor: string): Promise<void>

  getGroup(id: string): Promise<Group | undefined>
  getGroupByName(name: string): Promise<Group | undefined>
  listGroups(): Promise<Group[]>
  createGroup(changes: GroupChanges): Promise<Group>
  updateGroup(id: string, changes: GroupChanges): Promise<Group>
  deleteGroup(id: string): Promise<void>
}

/**
 * Entities, aliases and groups in storage. Policy questions, asked on every request of a token
 * with an entity, are answered from the cache in `cache.ts`.
 */
export function createIdentityStore(deps: {
  storage: Storage
  /**
   * How long a node may answer from its cache before checking the shared version again, for
   * changes made on other nodes. Default 0: checked on every policy question.
   */
  maxStalenessMs?: number
}): IdentityService {
  const { db } = deps.storage
  const cache = createIdentityCache({
    storage: deps.storage,
    maxStalenessMs: deps.maxStalenessMs,
    loadEntity: (id) => getEntity(id),
    loadGroups: () => listGroups(),
  })
  const bump = () => cache.bump()

  const getEntity = async (id: string) => {
    const row = await db
      .selectFrom('identity_entities')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row && entityFromRow(row)
  }
  const getEntityByName = async (name: string) => {
    const row = await db
      .selectFrom('identity_entities')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst()
    return row && entityFromRow(row)
  }
  const listGroups = async () => {
    const rows = await db.selectFrom('identity_groups').selectAll().orderBy('name').execute()
    return rows.map(groupFromRow)
  }
  const getGroup = async (id: string) => {
    const row = await db
      .selectFrom('identity_groups')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row && groupFromRow(row)
  }
  const getAlias = async (id: string) => {
    const row = await db
      .selectFrom('identity_aliases')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row && aliasFromRow(row)
  }
  const findAlias = async (mountAccessor: string, name: string) => {
    const row = await db
      .selectFrom('identity_aliases')
      .selectAll()
      .where('mount_accessor', '=', mountAccessor)
      .where('name', '=', name)
      .executeTakeFirst()
    return row && aliasFromRow(row)
  }
  const aliasesOf = async (entityId: string) => {
    const rows = await db
      .selectFrom('identity_aliases')
      .selectAll()
      .where('canonical_id', '=', entityId)
      .orderBy('created_at')
      .execute()
    return rows.map(aliasFromRow)
  }

  const insertEntity = async (changes: EntityChanges): Promise<Entity> => {
    const now = nowMs()
    for (let attempt = 0; ; attempt++) {
      const entity: Entity = {
        id: randomUUID(),
        name: changes.name ?? `entity_${randomBytes(4).toString('hex')}`,
        metadata: changes.metadata ?? {},
        policies: changes.policies ?? [],
        disabled: changes.disabled ?? false,
        createdAt: now,
        updatedAt: now,
      }
      try {
        await db.insertInto('identity_entities').values(entityToRow(entity)).execute()
        await bump()
        return entity
      } catch (err) {
        if (changes.name !== undefined || attempt >= 3) {
          if (await getEntityByName(entity.name))
            throw badRequest(`entity name "${entity.name}" is already in use`)
          throw err
        }
      }
    }
  }

  const checkAliasSlot = async (entityId: string, mountAccessor: string, exceptId?: string) => {
    if (!(await getEntity(entityId))) throw badRequest('invalid canonical_id: entity not found')
    const clash = (await aliasesOf(entityId)).find(
      (a) => a.mountAccessor === mountAccessor && a.id !== exceptId,
    )
    if (clash) throw badRequest('entity already has an alias on this mount')
  }

  const checkMembers = async (groupId: string, changes: GroupChanges) => {
    for (const id of changes.memberEntityIds ?? []) {
      if (!(await getEntity(id))) throw badRequest(`invalid member entity id "${id}"`)
    }
    const groups = await listGroups()
    const known = new Set(groups.map((g) => g.id))
    for (const id of changes.memberGroupIds ?? []) {
      if (id === groupId) throw badRequest('a group cannot be a member of itself')
      if (!known.has(id)) throw badRequest(`invalid member group id "${id}"`)
    }
    if (changes.memberGroupIds && createsCycle(groups, groupId, changes.memberGroupIds)) {
      throw badRequest('cyclic relationship detected in member group ids')
    }
  }

  const service: IdentityService = {
    async resolveAlias(input) {
      const found = await findAlias(input.mountAccessor, input.name)
      if (found) {
        const metadata = input.metadata ?? found.metadata
        if (JSON.stringify(metadata) !== JSON.stringify(found.metadata)) {
          await db
            .updateTable('identity_aliases')
            .set({ metadata: JSON.stringify(metadata), updated_at: nowMs() })
            .where('id', '=', found.id)
            .execute()
        }
        return found.canonicalId
      }
      const entity = await insertEntity({})
      const now = nowMs()
      try {
        await db
          .insertInto('identity_aliases')
          .values({
            id: randomUUID(),
            canonical_id: entity.id,
            mount_accessor: input.mountAccessor,
            mount_type: input.mountType,
            name: input.name,
            metadata: JSON.stringify(input.metadata ?? {}),
            custom_metadata: '{}',
            created_at: now,
            updated_at: now,
          })
          .execute()
        return entity.id
      } catch (err) {
        // A concurrent first login created the alias: use its entity, drop ours.
        await db.deleteFrom('identity_entities').where('id', '=', entity.id).execute()
        const winner = await findAlias(input.mountAccessor, input.name)
        if (!winner) throw err
        return winner.canonicalId
      }
    },

    async policiesFor(entityId) {
      await cache.fresh()
      const entity = await cache.entity(entityId)
      if (!entity) return []
      const fromGroups = groupPolicies(await cache.groups(), entityId)
      return [...new Set([...entity.policies, ...fromGroups])].sort()
    },

    async groupsFor(entityId) {
      await cache.fresh()
      const { all } = groupsContaining(await cache.groups(), entityId)
      return all.map((g) => ({ id: g.id, name: g.name }))
    },

    async entity(entityId) {
      const entity = await getEntity(entityId)
      if (!entity) return undefined
      const aliases = (await aliasesOf(entityId)).map((a) => ({
        mountAccessor: a.mountAccessor,
        name: a.name,
        metadata: a.metadata,
      }))
      return {
        id: entity.id,
        name: entity.name,
        metadata: entity.metadata,
        disabled: entity.disabled,
        aliases,
      }
    },

    async isDisabled(entityId) {
      await cache.fresh()
      return (await cache.entity(entityId))?.disabled ?? false
    },

    getEntity,
    getEntityByName,
    async listEntities() {
      const rows = await db.selectFrom('identity_entities').selectAll().orderBy('name').execute()
      return rows.map(entityFromRow)
    },
    createEntity: insertEntity,
    async updateEntity(id, changes) {
      const current = await getEntity(id)
      if (!current) throw badRequest('entity not found')
      const next: Entity = {
        ...current,
        ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
        updatedAt: nowMs(),
      }
      if (next.name !== current.name) {
        const other = await getEntityByName(next.name)
        if (other && other.id !== id)
          throw badRequest(`entity name "${next.name}" is already in use`)
      }
      const { id: _id, created_at: _c, ...row } = entityToRow(next)
      await db.updateTable('identity_entities').set(row).where('id', '=', id).execute()
      await bump()
      return next
    },
    async deleteEntity(id) {
      await db.deleteFrom('identity_aliases').where('canonical_id', '=', id).execute()
      for (const g of await listGroups()) {
        if (!g.memberEntityIds.includes(id)) continue
        await db
          .updateTable('identity_groups')
          .set({
            member_entity_ids: JSON.stringify(g.memberEntityIds.filter((e) => e !== id)),
            updated_at: nowMs(),
          })
          .where('id', '=', g.id)
          .execute()
      }
      await db.deleteFrom('identity_entities').where('id', '=', id).execute()
      await bump()
    },

    getAlias,
    findAlias,
    aliasesOf,
    async listAliases() {
      const rows = await db
        .selectFrom('identity_aliases')
        .selectAll()
        .orderBy('created_at')
        .execute()
      return rows.map(aliasFromRow)
    },
    async createAlias(input) {
      if (await findAlias(input.mountAccessor, input.name)) {
        throw badRequest(`alias "${input.name}" already exists on this mount`)
      }
      await checkAliasSlot(input.canonicalId, input.mountAccessor)
      const now = nowMs()
      const alias: Alias = {
        ...input,
        id: randomUUID(),
        metadata: {},
        createdAt: now,
        updatedAt: now,
      }
      try {
        await db.insertInto('identity_aliases').values(aliasToRow(alias)).execute()
      } catch {
        throw badRequest(`alias "${input.name}" already exists on this mount`)
      }
      await bump()
      return alias
    },
    async updateAlias(id, changes) {
      const current = await getAlias(id)
      if (!current) throw badRequest('alias not found')
      const next: Alias = {
        ...current,
        ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
        updatedAt: nowMs(),
      }
      if (next.name !== current.name || next.mountAccessor !== current.mountAccessor) {
        const other = await findAlias(next.mountAccessor, next.name)
        if (other && other.id !== id)
          throw badRequest(`alias "${next.name}" already exists on this mount`)
      }
      if (
        next.canonicalId !== current.canonicalId ||
        next.mountAccessor !== current.mountAccessor
      ) {
        await checkAliasSlot(next.canonicalId, next.mountAccessor, id)
      }
      const { id: _id, created_at: _c, ...row } = aliasToRow(next)
      try {
        await db.updateTable('identity_aliases').set(row).where('id', '=', id).execute()
      } catch {
        throw badRequest(`alias "${next.name}" already exists on this mount`)
      }
      await bump()
      return next
    },
    async deleteAlias(id) {
      await db.deleteFrom('identity_aliases').where('id', '=', id).execute()
      await bump()
    },
    async deleteAliasesForMount(mountAccessor) {
      await db.deleteFrom('identity_aliases').where('mount_accessor', '=', mountAccessor).execute()
      await bump()
    },

    getGroup,
    async getGroupByName(name) {
      const row = await db
        .selectFrom('identity_groups')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst()
      return row && groupFromRow(row)
    },
    listGroups,
    async createGroup(changes) {
      const now = nowMs()
      const id = randomUUID()
      await checkMembers(id, changes)
      const group: Group = {
        id,
        name: changes.name ?? `group_${randomBytes(4).toString('hex')}`,
        type: 'internal',
        policies: changes.policies ?? [],
        metadata: changes.metadata ?? {},
        memberEntityIds: changes.memberEntityIds ?? [],
        memberGroupIds: changes.memberGroupIds ?? [],
        createdAt: now,
        updatedAt: now,
      }
      try {
        await db.insertInto('identity_groups').values(groupToRow(group)).execute()
      } catch {
        throw badRequest(`group name "${group.name}" is already in use`)
      }
      await bump()
      return group
    },
    async updateGroup(id, changes) {
      const current = await getGroup(id)
      if (!current) throw badRequest('group not found')
      await checkMembers(id, changes)
      const next: Group = {
        ...current,
        ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
        updatedAt: nowMs(),
      }
      const { id: _id, created_at: _c, ...row } = groupToRow(next)
      try {
        await db.updateTable('identity_groups').set(row).where('id', '=', id).execute()
      } catch {
        throw badRequest(`group name "${next.name}" is already in use`)
      }
      await bump()
      return next
    },
    async deleteGroup(id) {
      for (const g of await listGroups()) {
        if (!g.memberGroupIds.includes(id)) continue
        await db
          .updateTable('identity_groups')
          .set({
            member_group_ids: JSON.stringify(g.memberGroupIds.filter((m) => m !== id)),
            updated_at: nowMs(),
          })
          .where('id', '=', g.id)
          .execute()
      }
      await db.deleteFrom('identity_groups').where('id', '=', id).execute()
      await bump()
    },
  }
  return service
}
