import { randomUUID } from 'node:crypto'
import { upsert, type Storage } from '../storage/storage.js'

/**
 * Keeps in-memory caches (mount table, policies) consistent across Stint nodes that share one
 * storage. A change writes a new random generation into `stint_meta` (`gen:<name>`); every node
 * polls the generations it watches in one small query and reloads what changed. A node ignores
 * the generations it wrote itself.
 */
export function createCacheSync(deps: { storage: Storage; intervalMs?: number }) {
  const { storage } = deps
  const watchers = new Map<string, () => Promise<void>>()
  const seen = new Map<string, string>()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined

  const poll = async () => {
    if (watchers.size === 0) return
    const keys = [...watchers.keys()].map((n) => `gen:${n}`)
    const rows = await storage.db
      .selectFrom('stint_meta')
      .select(['key', 'value'])
      .where('key', 'in', keys)
      .execute()
    const current = new Map(rows.map((r) => [r.key.slice(4), r.value]))
    for (const [name, reload] of watchers) {
      // A generation never written reads as '', so the first bump anywhere is noticed.
      const value = current.get(name) ?? ''
      const previous = seen.get(name)
      seen.set(name, value)
      if (previous !== undefined && previous !== value) await reload()
    }
  }

  return {
    /** Announces a change of `name` to the other nodes. */
    async bump(name: string): Promise<void> {
      const value = randomUUID()
      seen.set(name, value)
      await upsert(storage, 'stint_meta', { key: `gen:${name}`, value }, ['key'], ['value'])
    },
    watch(name: string, reload: () => Promise<void>): void {
      watchers.set(name, reload)
    },
    /** One poll, for tests. */
    poll,
    worker() {
      return {
        start() {
          timer ??= setInterval(() => {
            running ??= poll()
              .catch(() => {})
              .finally(() => (running = undefined))
          }, deps.intervalMs ?? 1000)
          timer.unref()
        },
        async stop() {
          if (timer) clearInterval(timer)
          timer = undefined
          await running
        },
      }
    },
  }
}

export type CacheSync = ReturnType<typeof createCacheSync>
