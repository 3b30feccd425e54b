import type { MountTable } from '../core/mounts.js'
import type { TokenEntry } from '../core/tokens.js'
import { iso } from './input.js'
import type { Viewer } from './deciders.js'
import type { AccessRequest, RequestStore } from './requests.js'

export interface PresenterDeps {
  mounts: Pick<MountTable, 'match'>
  requests: Pick<RequestStore, 'decisions' | 'list'>
  viewerOf: (token: TokenEntry) => Promise<Viewer>
}

/** How a request is shown: by the API (`sys/access/requests/<id>`) and to notifiers. */
export function createPresenter(deps: PresenterDeps) {
  const { mounts, requests, viewerOf } = deps

  /**
   * The request as the API shows it. With a `viewer` (a GET by someone who may see it), also
   * what an approver needs to decide: the target, and the requester's recent requests that this
   * viewer may see too (never another rule's justification). Notifiers get the plain view.
   */
  return async function view(
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
      const hit = mounts.match(request.path)
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
}

export type Presenter = ReturnType<typeof createPresenter>
