import type { Storage } from '../storage/storage.js'
import type { AccessControl } from './access-control.js'
import type { Authenticate } from './authenticate.js'
import type { CacheSync } from './cache-sync.js'
import type { LeaseManager } from './leases/types.js'
import type { Logger } from './logger.js'
import type { MountTable } from './mounts.js'
import type { MountTtls } from './node.js'
import type { PolicyStore } from './policy/store.js'
import type { SealManager } from './seal.js'
import type { SecondFactors } from './second-factor.js'
import type { TokenStore } from './tokens.js'

/**
 * The services the core owns, as the composition root (`src/server/compose.ts`) builds them.
 * Every other part declares the few it uses with `Pick<CoreServices, …>` and is handed exactly
 * that: nothing is looked up or assigned after construction.
 *
 * @example
 * export function createKvBackend(core: Pick<CoreServices, 'storage' | 'seal' | 'mountTtls'>, …)
 */
export interface CoreServices {
  storage: Storage
  logger: Logger
  /** Seal state, init/unseal, and the barrier that encrypts sensitive columns. */
  seal: SealManager
  tokens: TokenStore
  /** ACL policies; writes reach other nodes through `cacheSync`. */
  policies: PolicyStore
  /** Tells other nodes on the same storage that a cache (mounts, policies) changed. */
  cacheSync: CacheSync
  mounts: MountTable
  leases: LeaseManager
  secondFactors: SecondFactors
  mountTtls: MountTtls
  effectivePolicies: AccessControl['effectivePolicies']
  aclFor: AccessControl['aclFor']
  authenticate: Authenticate
}
