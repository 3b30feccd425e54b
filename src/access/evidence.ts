import type { CoreServices } from '../core/services.js'
import type { AccessRequest, RequestStore } from './requests.js'

/**
 * Evidence of use: whether the users issued under a grant had sessions open on their target.
 * Sampled while the grant lives (by the sweeper) and once more as it ends, so that the unused
 * report tells grants that opened credentials nobody used from grants that were really used.
 */
export function createEvidence(
  deps: Pick<CoreServices, 'leases' | 'mounts'> & {
    requests: Pick<RequestStore, 'leasesOf' | 'markSessionsSeen'>
  },
) {
  const { leases, mounts, requests } = deps
  return async function sampleSessions(r: AccessRequest): Promise<void> {
    if (!leases.secretOf) return
    for (const leaseId of await requests.leasesOf(r.id)) {
      const secret = await leases.secretOf(leaseId).catch(() => undefined)
      if (!secret) continue
      const backend = mounts.byAccessor(secret.mountAccessor)?.backend
      if (!backend?.inspectSecret) continue
      const seen = await backend.inspectSecret(secret.internal).catch(() => ({ sessions: 0 }))
      if (seen.sessions > 0) {
        await requests.markSessionsSeen(r.id)
        return
      }
    }
  }
}
