import type { CoreServices } from '../../core/services.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend } from '../../core/request.js'
import { createKvStore } from './store.js'
import { kvV1Paths } from './kv-v1.js'
import { kvV2Paths } from './kv-v2.js'

/**
 * The KV secrets engine for one mount: version 2 when the mount's `options.version` is `"2"`
 * (`kv-v2` is turned into that by sys/mounts), version 1 otherwise (`kv`, `generic`). Both
 * versions share the same tables, so a v1 mount upgraded to v2 keeps its secrets as version 1.
 */
export function createKvBackend(
  core: Pick<CoreServices, 'storage' | 'seal' | 'mountTtls'>,
  mount: MountEntry,
  forceVersion?: 1 | 2,
): Backend {
  const store = createKvStore({
    storage: core.storage,
    barrier: core.seal.barrier,
    mountId: mount.id,
  })
  const version = forceVersion ?? (mount.options?.version === '2' ? 2 : 1)
  return {
    paths: version === 2 ? kvV2Paths(store) : kvV1Paths({ store, core, mount }),
    cleanup: () => store.cleanup(),
  }
}

export { createKvStore, type KvStore } from './store.js'
