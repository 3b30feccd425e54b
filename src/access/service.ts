import { ApiError, badRequest, permissionDenied } from '../core/errors.js'
import type { CoreServices } from '../core/services.js'
import type { TokenEntry } from '../core/tokens.js'
import { nowMs } from '../storage/storage.js'
import { approverOf, countedApprovers, samePerson, verified, type People } from './deciders.js'
import type { Grants } from './grants.js'
import { checkText, concretePath, iso, parseStartTime, parseWindow } from './input.js'
import {
  approvalsSatisfied,
  requireOwner,
  uncountedApproval,
  type AccessRequest,
  type RequestStore,
} from './requests.js'
import { autoApproves, type AccessRule, type RuleStore } from './rules.js'
import { newRequest, startClock } from './transitions.js'

export interface AccessServiceDeps extends Pick<
  CoreServices,
  'aclFor' | 'logger' | 'secondFactors'
> {
  rules: RuleStore
  requests: RequestStore
  people: People
  grants: Grants
}

/**
 * The operations of JIT access, as `sys/access/*` offers them: file a request (or an extension,
 * or break glass), decide it, cancel, end, activate with a second factor, review break-glass,
 * list and read. Each checks who may act before it says anything about the request, then applies
 * a transition from transitions.ts. The state machine is drawn there.
 */
export function createAccessService(deps: AccessServiceDeps) {
  const { rules, requests, people, grants, logger } = deps
  const { actorOf, viewerOf } = people
  const { approve, endGrant, notify, refuseIfPendingExpired } = grants

  async function guardedRule(path: string): Promise<AccessRule> {
    const rule = await rules.forPath(path)
    if (!rule) throw badRequest(`no access rule guards "${path}": it needs no request`)
    return rule
  }

  /** Tokens must be eligible (their policies allow the path) before they may ask for it. */
  async function checkEligible(token: TokenEntry, path: string) {
    const { acl } = await deps.aclFor(token)
    const caps = acl.capabilities(path)
    if (caps.includes('deny') || caps.length === 0) {
      throw badRequest(`your policies do not make you eligible for "${path}"`)
    }
  }

  return {
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
      const startAt = parseStartTime(input.start_time, nowMs())
      const requester = await actorOf(token)
      const request = await requests.insert(
        newRequest({
          kind: 'access',
          rule,
          path,
          requester,
          duration,
          justification,
          ticket,
          startAt,
          now: nowMs(),
        }),
      )
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
      const ext = await requests.insert(
        newRequest({
          kind: 'extension',
          parentId: parent.id,
          rule,
          path: parent.path,
          requester: actor,
          duration: added,
          justification,
          ticket: parent.ticket,
          now: nowMs(),
        }),
      )
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
      const request = await requests.insert(
        newRequest({
          kind: 'break_glass',
          rule,
          path,
          requester: actor,
          duration,
          justification,
          ticket: typeof input.ticket === 'string' ? input.ticket : '',
          now: nowMs(),
        }),
      )
      logger.warn(
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
      if (!code || !(await deps.secondFactors.verify(token, code))) {
        throw badRequest('invalid or missing second-factor code')
      }
      const ok = await requests.transition(id, ['approved'], startClock(request, nowMs()))
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
  }
}

export type AccessService = ReturnType<typeof createAccessService>
