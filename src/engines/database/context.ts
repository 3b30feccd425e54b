import type { CoreServices } from '../../core/services.js'
import type { MountEntry } from '../../core/mounts.js'
import type { PasswordPolicyStore } from '../../core/password-policy/store.js'
import type { ConnectionCache } from './connections.js'
import type { DatabaseStore } from './store.js'

/** What every part of one `database` mount shares. */
export interface DatabaseContext {
  core: Pick<CoreServices, 'leases' | 'mountTtls' | 'logger'>
  mount: MountEntry
  store: DatabaseStore
  connections: ConnectionCache
  /** `sys/policies/password`, for connections that name a `password_policy`. */
  passwordPolicies: Pick<PasswordPolicyStore, 'get'>
}
