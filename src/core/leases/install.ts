import type { Core } from '../core.js'
import { createLeaseManager, type LeaseManagerControl } from './manager.js'
import type { LeaseSettings } from './settings.js'
import { metricsFor } from '../../observability/metrics.js'

/**
 * Creates the core's lease manager and hooks it in: token revocation revokes the tokens' leases,
 * disabling a mount revokes everything issued under it, and the expiry worker runs while unsealed.
 */
export function installLeases(core: Core, settings?: Partial<LeaseSettings>): LeaseManagerControl {
  const manager = createLeaseManager({
    storage: core.storage,
    barrier: core.seal.barrier,
    mounts: core.mounts,
    mountTtls: (mount) => core.mountTtls(mount),
    logger: core.logger,
    settings,
    onRevoked: (lagMs) => metricsFor(core).observeRevocation(lagMs),
    onRevokeFailed: (mountPath) => metricsFor(core).revocationFailure(mountPath),
  })
  core.leases = manager
  core.tokens.onRevoke((entries) => manager.revokeByTokens(entries.map((e) => e.id)))
  core.mounts.onBeforeDisable(async (entry) => {
    await manager.revokeByMount(entry.accessor)
  })
  core.addWorker(manager.worker())
  return manager
}
