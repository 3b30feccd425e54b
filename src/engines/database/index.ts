import type { CoreServices } from '../../core/services.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend } from '../../core/request.js'
import { configPaths } from './config-paths.js'
import { createConnectionCache } from './connections.js'
import type { DatabaseContext } from './context.js'
import { credsFeature } from './creds.js'
import { rolePaths } from './role-paths.js'
import type { PasswordPolicyStore } from '../../core/password-policy/store.js'
import { createDatabaseStore } from './store.js'

/**
 * The `database` secrets engine (Vault's `database/` API): connection configs sealed by the
 * barrier, dynamic roles, `creds/<role>` issued under leases (intent first), `rotate-root` and
 * `reset`. Plugins live in `plugins/<target>`; one pool per connection config.
 */
export function createDatabaseBackend(
  core: Pick<CoreServices, 'storage' | 'seal' | 'leases' | 'mountTtls' | 'logger'> & {
    passwordPolicies: PasswordPolicyStore
  },
  mount: MountEntry,
): Backend {
  const ctx: DatabaseContext = {
    core,
    mount,
    store: createDatabaseStore({
      storage: core.storage,
      barrier: core.seal.barrier,
      mountId: mount.id,
    }),
    connections: createConnectionCache(),
    passwordPolicies: core.passwordPolicies,
  }
  const creds = credsFeature(ctx)
  return {
    paths: [...configPaths(ctx), ...rolePaths(ctx), ...creds.paths],
    revokeSecret: creds.revokeSecret,
    revokeSecrets: creds.revokeSecrets,
    renewSecret: creds.renewSecret,
    inspectSecret: creds.inspectSecret,
    describeAccess: creds.describeAccess,
    cleanup: async () => {
      await ctx.connections.closeAll()
      await ctx.store.deleteAll()
    },
    close: () => ctx.connections.closeAll(),
  }
}
