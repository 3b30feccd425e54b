import type { Core } from '../../core/core.js'
import type { MountEntry } from '../../core/mounts.js'
import type { ConnectionCache } from './connections.js'
import type { DatabaseStore } from './store.js'

/** What every part of one `database` mount shares. */
export interface DatabaseContext {
  core: Pick<Core, 'leases' | 'mountTtls' | 'logger'>
  mount: MountEntry
  store: DatabaseStore
  connections: ConnectionCache
}
