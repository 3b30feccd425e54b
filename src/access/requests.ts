import { randomUUID } from 'node:crypto'
import { ApiError, badRequest, permissionDenied } from '../core/errors.js'
import { nowMs, type Storage } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    access_requests: RequestRow
    access_decisions: DecisionRow
    access_grant_leases: { lease_id: string; request_id: string; created_at: number }
  }
}

export type RequestState =
  'pending' | 'approved' | 'active' | 'denied' | 'expired' | 'cancelled' | 'ended'
export type RequestKind = 'access' | 'extension' | 'break_glass'

interface RequestRow {
  id: string
  kind: string
  parent_id: string | null
  rule_name: string
  path: string
  requester: string
  requester_info: string
  duration: number
  justification: string
  ticket: string
  state: string
  break_glass: number
  review: string | null
  auto_approved: number
  start_at: number | null
  pending_until: number | null
  approved_at: number | null
  activated_at: number | null
  ends_at: number | null
  ended_at: number | null
  deny_reason: string | null
  creds_issued: number
  sessions_seen: number
  warned_expiring: number
  created_at: number
  updated_at: number
}

interface DecisionRow {
  id: string
  request_id: string
  actor: string
  actor_info: string
  decision: string
  comment: string
  created_at: number
}

/** Who asked (or decided): an entity, or a token without one. No secret in here. */
export interface Actor {
  /** Entity id, or `token:<accessor>` for tokens without an entity. */
  key: string
  entityId: string
  displayName: string
  /**
   * Claims the auth method verified at login (CI run data: repository, ref, run_id, actor...;
   * a userpass username), never the caller-written token `meta`.
   */
  metadata: Record<string, string>
  /** Path of the auth mount that verified `metadata` (`auth/jwt/`), '' when none did. */
  authMount?: string
  /** The entity's metadata (written by identity administrators). */
  entityMetadata?: Record<string, string>
  groups: string[]
  /** A second factor was verified at the login of the token that acted. */
  mfa: boolean
}

export interface AccessRequest {
  id: string
  kind: RequestKind
  parentId: string | null
  ruleName: string
  path: string
  requester: Actor
  duration: number
  justification: string
  ticket: string
  state: RequestState
  breakGlass: boolean
  review: { required: boolean; reviewedBy?: string; note?: string; at?: number } | null
  autoApproved: boolean
  startAt: number | null
  pendingUntil: number | null
  approvedAt: number | null
  activatedAt: number | null
  endsAt: number | null
  endedAt: number | null
  denyReason: string | null
  credsIssued: number
  sessionsSeen: boolean
  createdAt: number
  updatedAt: number
}

export interface Decision {
  actor: Actor
  decision: 'approve' | 'deny' | 'review' | 'cancel' | 'end'
  comment: string
  createdAt: number
}

/** Storage of access requests, their decisions and the leases issued under them. */
export function createRequestStore(deps: { storage: Storage }) {
  const { db } = deps.storage

  const get = async (id: string): Promise<AccessRequest | undefined> => {
    if (typeof id !== 'string' || id.length > 64) return undefined
    const row = await db
      .selectFrom('access_requests')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row ? fromRow(row) : undefined
  }

  return {
    get,
    async require(id: string): Promise<AccessRequest> {
      const found = await get(id)
      if (!found) throw new ApiError(404, `no access request with id "${String(id).slice(0, 64)}"`)
      return found
    },

    async insert(
      input: Omit<
        AccessRequest,
        'id' | 'createdAt' | 'updatedAt' | 'credsIssued' | 'sessionsSeen' | 'endedAt' | 'denyReason'
      >,
    ): Promise<AccessRequest> {
      const now = nowMs()
      const request: AccessRequest = {
        ...input,
        id: randomUUID(),
        credsIssued: 0,
        sessionsSeen: false,
        endedAt: null,
        denyReason: null,
        createdAt: now,
        updatedAt: now,
      }
      await db.insertInto('access_requests').values(toRow(request)).execute()
      return request
    },

    /**
     * Moves a request from one of `from` to a new state with the given changes, only if it is
     * still in one of `from` (so two nodes or two approvers cannot both apply a transition).
     */
    async transition(
      id: string,
      from: RequestState[],
      changes: Partial<AccessRequest>,
    ): Promise<boolean> {
      const set: Partial<RequestRow> = { updated_at: nowMs() }
      if (changes.state) set.state = changes.state
      if (changes.approvedAt !== undefined) set.approved_at = changes.approvedAt
      if (changes.activatedAt !== undefined) set.activated_at = changes.activatedAt
      if (changes.endsAt !== undefined) set.ends_at = changes.endsAt
      if (changes.endedAt !== undefined) set.ended_at = changes.endedAt
      if (changes.pendingUntil !== undefined) set.pending_until = changes.pendingUntil
      if (changes.denyReason !== undefined) set.deny_reason = changes.denyReason
      if (changes.autoApproved !== undefined) set.auto_approved = changes.autoApproved ? 1 : 0
      if (changes.review !== undefined)
        set.review = changes.review ? JSON.stringify(changes.review) : null
      const result = await db
        .updateTable('access_requests')
        .set(set)
        .where('id', '=', id)
        .where('state', 'in', from)
        .executeTakeFirst()
      return Number(result.numUpdatedRows) > 0
    },

    async setReview(id: string, review: AccessRequest['review']): Promise<void> {
      await db
        .updateTable('access_requests')
        .set({ review: JSON.stringify(review), updated_at: nowMs() })
        .where('id', '=', id)
        .execute()
    },

    async extendEnd(id: string, seconds: number): Promise<void> {
      await db
        .updateTable('access_requests')
        .set((eb) => ({
          ends_at: eb('ends_at', '+', seconds * 1000),
          duration: eb('duration', '+', seconds),
          warned_expiring: 0,
          updated_at: nowMs(),
        }))
        .where('id', '=', id)
        .execute()
    },

    async markWarned(id: string): Promise<boolean> {
      const r = await db
        .updateTable('access_requests')
        .set({ warned_expiring: 1 })
        .where('id', '=', id)
        .where('warned_expiring', '=', 0)
        .executeTakeFirst()
      return Number(r.numUpdatedRows) > 0
    },

    async recordCredentials(id: string, leaseId: string): Promise<void> {
      await db
        .insertInto('access_grant_leases')
        .values({ lease_id: leaseId, request_id: id, created_at: nowMs() })
        .execute()
      await db
        .updateTable('access_requests')
        .set((eb) => ({ creds_issued: eb('creds_issued', '+', 1) }))
        .where('id', '=', id)
        .execute()
    },

    async markSessionsSeen(id: string): Promise<void> {
      await db
        .updateTable('access_requests')
        .set({ sessions_seen: 1 })
        .where('id', '=', id)
        .execute()
    },

    async leasesOf(id: string): Promise<string[]> {
      const rows = await db
        .selectFrom('access_grant_leases')
        .select('lease_id')
        .where('request_id', '=', id)
        .execute()
      return rows.map((r) => r.lease_id)
    },

    async addDecision(
      requestId: string,
      actor: Actor,
      decision: Decision['decision'],
      comment: string,
    ): Promise<void> {
      try {
        await db
          .insertInto('access_decisions')
          .values({
            id: randomUUID(),
            request_id: requestId,
            actor: actor.key,
            actor_info: JSON.stringify(actor),
            decision,
            comment,
            created_at: nowMs(),
          })
          .execute()
      } catch {
        throw badRequest(`you have already recorded "${decision}" on this request`)
      }
    },

    async decisions(requestId: string): Promise<Decision[]> {
      const rows = await db
        .selectFrom('access_decisions')
        .selectAll()
        .where('request_id', '=', requestId)
        .orderBy('created_at')
        .execute()
      return rows.map((r) => ({
        actor: JSON.parse(r.actor_info) as Actor,
        decision: r.decision as Decision['decision'],
        comment: r.comment,
        createdAt: Number(r.created_at),
      }))
    },

    /** Grants a requester holds for a path right now (active, or approved awaiting first use). */
    async liveGrants(requester: string): Promise<AccessRequest[]> {
      const rows = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('requester', '=', requester)
        .where('kind', 'in', ['access', 'break_glass'])
        .where('state', 'in', ['active', 'approved'])
        .execute()
      return rows.map(fromRow)
    },

    async list(filter: {
      state?: RequestState
      requester?: string
      limit?: number
    }): Promise<AccessRequest[]> {
      let q = db.selectFrom('access_requests').selectAll()
      if (filter.state) q = q.where('state', '=', filter.state)
      if (filter.requester) q = q.where('requester', '=', filter.requester)
      const rows = await q
        .orderBy('created_at', 'desc')
        .limit(filter.limit ?? 500)
        .execute()
      return rows.map(fromRow)
    },

    /**
     * Requests in `state` whose `column` time has come by `before`, soonest first: what the
     * sweeper takes up, through the (state, column) indexes, without scanning the others.
     */
    async due(
      state: RequestState,
      column: 'pending_until' | 'start_at' | 'ends_at',
      before: number,
      limit: number,
    ): Promise<AccessRequest[]> {
      const rows = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('state', '=', state)
        .where(column, '<=', before)
        .orderBy(column)
        .limit(limit)
        .execute()
      return rows.map(fromRow)
    },

    /** Active grants that issued credentials and showed no session on their target yet. */
    async unsampled(limit: number): Promise<AccessRequest[]> {
      const rows = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('state', '=', 'active')
        .where('sessions_seen', '=', 0)
        .where('creds_issued', '>', 0)
        .limit(limit)
        .execute()
      return rows.map(fromRow)
    },

    async pendingFor(parentId: string): Promise<AccessRequest[]> {
      const rows = await db
        .selectFrom('access_requests')
        .selectAll()
        .where('parent_id', '=', parentId)
        .where('state', '=', 'pending')
        .execute()
      return rows.map(fromRow)
    },
  }
}

export type RequestStore = ReturnType<typeof createRequestStore>

/**
 * Whether the approvals satisfy every factor, each approver counting for at most one factor
 * (so one person in two groups cannot stand in for two teams).
 */
export function approvalsSatisfied(
  factors: Array<{ group: string; count: number }>,
  approvers: Actor[],
): boolean {
  const slots: string[] = factors.flatMap((f) => Array.from({ length: f.count }, () => f.group))
  if (slots.length === 0) return true
  if (approvers.length < slots.length) return false
  const used = new Set<number>()
  const fill = (i: number): boolean => {
    if (i === slots.length) return true
    for (let a = 0; a < approvers.length; a++) {
      if (used.has(a) || !approvers[a]!.groups.includes(slots[i]!)) continue
      used.add(a)
      if (fill(i + 1)) return true
      used.delete(a)
    }
    return false
  }
  return fill(0)
}

/**
 * How many approval slots these approvers fill at most, each person (entity) filling one slot of
 * a factor whose group they are in (a maximum matching, by augmenting paths).
 */
export function filledSlots(
  factors: Array<{ group: string; count: number }>,
  approvers: Actor[],
): number {
  const slots: string[] = factors.flatMap((f) => Array.from({ length: f.count }, () => f.group))
  const seenPeople = new Set<string>()
  const people = approvers.filter((a) => {
    const person = a.entityId || a.key
    return !seenPeople.has(person) && seenPeople.add(person)
  })
  const holder: number[] = slots.map(() => -1)
  const place = (a: number, tried: Set<number>): boolean => {
    for (let s = 0; s < slots.length; s++) {
      if (tried.has(s) || !people[a]!.groups.includes(slots[s]!)) continue
      tried.add(s)
      if (holder[s] === -1 || place(holder[s]!, tried)) {
        holder[s] = a
        return true
      }
    }
    return false
  }
  let filled = 0
  for (let a = 0; a < people.length; a++) if (place(a, new Set())) filled++
  return filled
}

/**
 * Why an approval by `actor` would change nothing, or undefined when it counts: it must fill a
 * slot of the rule's factors that the approvals given so far (`given`) leave open. A rule without
 * factors (approved only by root, when no auto-approval matched) takes any approval.
 */
export function uncountedApproval(
  rule: { name: string; approvals: Array<{ group: string; count: number }> },
  given: Actor[],
  actor: Actor,
): string | undefined {
  const factors = rule.approvals
  if (factors.length === 0) return undefined
  const groups = [...new Set(factors.map((f) => f.group))]
  const mine = groups.filter((g) => actor.groups.includes(g))
  if (mine.length === 0) {
    return `you are in none of the groups of rule "${rule.name}"'s approvals (${groups.join(', ')})`
  }
  const before = filledSlots(factors, given)
  if (filledSlots(factors, [...given, actor]) > before) return undefined
  // The groups whose approval would still count: a stand-in member of that group alone would.
  const needed = groups.filter(
    (g) =>
      filledSlots(factors, [
        ...given,
        { key: '\0', entityId: '\0', displayName: '', metadata: {}, groups: [g], mfa: false },
      ]) > before,
  )
  return `rule "${rule.name}" already has the approvals your groups (${mine.join(', ')}) can give; it still needs ${needed.join(', ') || 'nothing more'}`
}

/** Refuses an action a requester may not take on someone else's request. */
export function requireOwner(request: AccessRequest, actor: Actor): void {
  if (request.requester.key !== actor.key) throw permissionDenied()
}

function toRow(r: AccessRequest): RequestRow {
  return {
    id: r.id,
    kind: r.kind,
    parent_id: r.parentId,
    rule_name: r.ruleName,
    path: r.path,
    requester: r.requester.key,
    requester_info: JSON.stringify(r.requester),
    duration: r.duration,
    justification: r.justification,
    ticket: r.ticket,
    state: r.state,
    break_glass: r.breakGlass ? 1 : 0,
    review: r.review ? JSON.stringify(r.review) : null,
    auto_approved: r.autoApproved ? 1 : 0,
    start_at: r.startAt,
    pending_until: r.pendingUntil,
    approved_at: r.approvedAt,
    activated_at: r.activatedAt,
    ends_at: r.endsAt,
    ended_at: r.endedAt,
    deny_reason: r.denyReason,
    creds_issued: r.credsIssued,
    sessions_seen: r.sessionsSeen ? 1 : 0,
    warned_expiring: 0,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  }
}

const num = (v: number | null) => (v === null ? null : Number(v))

function fromRow(r: RequestRow): AccessRequest {
  return {
    id: r.id,
    kind: r.kind as RequestKind,
    parentId: r.parent_id,
    ruleName: r.rule_name,
    path: r.path,
    requester: JSON.parse(r.requester_info) as Actor,
    duration: Number(r.duration),
    justification: r.justification,
    ticket: r.ticket,
    state: r.state as RequestState,
    breakGlass: Number(r.break_glass) === 1,
    review: r.review ? (JSON.parse(r.review) as AccessRequest['review']) : null,
    autoApproved: Number(r.auto_approved) === 1,
    startAt: num(r.start_at),
    pendingUntil: num(r.pending_until),
    approvedAt: num(r.approved_at),
    activatedAt: num(r.activated_at),
    endsAt: num(r.ends_at),
    endedAt: num(r.ended_at),
    denyReason: r.deny_reason,
    credsIssued: Number(r.creds_issued),
    sessionsSeen: Number(r.sessions_seen) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }
}
