import { describe, expect, it } from 'vitest'
import { sql } from 'kysely'
import {
  approvalChanges,
  newRequest,
  pendingExpired,
  startClock,
  sweepStep,
  waitsForUse,
} from '../../src/access/transitions.js'
import { createRequestStore, type AccessRequest, type Actor } from '../../src/access/requests.js'
import { freshStorage } from '../support/databases.js'

/** The state machine of access requests, as pure functions: no server, no storage. */

const NOW = Date.UTC(2030, 0, 1, 12)
const actor: Actor = {
  key: 'e1',
  entityId: 'e1',
  displayName: 'ana',
  metadata: {},
  groups: [],
  mfa: false,
}
const rule = {
  name: 'prod',
  pendingTtl: 600,
  clockStarts: 'approval' as const,
  requesterMfa: false,
}

function request(changes: Partial<AccessRequest> = {}): AccessRequest {
  return {
    ...newRequest({
      kind: 'access',
      rule,
      path: 'database/creds/prod-ro',
      requester: actor,
      duration: 900,
      justification: 'incident',
      ticket: '',
      now: NOW,
    }),
    id: 'r1',
    credsIssued: 0,
    sessionsSeen: false,
    endedAt: null,
    denyReason: null,
    createdAt: NOW,
    updatedAt: NOW,
    ...changes,
  }
}

describe('access request transitions', () => {
  it('files a request pending until its rule’s pending_ttl, and break-glass active at once for review', () => {
    const pending = request()
    expect(pending).toMatchObject({ state: 'pending', pendingUntil: NOW + 600_000, endsAt: null })
    const glass = newRequest({
      kind: 'break_glass',
      rule,
      path: pending.path,
      requester: actor,
      duration: 900,
      justification: 'outage',
      ticket: '',
      now: NOW,
    })
    expect(glass).toMatchObject({
      state: 'active',
      breakGlass: true,
      review: { required: true },
      approvedAt: NOW,
      activatedAt: NOW,
      endsAt: NOW + 900_000,
      pendingUntil: null,
    })
  })

  it('starts the clock at approval, or waits for the start time, or for first use / a second factor', () => {
    expect(approvalChanges(request(), rule, NOW, false)).toEqual({
      ...startClock({ duration: 900 }, NOW),
      approvedAt: NOW,
      autoApproved: false,
    })
    const later = request({ startAt: NOW + 3_600_000 })
    expect(approvalChanges(later, rule, NOW, true)).toEqual({
      state: 'approved',
      approvedAt: NOW,
      autoApproved: true,
      pendingUntil: later.pendingUntil,
    })
    const firstUse = { ...rule, clockStarts: 'first_use' as const }
    expect(waitsForUse(firstUse)).toBe(true)
    expect(waitsForUse({ ...rule, requesterMfa: true })).toBe(true)
    expect(waitsForUse(undefined)).toBe(false)
    // Waiting for use (or activation) may last pending_ttl from the start, not from approval.
    expect(approvalChanges(later, firstUse, NOW, false).pendingUntil).toBe(
      NOW + 3_600_000 + 600_000,
    )
  })

  it('tells the sweeper what came due, and nothing before it is due', () => {
    const soon = 300_000
    expect(sweepStep(request(), rule, NOW, soon)).toBeUndefined()
    expect(pendingExpired(request(), NOW + 600_000)).toBe(true)
    expect(sweepStep(request(), rule, NOW + 600_000, soon)).toBe('expire')
    const approved = request({ state: 'approved', startAt: NOW + 60_000 })
    expect(sweepStep(approved, rule, NOW, soon)).toBeUndefined()
    expect(sweepStep(approved, rule, NOW + 60_000, soon)).toBe('start')
    const unused = request({ state: 'approved', pendingUntil: NOW })
    expect(sweepStep(unused, { ...rule, clockStarts: 'first_use' }, NOW, soon)).toBe(
      'expire-unused',
    )
    expect(sweepStep({ ...approved, kind: 'extension' }, rule, NOW + 60_000, soon)).toBeUndefined()
    const active = request({ state: 'active', endsAt: NOW + 900_000 })
    expect(sweepStep(active, rule, NOW, soon)).toBeUndefined()
    expect(sweepStep(active, rule, NOW + 900_000 - soon, soon)).toBe('warn')
    expect(sweepStep(active, rule, NOW + 900_000, soon)).toBe('end')
    expect(sweepStep(request({ state: 'denied' }), rule, NOW + 10 ** 9, soon)).toBeUndefined()
  })
})

describe('the sweeper’s storage queries', () => {
  it('return only what is due, soonest first, through the (state, deadline) indexes', async () => {
    const fresh = await freshStorage('sqlite')
    try {
      const store = createRequestStore({ storage: fresh.storage })
      for (let i = 0; i < 50; i++) {
        await store.insert({ ...request(), pendingUntil: NOW + (i - 2) * 1000 })
      }
      const due = await store.due('pending', 'pending_until', NOW, 10)
      expect(due.map((r) => r.pendingUntil)).toEqual([NOW - 2000, NOW - 1000, NOW])
      for (const column of ['pending_until', 'start_at', 'ends_at'] as const) {
        const plan = await sql<{ detail: string }>`explain query plan select * from access_requests
          where state = 'pending' and ${sql.ref(column)} <= ${NOW} order by ${sql.ref(column)}`.execute(
          fresh.storage.db,
        )
        // The deadline is part of the index search, not filtered row by row after `state`.
        expect(plan.rows.map((r) => r.detail).join(' '), column).toContain(
          `(state=? AND ${column}<?)`,
        )
      }
    } finally {
      await fresh.drop()
    }
  })
})
