import type { Logger } from '../core/logger.js'
import { nowMs } from '../storage/storage.js'
import type { Grants } from './grants.js'
import type { Notifiers } from './notifiers.js'
import type { AccessRequest, RequestStore } from './requests.js'
import type { RuleStore } from './rules.js'
import { startClock, sweepStep } from './transitions.js'

export interface SweeperDeps {
  rules: Pick<RuleStore, 'get'>
  requests: Pick<RequestStore, 'due' | 'unsampled' | 'transition' | 'markWarned'>
  notifiers: Pick<Notifiers, 'deliverDue'>
  grants: Pick<Grants, 'endGrant' | 'notify'>
  sampleSessions: (r: AccessRequest) => Promise<void>
  logger: Logger
  /** How long before the end an `expiring_soon` event is sent (ms, default 5 min). */
  expiringSoonMs?: number
}

/** Most requests of one kind the sweeper takes up in one pass (the rest wait for the next). */
const BATCH = 500

/**
 * The background work of JIT access, one pass at a time on each node and safe on several nodes
 * at once (every transition is a compare-and-set on the request's state). It asks storage only
 * for what is due, through indexes: pending requests past pending_ttl, approved grants whose
 * start time came or whose wait for first use ran out, active grants ending (or ending soon);
 * then samples evidence of use and delivers notifications.
 */
export function createSweeper(deps: SweeperDeps) {
  const { rules, requests, grants } = deps
  const expiringSoonMs = deps.expiringSoonMs ?? 5 * 60_000
  let ticking: Promise<void> = Promise.resolve()

  async function pass(): Promise<void> {
    const now = nowMs()
    const due = [
      ...(await requests.due('pending', 'pending_until', now, BATCH)),
      ...(await requests.due('approved', 'start_at', now, BATCH)),
      ...(await requests.due('approved', 'pending_until', now, BATCH)),
      ...(await requests.due('active', 'ends_at', now + expiringSoonMs, BATCH)),
    ]
    const seen = new Set<string>()
    for (const r of due) {
      if (seen.has(r.id)) continue
      seen.add(r.id)
      const rule = r.state === 'pending' ? undefined : await rules.get(r.ruleName)
      switch (sweepStep(r, rule, now, expiringSoonMs)) {
        case 'expire':
          await requests.transition(r.id, ['pending'], { state: 'expired', endedAt: now })
          break
        case 'start':
          await requests.transition(r.id, ['approved'], startClock(r, now))
          break
        case 'expire-unused':
          await grants.endGrant(r, 'expired', ['approved'])
          break
        case 'end':
          await grants.endGrant(r, 'ended', ['active'])
          break
        case 'warn':
          if (await requests.markWarned(r.id)) await grants.notify(rule, 'expiring_soon', r)
          break
      }
    }
    for (const r of await requests.unsampled(BATCH)) await deps.sampleSessions(r)
    await deps.notifiers.deliverDue()
  }

  return {
    /**
     * One pass; passes on one node run one after the other: a caller waits for the pass in
     * flight, then gets a full pass of its own.
     */
    tick(): Promise<void> {
      const next = ticking.then(pass)
      ticking = next.catch(() => {})
      return next
    },
  }
}
