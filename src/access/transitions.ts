import type { AccessRule } from './rules.js'
import type { AccessRequest, Actor, RequestKind } from './requests.js'

/**
 * The state machine of a request, as pure functions of the request, its rule and the time: what
 * each transition writes. Nothing here reads or writes storage (test/access/transitions.test.ts).
 *
 *   pending ──approve×N / auto──► approved ──start/first use──► active ──end/expiry──► ended
 *      │                              │                            └─ its leases are revoked
 *      ├─deny──► denied               └─(first use never came)──► expired
 *      ├─cancel──► cancelled
 *      └─(pending too long)──► expired
 */

/** What a new request row holds, before storage gives it an id. */
export type NewRequest = Omit<
  AccessRequest,
  'id' | 'createdAt' | 'updatedAt' | 'credsIssued' | 'sessionsSeen' | 'endedAt' | 'denyReason'
>

/** A grant's clock starts: active from `now` for its duration. */
export function startClock(request: Pick<AccessRequest, 'duration'>, now: number) {
  return {
    state: 'active' as const,
    activatedAt: now,
    endsAt: now + request.duration * 1000,
  }
}

/** A grant that waits for its first use, or for the requester's second factor, to start. */
export function waitsForUse(rule: Pick<AccessRule, 'clockStarts' | 'requesterMfa'> | undefined) {
  return rule?.clockStarts === 'first_use' || rule?.requesterMfa === true
}

/**
 * What approval writes on a pending access request: active now, or approved and waiting for its
 * start time or first use. A grant that waits for use may wait pending_ttl from its start.
 */
export function approvalChanges(
  request: Pick<AccessRequest, 'duration' | 'startAt' | 'pendingUntil'>,
  rule: Pick<AccessRule, 'clockStarts' | 'requesterMfa' | 'pendingTtl'>,
  now: number,
  auto: boolean,
): Partial<AccessRequest> {
  const startsLater = request.startAt !== null && request.startAt > now
  const waits = waitsForUse(rule)
  if (!startsLater && !waits) {
    return { ...startClock(request, now), approvedAt: now, autoApproved: auto }
  }
  return {
    state: 'approved',
    approvedAt: now,
    autoApproved: auto,
    pendingUntil: waits
      ? Math.max(now, request.startAt ?? now) + rule.pendingTtl * 1000
      : request.pendingUntil,
  }
}

/** A new request: pending approval, or (break-glass) active at once and flagged for review. */
export function newRequest(input: {
  kind: RequestKind
  rule: Pick<AccessRule, 'name' | 'pendingTtl'>
  path: string
  requester: Actor
  duration: number
  justification: string
  ticket: string
  now: number
  parentId?: string
  startAt?: number | null
}): NewRequest {
  const { kind, rule, now } = input
  const common = {
    kind,
    parentId: input.parentId ?? null,
    ruleName: rule.name,
    path: input.path,
    requester: input.requester,
    duration: input.duration,
    justification: input.justification,
    ticket: input.ticket,
    autoApproved: false,
    startAt: input.startAt ?? null,
  }
  if (kind === 'break_glass') {
    return {
      ...common,
      ...startClock(input, now),
      breakGlass: true,
      review: { required: true },
      pendingUntil: null,
      approvedAt: now,
    }
  }
  return {
    ...common,
    state: 'pending',
    breakGlass: false,
    review: null,
    pendingUntil: now + rule.pendingTtl * 1000,
    approvedAt: null,
    activatedAt: null,
    endsAt: null,
  }
}

/** True when a pending request's pending_ttl has run out (whether or not the sweeper saw it). */
export function pendingExpired(request: AccessRequest, now: number): boolean {
  return request.state === 'pending' && request.pendingUntil !== null && request.pendingUntil <= now
}

/** What the sweeper does with a request that came due: the transition, or nothing. */
export type SweepStep = 'expire' | 'start' | 'expire-unused' | 'end' | 'warn' | undefined

/**
 * The sweeper's decision for one request at `now`: a pending request past pending_ttl expires;
 * an approved one starts at its start time, or expires unused past pending_ttl when it waits for
 * use; an active one ends at its end, and is warned about once within `expiringSoonMs` of it.
 */
export function sweepStep(
  request: AccessRequest,
  rule: Pick<AccessRule, 'clockStarts' | 'requesterMfa'> | undefined,
  now: number,
  expiringSoonMs: number,
): SweepStep {
  switch (request.state) {
    case 'pending':
      return pendingExpired(request, now) ? 'expire' : undefined
    case 'approved': {
      if (request.kind === 'extension') return undefined
      const waits = waitsForUse(rule)
      if (!waits && request.startAt !== null && request.startAt <= now) return 'start'
      if (waits && request.pendingUntil !== null && request.pendingUntil <= now)
        return 'expire-unused'
      return undefined
    }
    case 'active':
      if (request.endsAt === null) return undefined
      if (request.endsAt <= now) return 'end'
      return request.endsAt - now <= expiringSoonMs ? 'warn' : undefined
    default:
      return undefined
  }
}
