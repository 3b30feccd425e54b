import type { CacheSync } from './cache-sync.js'
import type { MountEntry, MountTable } from './mounts.js'
import type { PolicyStore } from './policy/store.js'
import type { SealManager } from './seal.js'
import type { Worker } from './workers.js'

/** Seconds: Vault's system default and max lease TTL (768h). */
export const SYSTEM_MAX_TTL = 768 * 3600

/** Effective TTL bounds of a mount, in seconds. */
export type MountTtls = (mount: MountEntry | undefined) => { defaultTtl: number; maxTtl: number }

/** A mount's tuned TTLs, else the node's (which default to Vault's 768h). */
export function mountTtls(system: { defaultLeaseTtl?: number; maxLeaseTtl?: number }): MountTtls {
  const systemMax = system.maxLeaseTtl ?? SYSTEM_MAX_TTL
  const systemDefault = system.defaultLeaseTtl ?? SYSTEM_MAX_TTL
  return (mount) => {
    const maxTtl = mount?.config.maxLeaseTtl || systemMax
    const defaultTtl = Math.min(mount?.config.defaultLeaseTtl || systemDefault, maxTtl)
    return { defaultTtl, maxTtl }
  }
}

/**
 * The policy store as every other part sees it: a write or delete also tells the other nodes on
 * the same storage, and their changes drop this node's cached policies.
 */
export function syncedPolicies(policies: PolicyStore, cacheSync: CacheSync): PolicyStore {
  cacheSync.watch('policies', async () => policies.invalidate())
  return {
    ...policies,
    write: async (name, text) => {
      await policies.write(name, text)
      await cacheSync.bump('policies')
    },
    delete: async (name) => {
      await policies.delete(name)
      await cacheSync.bump('policies')
    },
  }
}

export interface LifecycleDeps {
  seal: Pick<SealManager, 'hooks'>
  policies: Pick<PolicyStore, 'ensureBuiltins'>
  mounts: Pick<MountTable, 'ensureBuiltins' | 'load' | 'unload' | 'onChange'>
  cacheSync: Pick<CacheSync, 'watch' | 'bump' | 'poll' | 'worker'>
  /** Started after every unseal, stopped before every seal, in this order. */
  workers: Worker[]
}

/**
 * What unsealing and sealing do to a node: on unseal, the built-in policies and mounts exist,
 * the cache generations are seeded (so a change made while loading is seen later), the mount
 * table is loaded and the workers start; on seal, the workers stop and the mounts unload. Mount
 * changes reach other nodes through the cache generations.
 */
export function bindLifecycle(deps: LifecycleDeps): void {
  const { seal, policies, mounts, cacheSync } = deps
  const workers = [cacheSync.worker(), ...deps.workers]
  mounts.onChange(() => cacheSync.bump('mounts'))
  cacheSync.watch('mounts', () => mounts.load())
  seal.hooks(
    async () => {
      await policies.ensureBuiltins()
      await mounts.ensureBuiltins()
      await cacheSync.poll()
      await mounts.load()
      for (const w of workers) w.start()
    },
    async () => {
      for (const w of workers) await w.stop()
      await mounts.unload()
    },
  )
}
