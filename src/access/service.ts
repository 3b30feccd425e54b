import { ApiError, badRequest, permissionDenied } from '../core/errors.js'
import type { RequestContext } from '../core/core.js'
import type { CoreServices } from '../core/services.js'
import type { IdentityStore } from '../identity/types.js'
import type { LogicalResponse } from '../core/request.js'
import { grantHolderOf, type TokenEntry } from '../core/tokens.js'
import { parseDuration } from '../core/duration.js'
import { nowMs } from '../storage/storage.js'
import { autoApproves, type AccessRule, type RuleStore } from './rules.js'
import {
  approvalsSatisfied,
  pendingExpired,
  requireOwner,
  uncountedApproval,
  type AccessRequest,
  type Actor,
  type RequestStore,
} from './requests.js'
import type { AccessEvent, Notifiers } from './notifiers.js'

export interface AccessOptions {
  /** How long before the end an `expiring_soon` event is sent (ms, default 5 min). */
  expiringSoonMs?: number
}

/**
 * JIT access: the life of a request, from creation to the end of its grant.
 *
 *   pending ──approve×N / auto──► approved ──start/first use──► active ──end/expiry──► ended
 *      │                              │                            └─ its leases are revoked
 *      ├─deny──► denied               └─(first use never came)──► expired
 *      ├─cancel──► cancelled
 *      └─(pending too long)──► expired
 *
 * Break-glass skips approval (active at once, flagged for review). An extension is its own
 * request for the added time only; once approved it moves the parent grant's end.
 */
export function createAccessService(deps: {
  core: Pick<CoreServices, 'aclFor' | 'leases' | 'logger' | 'mounts' | 'secondFactors'> & {
    identity: Pick<IdentityStore, 'entity' | 'groupsFor'>
  }
  rules: RuleStore
  requests: RequestStore
  notifiers: Notifiers
  options?: AccessOptions
}) {
  const { core, rules, requests, notifiers } = deps
  const expiringSoonMs = deps.options?.expiringSoonMs ?? 5 * 60_000
  let ticking: Promise<void> = Promise.resolve()

  /** Who is asking: the grant holder, the entity's groups and what the server verified. */
  async function actorOf(token: TokenEntry): Promise<Actor> {
    const entity = token.entityId ? await core.identity.entity(token.entityId) : undefined
    const groups = token.entityId ? await core.identity.groupsFor(token.entityId) : []
    const loginMount = token.login ? core.mounts.byAccessor(token.login.mount)?.entry.path : ''
    return {
      key: grantHolderOf(token),
      entityId: token.entityId,
      displayName: token.displayName,
      metadata: token.login?.claims ?? {},
      authMount: loginMount ?? '',
      entityMetadata: entity?.metadata ?? {},
      groups: groups.map((g) => g.name),
      mfa: token.mfa === 'totp',
    }
  }

  /** Only verified facts reach auto-approval (never token `meta` or request bodies). */
  const verified = (actor: Actor) => ({
    groups: actor.groups,
    claims: actor.metadata,
    authMount: actor.authMount ?? '',
    entityMetadata: actor.entityMetadata ?? {},
  })

  /** One person is one entity, across every alias; a token without one is only itself. */
  const personOf = (actor: Actor) => actor.entityId || actor.key
  const samePerson = (a: Actor, b: Actor) => a.key === b.key || personOf(a) === personOf(b)

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

  /**
   * The request as the API shows it. With a `viewer` (a GET by someone who may see it), also
   * what an approver needs to decide: the target, and the requester's recent requests that this
   * viewer may see too (never another rule's justification). Notifiers get the plain view.
   */
  async function view(
    request: AccessRequest,
    viewer?: TokenEntry,
  ): Promise<Record<string, unknown>> {
    const decisions = await requests.decisions(request.id)
    const out: Record<string, unknown> = {
      id: request.id,
      kind: request.kind,
      parent_id: request.parentId,
      rule: request.ruleName,
      path: request.path,
      state: request.state,
      requester: {
        id: request.requester.key,
        entity_id: request.requester.entityId,
        display_name: request.requester.displayName,
        metadata: request.requester.metadata,
        groups: request.requester.groups,
      },
      duration: request.duration,
      justification: request.justification,
      ticket: request.ticket,
      break_glass: request.breakGlass,
      review: request.review,
      auto_approved: request.autoApproved,
      start_time: iso(request.startAt),
      pending_until: iso(request.pendingUntil),
      approved_at: iso(request.approvedAt),
      activated_at: iso(request.activatedAt),
      ends_at: iso(request.endsAt),
      ended_at: iso(request.endedAt),
      deny_reason: request.denyReason,
      decisions: decisions.map((d) => ({
        by: d.actor.displayName,
        by_id: d.actor.key,
        decision: d.decision,
        comment: d.comment,
        at: iso(d.createdAt),
      })),
      usage: {
        credentials_issued: request.credsIssued,
        sessions_seen: request.sessionsSeen,
        used: request.credsIssued > 0,
      },
      created_at: iso(request.createdAt),
    }
    if (viewer) {
      const hit = core.mounts.match(request.path)
      if (hit?.backend.describeAccess) {
        out.target =
          (await hit.backend
            .describeAccess(request.path.slice(hit.entry.path.length))
            .catch(() => undefined)) ?? null
      }
      const recent = await requests.list({ requester: request.requester.key, limit: 20 })
      const { sees } = await viewerOf(viewer)
      const shown: AccessRequest[] = []
      for (const r of recent) {
        if (shown.length === 5) break
        if (r.id !== request.id && (await sees(r))) shown.push(r)
      }
      out.requester_recent = shown.map((r) => ({
        id: r.id,
        path: r.path,
        state: r.state,
        created_at: iso(r.createdAt),
        justification: r.justification,
      }))
    }
    return out
  }

  function checkText(rule: AccessRule, justification: string, ticket: string) {
    if (justification.length > 4096 || ticket.length > 256)
      throw badRequest('justification or ticket is too long')
    if (rule.requireJustification && justification.trim() === '')
      throw badRequest('a justification is required')
    if (rule.justificationPattern && !rule.justificationPattern.test(justification)) {
      throw badRequest(
        `justification does not match the required pattern ${rule.justificationPattern.source}`,
      )
    }
    if (rule.requireTicket && ticket.trim() === '') throw badRequest('a ticket is required')
    if (ticket && rule.ticketPattern && !rule.ticketPattern.test(ticket)) {
      throw badRequest(`ticket does not match the required pattern ${rule.ticketPattern.source}`)
    }
  }

  async function guardedRule(path: string): Promise<AccessRule> {
    const rule = await rules.forPath(path)
    if (!rule) throw badRequest(`no access rule guards "${path}": it needs no request`)
    return rule
  }

  /** Tokens must be eligible (their policies allow the path) before they may ask for it. */
  async function checkEligible(token: TokenEntry, path: string) {
    const { acl } = await core.aclFor(token)
    const caps = acl.capabilities(path)
    if (caps.includes('deny') || caps.length === 0) {
      throw badRequest(`your policies do not make you eligible for "${path}"`)
    }
  }

  function parseWindow(value: unknown, max: number, field: string): number {
    if (value === undefined || value === '' || value === null)
      throw badRequest(`${field} is required`)
    const seconds = parseDuration(value, field)
    if (seconds <= 0) throw badRequest(`${field} must be positive`)
    if (seconds > max) throw badRequest(`${field} exceeds the rule's maximum of ${max}s`)
    return seconds
  }

  /** Approves: the clock starts now (or at the requested start), or at first use. */
  async function approve(
    request: AccessRequest,
    rule: AccessRule,
    auto: boolean,
  ): Promise<AccessRequest> {
    const now = nowMs()
    if (request.kind === 'extension') {
      const ok = await requests.transition(request.id, ['pending'], {
        state: 'approved',
        approvedAt: now,
        autoApproved: auto,
      })
      if (!ok) throw badRequest('the request is no longer pending')
      await applyExtension(request)
      const updated = await requests.require(request.id)
      await notify(rule, 'approved', updated)
      return updated
    }
    const startsLater = request.startAt !== null && request.startAt > now
    const waitsForUse = rule.clockStarts === 'first_use' || rule.requesterMfa
    const changes: Partial<AccessRequest> =
      startsLater || waitsForUse
        ? {
            state: 'approved',
            approvedAt: now,
            autoApproved: auto,
            // A grant that waits for use (or activation) may wait pending_ttl from its start.
            pendingUntil: waitsForUse
              ? Math.max(now, request.startAt ?? now) + rule.pendingTtl * 1000
              : request.pendingUntil,
          }
        : {
            state: 'active',
            approvedAt: now,
            activatedAt: now,
            endsAt: now + request.duration * 1000,
            autoApproved: auto,
          }
    const ok = await requests.transition(request.id, ['pending'], changes)
    if (!ok) throw badRequest('the request is no longer pending')
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
      await core.leases
        .raiseCap(await requests.leasesOf(parent.id), grown.endsAt)
        .catch((err) =>
          core.logger.warn({ err: (err as Error).name }, 'extending grant leases failed'),
        )
    }
  }

  async function endGrant(
    request: AccessRequest,
    state: 'ended' | 'expired' | 'cancelled',
    from: AccessRequest['state'][],
  ) {
    if (request.state === 'active' && !request.sessionsSeen && request.credsIssued > 0)
      await sampleSessions(request)
    const ok = await requests.transition(request.id, from, { state, endedAt: nowMs() })
    if (!ok) return false
    for (const leaseId of await requests.leasesOf(request.id)) {
      await core.leases
        ?.revoke(leaseId)
        .catch((err) =>
          core.logger.warn({ err: (err as Error).name }, 'grant lease revocation failed'),
        )
    }
    if (state === 'ended')
      await notify(await rules.get(request.ruleName), 'ended', await requests.require(request.id))
    return true
  }

  /**
   * A decision on a request past its pending_ttl is refused (400) and the request expires now,
   * so none lands between the deadline and the worker's next tick.
   */
  /**
   * The approvals that count: each person once, whichever alias or token they approved with,
   * and never the requester's own unless the rule allows self-approval.
   */
  function countedApprovers(
    rule: AccessRule,
    request: AccessRequest,
    decisions: Array<{ decision: string; actor: Actor }>,
  ): Actor[] {
    const seen = new Set<string>()
    return decisions
      .filter(
        (d) =>
          d.decision === 'approve' &&
          (rule.allowSelfApproval || !samePerson(d.actor, request.requester)),
      )
      .map((d) => d.actor)
      .filter((a) => !seen.has(personOf(a)) && seen.add(personOf(a)))
  }

  async function refuseIfPendingExpired(request: AccessRequest) {
    if (!pendingExpired(request, nowMs())) return
    await requests.transition(request.id, ['pending'], { state: 'expired', endedAt: nowMs() })
    throw badRequest(
      `the request expired at ${iso(request.pendingUntil)}: it was pending longer than rule "${request.ruleName}"'s pending_ttl`,
    )
  }

  /**
   * What a token may see: its own requests and those it may decide; every request only with
   * `sudo` on `sys/access/requests` (auditors), or root.
   */
  async function viewerOf(token: TokenEntry) {
    const actor = await actorOf(token)
    const { acl } = await core.aclFor(token)
    const seesAll = acl.root || acl.capabilities('sys/access/requests').includes('sudo')
    const ruleOf = new Map<string, Promise<AccessRule | undefined>>()
    const decides = async (r: AccessRequest) => {
      if (!ruleOf.has(r.ruleName)) ruleOf.set(r.ruleName, rules.get(r.ruleName))
      return approverOf(await ruleOf.get(r.ruleName), actor, token)
    }
    return {
      actor,
      seesAll,
      decides,
      async sees(r: AccessRequest): Promise<boolean> {
        return seesAll || r.requester.key === actor.key || (await decides(r))
      },
    }
  }

  return {
    view,
    actorOf,

    /** A request the token may see; someone else's is a 403 (ids are random: no oracle). */
    async visible(token: TokenEntry, id: string): Promise<AccessRequest> {
      const request = await requests.require(id)
      if (!(await (await viewerOf(token)).sees(request))) throw permissionDenied()
      return request
    },

    /** `LIST sys/access/requests`: `mine`, `approvable`, or everything the token may see. */
    async list(
      token: TokenEntry,
      filter: { state?: AccessRequest['state']; filter: string },
    ): Promise<AccessRequest[]> {
      const viewer = await viewerOf(token)
      const { actor } = viewer
      if (!['', 'mine', 'approvable', 'all'].includes(filter.filter))
        throw badRequest('filter must be "mine", "approvable" or "all"')
      if (filter.filter === 'all' && !viewer.seesAll)
        throw new ApiError(
          403,
          'filter=all needs the sudo capability on sys/access/requests; without it you see your own requests and those you may decide',
        )
      const list = await requests.list({
        state: filter.state,
        requester: filter.filter === 'mine' ? actor.key : undefined,
      })
      const out: AccessRequest[] = []
      for (const r of list) {
        if (filter.filter === 'approvable') {
          if (r.state !== 'pending' || samePerson(r.requester, actor)) continue
          const rule = await rules.get(r.ruleName)
          if (!rule?.approvals.some((f) => actor.groups.includes(f.group))) continue
        } else if (!(await viewer.sees(r))) continue
        out.push(r)
      }
      return out
    },

    async create(token: TokenEntry, input: Record<string, unknown>): Promise<AccessRequest> {
      const path = concretePath(input.path)
      const rule = await guardedRule(path)
      await checkEligible(token, path)
      const duration = parseWindow(input.duration ?? input.ttl, rule.maxDuration, 'duration')
      const justification = typeof input.justification === 'string' ? input.justification : ''
      const ticket = typeof input.ticket === 'string' ? input.ticket : ''
      checkText(rule, justification, ticket)
      let startAt: number | null = null
      if (input.start_time !== undefined && input.start_time !== '') {
        startAt = Date.parse(String(input.start_time))
        if (Number.isNaN(startAt)) throw badRequest('start_time must be an RFC 3339 time')
        if (startAt < nowMs() - 60_000) throw badRequest('start_time is in the past')
        if (startAt > nowMs() + 30 * 86400_000)
          throw badRequest('start_time is more than 30 days away')
      }
      const requester = await actorOf(token)
      const request = await requests.insert({
        kind: 'access',
        parentId: null,
        ruleName: rule.name,
        path,
        requester,
        duration,
        justification,
        ticket,
        state: 'pending',
        breakGlass: false,
        review: null,
        autoApproved: false,
        startAt,
        pendingUntil: nowMs() + rule.pendingTtl * 1000,
        approvedAt: null,
        activatedAt: null,
        endsAt: null,
      })
      await notify(rule, 'created', request)
      const auto = rule.autoApprove.some((c) =>
        autoApproves(c, {
          ...verified(requester),
          duration,
          at: new Date(),
        }),
      )
      return auto ? approve(request, rule, true) : request
    },

    async decide(
      token: TokenEntry,
      id: string,
      decision: 'approve' | 'deny',
      comment: string,
    ): Promise<AccessRequest> {
      const request = await requests.require(id)
      const rule = await rules.get(request.ruleName)
      const actor = await actorOf(token)
      // Who may decide comes first: someone who may not learns nothing of the request's state,
      // and cannot move it (to expired) either.
      if (samePerson(actor, request.requester) && !rule?.allowSelfApproval) {
        throw new ApiError(403, 'you may not approve or deny your own request')
      }
      if (!approverOf(rule, actor, token)) {
        throw new ApiError(403, 'you are not an approver for this request')
      }
      await refuseIfPendingExpired(request)
      if (request.state !== 'pending')
        throw badRequest(`the request is ${request.state}, not pending`)
      if (!rule) throw badRequest(`the rule "${request.ruleName}" no longer exists`)
      if (rule.approverMfa && !actor.mfa)
        throw new ApiError(403, 'approvers of this rule must log in with a second factor')
      if (comment.length > 4096) throw badRequest('comment is too long')
      if (decision === 'deny') {
        if (!comment.trim()) throw badRequest('a reason is required to deny a request')
        await requests.addDecision(id, actor, 'deny', comment)
        const ok = await requests.transition(id, ['pending'], {
          state: 'denied',
          denyReason: comment,
        })
        if (!ok) throw badRequest('the request is no longer pending')
        const denied = await requests.require(id)
        await notify(rule, 'denied', denied)
        return denied
      }
      const previous = await requests.decisions(id)
      if (previous.some((d) => d.decision === 'approve' && samePerson(d.actor, actor))) {
        throw badRequest('you have already approved this request')
      }
      const uncounted = uncountedApproval(rule, countedApprovers(rule, request, previous), actor)
      if (uncounted) throw new ApiError(403, `your approval would not count: ${uncounted}`)
      await requests.addDecision(id, actor, 'approve', comment)
      const approvers = countedApprovers(rule, request, await requests.decisions(id))
      if (approvalsSatisfied(rule.approvals, approvers)) return approve(request, rule, false)
      return requests.require(id)
    },

    async cancel(token: TokenEntry, id: string): Promise<AccessRequest> {
      const request = await requests.require(id)
      const actor = await actorOf(token)
      requireOwner(request, actor)
      await refuseIfPendingExpired(request)
      if (request.state !== 'pending' && request.state !== 'approved') {
        throw badRequest(
          `the request is ${request.state}; only pending or approved requests can be cancelled`,
        )
      }
      await requests.addDecision(id, actor, 'cancel', '')
      await endGrant(request, 'cancelled', ['pending', 'approved'])
      return requests.require(id)
    },

    /** Ends a grant now: its credentials are revoked and their sessions killed. */
    async end(token: TokenEntry, id: string): Promise<AccessRequest> {
      const request = await requests.require(id)
      const actor = await actorOf(token)
      const rule = await rules.get(request.ruleName)
      const isApprover = approverOf(rule, actor, token)
      if (actor.key !== request.requester.key && !isApprover) throw permissionDenied()
      if (request.state !== 'active' && request.state !== 'approved') {
        throw badRequest(
          `the request is ${request.state}; only approved or active grants can be ended`,
        )
      }
      await requests.addDecision(id, actor, 'end', '')
      await endGrant(request, 'ended', ['active', 'approved'])
      return requests.require(id)
    },

    /** Asks for more time on a live grant; only the added time goes through approval. */
    async extend(
      token: TokenEntry,
      id: string,
      input: Record<string, unknown>,
    ): Promise<AccessRequest> {
      const parent = await requests.require(id)
      const actor = await actorOf(token)
      requireOwner(parent, actor)
      if (parent.kind === 'extension')
        throw badRequest('extend the original request, not an extension')
      if (parent.state !== 'active' && parent.state !== 'approved')
        throw badRequest(`the request is ${parent.state}; only live grants can be extended`)
      const rule = await rules.get(parent.ruleName)
      if (!rule) throw badRequest(`the rule "${parent.ruleName}" no longer exists`)
      const max = parent.breakGlass ? (rule.breakGlass?.maxDuration ?? 0) : rule.maxDuration
      const pendingExtra = (await requests.pendingFor(parent.id)).reduce(
        (sum, r) => sum + r.duration,
        0,
      )
      const added = parseWindow(
        input.duration ?? input.increment ?? input.ttl,
        Number.MAX_SAFE_INTEGER,
        'duration',
      )
      if (parent.duration + pendingExtra + added > max) {
        throw badRequest(
          `extension refused: the grant would last ${parent.duration + pendingExtra + added}s, beyond the rule's maximum of ${max}s`,
        )
      }
      const justification =
        typeof input.justification === 'string' ? input.justification : parent.justification
      checkText(rule, justification, parent.ticket)
      const ext = await requests.insert({
        kind: 'extension',
        parentId: parent.id,
        ruleName: rule.name,
        path: parent.path,
        requester: actor,
        duration: added,
        justification,
        ticket: parent.ticket,
        state: 'pending',
        breakGlass: false,
        review: null,
        autoApproved: false,
        startAt: null,
        pendingUntil: nowMs() + rule.pendingTtl * 1000,
        approvedAt: null,
        activatedAt: null,
        endsAt: null,
      })
      await notify(rule, 'created', ext)
      const auto = rule.autoApprove.some((c) =>
        autoApproves(c, {
          ...verified(actor),
          duration: parent.duration + added,
          at: new Date(),
        }),
      )
      return auto ? approve(ext, rule, true) : ext
    },

    /** Immediate access without approval, for emergencies: loud and flagged for review. */
    async breakGlass(token: TokenEntry, input: Record<string, unknown>): Promise<AccessRequest> {
      const path = concretePath(input.path)
      const rule = await guardedRule(path)
      if (!rule.breakGlass) throw badRequest(`the rule "${rule.name}" has no break-glass clause`)
      await checkEligible(token, path)
      const actor = await actorOf(token)
      if (!rule.breakGlass.groups.some((g) => actor.groups.includes(g))) {
        throw new ApiError(403, 'you are not allowed to break glass on this path')
      }
      const justification = typeof input.justification === 'string' ? input.justification : ''
      if (!justification.trim()) throw badRequest('break-glass needs a justification')
      const duration =
        input.duration === undefined && input.ttl === undefined
          ? rule.breakGlass.maxDuration
          : parseWindow(input.duration ?? input.ttl, rule.breakGlass.maxDuration, 'duration')
      const now = nowMs()
      const request = await requests.insert({
        kind: 'break_glass',
        parentId: null,
        ruleName: rule.name,
        path,
        requester: actor,
        duration,
        justification,
        ticket: typeof input.ticket === 'string' ? input.ticket : '',
        state: 'active',
        breakGlass: true,
        review: { required: true },
        autoApproved: false,
        startAt: null,
        pendingUntil: null,
        approvedAt: now,
        activatedAt: now,
        endsAt: now + duration * 1000,
      })
      core.logger.warn(
        { request: request.id, path, requester: actor.displayName },
        'BREAK-GLASS access opened',
      )
      await notify(rule, 'break_glass', request, {
        approver_groups: rule.approvals.map((f) => f.group),
        review_required: true,
      })
      return request
    },

    /**
     * Confirms an approved grant with a second factor and starts its clock, for rules with
     * `requester_mfa` (as Entra PIM asks at activation).
     */
    async activate(token: TokenEntry, id: string, code: string): Promise<AccessRequest> {
      const request = await requests.require(id)
      const actor = await actorOf(token)
      requireOwner(request, actor)
      if (request.state !== 'approved')
        throw badRequest(`the request is ${request.state}, not approved`)
      const rule = await rules.get(request.ruleName)
      if (!rule?.requesterMfa) throw badRequest('this grant needs no activation')
      if (request.pendingUntil !== null && request.pendingUntil <= nowMs()) {
        await endGrant(request, 'expired', ['approved'])
        throw badRequest(
          `the grant expired at ${iso(request.pendingUntil)}: it was not activated within rule "${rule.name}"'s pending_ttl`,
        )
      }
      if (request.startAt !== null && request.startAt > nowMs()) {
        throw badRequest(
          `the grant starts at ${iso(request.startAt)}: it cannot be activated before then`,
        )
      }
      if (!code || !(await core.secondFactors.verify(token, code))) {
        throw badRequest('invalid or missing second-factor code')
      }
      const now = nowMs()
      const ok = await requests.transition(id, ['approved'], {
        state: 'active',
        activatedAt: now,
        endsAt: now + request.duration * 1000,
      })
      if (!ok) throw badRequest('the request is no longer approved')
      return requests.require(id)
    },

    /** Records the after-the-fact review of a break-glass grant (by an approver). */
    async review(token: TokenEntry, id: string, note: string): Promise<AccessRequest> {
      const request = await requests.require(id)
      const rule = await rules.get(request.ruleName)
      const actor = await actorOf(token)
      if (!approverOf(rule, actor, token))
        throw new ApiError(403, 'only approvers may review a break-glass request')
      if (samePerson(actor, request.requester))
        throw new ApiError(403, 'you may not review your own break-glass request')
      if (!request.breakGlass) throw badRequest('only break-glass requests are reviewed')
      if (request.review && !request.review.required)
        throw badRequest('this request has already been reviewed')
      if (!note.trim()) throw badRequest('a review note is required')
      await requests.addDecision(id, actor, 'review', note)
      await requests.setReview(id, {
        required: false,
        reviewedBy: actor.displayName,
        note,
        at: nowMs(),
      })
      return requests.require(id)
    },

    /** Waits (long-poll) until a request leaves `pending` or the time is up. */
    async wait(id: string, seconds: number): Promise<AccessRequest> {
      const deadline = nowMs() + Math.min(seconds, 60) * 1000
      let request = await requests.require(id)
      while (request.state === 'pending' && nowMs() < deadline) {
        await new Promise((r) => setTimeout(r, 200))
        request = await requests.require(id)
      }
      return request
    },

    /**
     * The request guard: a guarded path needs a live grant for the caller's identity. Leases
     * issued under it are capped at the grant's end and recorded as evidence of use.
     */
    async guard(
      ctx: RequestContext,
    ): Promise<void | ((response: LogicalResponse | null) => Promise<void>)> {
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
        // Not used within pending_ttl: expired now, not at the worker's next tick.
        await endGrant(grant, 'expired', ['approved'])
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
        const ok = await requests.transition(grant.id, ['approved'], {
          state: 'active',
          activatedAt: now,
          endsAt: now + grant.duration * 1000,
        })
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
      return async (response) => {
        const leaseId = response?.secret?.leaseId
        if (!leaseId) return
        await requests.recordCredentials(grantId, leaseId)
        await core.leases.capExpiry([leaseId], endsAt)
        const left = Math.max(0, Math.floor((endsAt - nowMs()) / 1000))
        if (response.secret && response.secret.ttl > left) response.secret.ttl = left
      }
    },

    /**
     * One pass of background work; safe on several nodes at once. Passes on one node run one
     * after the other: a caller waits for the pass in flight, then gets a full pass of its own.
     */
    tick(): Promise<void> {
      const next = ticking.then(runTick)
      ticking = next.catch(() => {})
      return next
    },
  }

  async function runTick(): Promise<void> {
    const now = nowMs()
    for (const r of await requests.inStates(['pending'])) {
      if (pendingExpired(r, now))
        await requests.transition(r.id, ['pending'], { state: 'expired', endedAt: now })
    }
    for (const r of await requests.inStates(['approved'])) {
      if (r.kind === 'extension') continue
      const rule = await rules.get(r.ruleName)
      const waitsForUse = rule?.clockStarts === 'first_use' || rule?.requesterMfa
      if (!waitsForUse && r.startAt !== null && r.startAt <= now) {
        await requests.transition(r.id, ['approved'], {
          state: 'active',
          activatedAt: now,
          endsAt: now + r.duration * 1000,
        })
      } else if (waitsForUse && r.pendingUntil !== null && r.pendingUntil <= now) {
        await endGrant(r, 'expired', ['approved'])
      }
    }
    for (const r of await requests.inStates(['active'])) {
      if (r.endsAt !== null && r.endsAt <= now) {
        await endGrant(r, 'ended', ['active'])
        continue
      }
      if (
        r.endsAt !== null &&
        r.endsAt - now <= expiringSoonMs &&
        (await requests.markWarned(r.id))
      ) {
        await notify(await rules.get(r.ruleName), 'expiring_soon', r)
      }
      if (!r.sessionsSeen && r.credsIssued > 0) await sampleSessions(r)
    }
    await notifiers.deliverDue()
  }

  /** Whether the actor may act for the rule's approvers (a member of one of its groups, or root). */
  function approverOf(rule: AccessRule | undefined, actor: Actor, token: TokenEntry): boolean {
    return (
      rule?.approvals.some((f) => actor.groups.includes(f.group)) === true ||
      token.policies.includes('root')
    )
  }

  /** Evidence of use: asks the target whether the grant's users have sessions open. */
  async function sampleSessions(r: AccessRequest) {
    if (!core.leases?.secretOf) return
    for (const leaseId of await requests.leasesOf(r.id)) {
      const secret = await core.leases.secretOf(leaseId).catch(() => undefined)
      if (!secret) continue
      const backend = core.mounts.byAccessor(secret.mountAccessor)?.backend
      if (!backend?.inspectSecret) continue
      const seen = await backend.inspectSecret(secret.internal).catch(() => ({ sessions: 0 }))
      if (seen.sessions > 0) {
        await requests.markSessionsSeen(r.id)
        return
      }
    }
  }
}

export type AccessService = ReturnType<typeof createAccessService>

const trimSlashes = (path: string) => path.replace(/^\/+|\/+$/g, '')

/**
 * A request names one concrete path: a glob would let one approval cover every current and
 * future match, and the approver could not see what they approve.
 */
function concretePath(value: unknown): string {
  const path = typeof value === 'string' ? trimSlashes(value) : ''
  if (!path || path.length > 512) throw badRequest('path is required')
  if (
    path.includes('*') ||
    path.split('/').some((s) => s === '+' || s === '' || s === '.' || s === '..')
  )
    throw badRequest(
      `path must name one concrete path, not a glob: "${path.slice(0, 512)}" (ask for each role you need)`,
    )
  return path
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
