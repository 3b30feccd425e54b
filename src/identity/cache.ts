import type { Storage } from '../storage/storage.js'
import type { Entity, Group } from './rows.js'

const ENTITY_LIMIT = 10_000

/**
 * The per-node cache behind identity policy questions. Every identity write bumps one shared
 * counter (`identity_state.version`); a question first reads it (one primary-key read, shared by
 * concurrent questions) and drops the cache when it moved, so writes made on any node apply to
 * the very next request. `maxStalenessMs` > 0 trades that for fewer reads: other nodes' writes
 * may then take that long to show; this node's own writes still apply at once.
 */
export function createIdentityCache(deps: {
  storage: Storage
  maxStalenessMs?: number
  loadEntity(id: string): Promise<Entity | undefined>
  loadGroups(): Promise<Group[]>
}) {
  const { db } = deps.storage
  const maxStalenessMs = deps.maxStalenessMs ?? 0
  let version = -1
  let checkedAt = -Infinity
  let inflight: Promise<void> | undefined
  let groups: Group[] | undefined
  const entities = new Map<string, Entity | null>()

  const drop = () => {
    groups = undefined
    entities.clear()
  }

  const check = async () => {
    const row = await db
      .selectFrom('identity_state')
      .select('version')
      .where('name', '=', 'version')
      .executeTakeFirst()
    const current = Number(row?.version ?? 0)
    if (current !== version) {
      version = current
      drop()
    }
    checkedAt = Date.now()
  }

  return {
    /** Brings the cache up to date; call once per question, before the reads below. */
    async fresh(): Promise<void> {
      if (maxStalenessMs > 0 && Date.now() - checkedAt < maxStalenessMs) return
      inflight ??= check().finally(() => {
        inflight = undefined
      })
      await inflight
    },

    async entity(id: string): Promise<Entity | null> {
      const hit = entities.get(id)
      if (hit !== undefined) return hit
      const entity = (await deps.loadEntity(id)) ?? null
      if (entities.size >= ENTITY_LIMIT) entities.clear()
      entities.set(id, entity)
      return entity
    },

    async groups(): Promise<Group[]> {
      groups ??= await deps.loadGroups()
      return groups
    },

    /** Records a write: bumps the shared version and drops this node's cache. */
    async bump(): Promise<void> {
      await db
        .updateTable('identity_state')
        .set((eb) => ({ version: eb('version', '+', 1) }))
        .where('name', '=', 'version')
        .execute()
      version = -1
      checkedAt = -Infinity
      drop()
    },
  }
}
