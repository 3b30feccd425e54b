import { badRequest } from '../core/errors.js'
import type { CoreServices } from '../core/services.js'
import { nowMs } from '../storage/storage.js'
import { iso } from './input.js'
import type { AccessEvent, Notifiers } from './notifiers.js'
import type { Presenter } from './presentation.js'
import type { AccessRequest, RequestStore } from './requests.js'
import type { AccessRule, RuleStore } from './rules.js'
import { approvalChanges, pendingExpired } from './transitions.js'

export interface GrantDeps extends Pick<CoreServices, 'leases' | 'logger'> {
  rules: Pick<RuleStore, 'get'>
  requests: RequestStore
  notifiers: Pick<Notifiers, 'enqueue'>
  view: Presenter
  sampleSessions: (r: AccessRequest) => Promise<void>
}

/**
 * The transitions that touch more than the request row, shared by the API operations, the guard
 * and the sweeper: approving (an extension moves its parent's end and its leases' expiry),
 * ending (the grant's leases are revoked), and telling the rule's notifiers.
 */
export function createGrants(deps: GrantDeps) {
  const { leases, logger, rules, requests, notifiers, view } = deps

  async function notify(
    rule: AccessRule | undefined,
    event: AccessEvent,
    request: AccessRequest,
    extra: Record<string, unknown> = {},
  ) {
    if (!rule) return
    await notifiers.enqueue(rule.notifiers, event, request.id, {
      request: await view(request),
      ...extra,
    })
  }

  /** Approves: the clock starts now (or at the requested start), or at first use. */
  async function approve(
    request: AccessRequest,
    rule: AccessRule,
    auto: boolean,
  ): Promise<AccessRequest> {
    const now = nowMs()
    const changes: Partial<AccessRequest> =
      request.kind === 'extension'
        ? { state: 'approved', approvedAt: now, autoApproved: auto }
        : approvalChanges(request, rule, now, auto)
    const ok = await requests.transition(request.id, ['pending'], changes)
    if (!ok) throw badRequest('the request is no longer pending')
    if (request.kind === 'extension') await applyExtension(request)
    const updated = await requests.require(request.id)
    await notify(rule, 'approved', updated)
    return updated
  }

  async function applyExtension(ext: AccessRequest) {
    const parent = await requests.require(ext.parentId!)
    if (parent.state !== 'active' && parent.state !== 'approved') return
    await requests.extendEnd(parent.id, ext.duration)
    const grown = await requests.require(parent.id)
    // The guard capped the grant's leases (expiry and max) at the old end: give them the new end,
    // never past the max they were issued with (the role's max_ttl, the mount's).
    if (grown.endsAt) {
      await leases
        .raiseCap(await requests.leasesOf(parent.id), grown.endsAt)
        .catch((err) => logger.warn({ err: (err as Error).name }, 'extending grant leases failed'))
    }
  }

  /** Ends a grant (or a request that never became one): its leases are revoked. */
  async function endGrant(
    request: AccessRequest,
    state: 'ended' | 'expired' | 'cancelled',
    from: AccessRequest['state'][],
  ): Promise<boolean> {
    if (request.state === 'active' && !request.sessionsSeen && request.credsIssued > 0)
      await deps.sampleSessions(request)
    const ok = await requests.transition(request.id, from, { state, endedAt: nowMs() })
    if (!ok) return false
    for (const leaseId of await requests.leasesOf(request.id)) {
      await leases
        .revoke(leaseId)
        .catch((err) => logger.warn({ err: (err as Error).name }, 'grant lease revocation failed'))
    }
    if (state === 'ended')
      await notify(await rules.get(request.ruleName), 'ended', await requests.require(request.id))
    return true
  }

  /**
   * A decision on a request past its pending_ttl is refused (400) and the request expires now,
   * so none lands between the deadline and the sweeper's next pass.
   */
  async function refuseIfPendingExpired(request: AccessRequest) {
    if (!pendingExpired(request, nowMs())) return
    await requests.transition(request.id, ['pending'], { state: 'expired', endedAt: nowMs() })
    throw badRequest(
      `the request expired at ${iso(request.pendingUntil)}: it was pending longer than rule "${request.ruleName}"'s pending_ttl`,
    )
  }

  return { notify, approve, endGrant, refuseIfPendingExpired }
}

export type Grants = ReturnType<typeof createGrants>
