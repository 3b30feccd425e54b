import { ApiError } from '../core/errors.js'
import type { GuardResult, RequestContext } from '../core/core.js'
import type { CoreServices } from '../core/services.js'
import { grantHolderOf } from '../core/tokens.js'
import { nowMs } from '../storage/storage.js'
import type { Grants } from './grants.js'
import { trimSlashes } from './input.js'
import type { RequestStore } from './requests.js'
import type { RuleStore } from './rules.js'
import { startClock } from './transitions.js'

export interface GuardDeps extends Pick<CoreServices, 'leases'> {
  rules: Pick<RuleStore, 'forPath'>
  requests: RequestStore
  endGrant: Grants['endGrant']
}

/**
 * The request guard: a path an access rule guards needs a live grant for the caller's identity,
 * decided under that rule. A grant that waits for first use starts its clock here. Leases issued
 * under a grant end with it, and are recorded as evidence of use.
 */
export function createGrantGuard(deps: GuardDeps) {
  const { rules, requests, leases } = deps
  return async function guardGrant(ctx: RequestContext): Promise<GuardResult> {
    const token = ctx.req.token
    if (!token || token.policies.includes('root') || ctx.req.path.startsWith('sys/')) return
    const rule = await rules.forPath(ctx.req.path)
    if (!rule) return
    const path = trimSlashes(ctx.req.path)
    const now = nowMs()
    // A grant opens the one path it was asked for, and only while the rule it was decided
    // under is the rule that guards that path (a lenient rule's grant never opens a path a
    // stricter rule has taken over).
    let grant = (await requests.liveGrants(grantHolderOf(token))).find(
      (g) =>
        trimSlashes(g.path) === path &&
        g.ruleName === rule.name &&
        (g.state === 'active' ? (g.endsAt ?? 0) > now : g.startAt === null || g.startAt <= now),
    )
    if (
      grant?.state === 'approved' &&
      rule.clockStarts === 'first_use' &&
      grant.pendingUntil !== null &&
      grant.pendingUntil <= now
    ) {
      // Not used within pending_ttl: expired now, not at the sweeper's next pass.
      await deps.endGrant(grant, 'expired', ['approved'])
      grant = undefined
    }
    if (grant && grant.state === 'approved') {
      if (rule.requesterMfa) {
        throw new ApiError(
          403,
          `grant ${grant.id} must be activated with a second factor first (sys/access/requests/${grant.id}/activate)`,
        )
      }
      // The clock starts at first use.
      const ok = await requests.transition(grant.id, ['approved'], startClock(grant, now))
      grant = ok ? await requests.require(grant.id) : await requests.get(grant.id)
    }
    if (!grant || grant.state !== 'active' || !grant.endsAt) {
      throw new ApiError(
        403,
        `permission denied: "${ctx.req.path}" needs an approved access request (rule "${rule.name}"); ask with sys/access/requests`,
      )
    }
    const endsAt = grant.endsAt
    const grantId = grant.id
    // Engines that issue through the lease manager create the credential with this end already.
    ctx.req.notAfter = Math.min(ctx.req.notAfter ?? Infinity, endsAt)
    return async (response) => {
      const leaseId = response?.secret?.leaseId
      if (!leaseId) return
      await requests.recordCredentials(grantId, leaseId)
      const left = Math.max(0, Math.floor((endsAt - nowMs()) / 1000))
      // A backend that did not honour `notAfter`: cap its lease after the fact (a second trip).
      if (response.secret && response.secret.ttl > left) {
        await leases.capExpiry([leaseId], endsAt)
        response.secret.ttl = left
      }
    }
  }
}
