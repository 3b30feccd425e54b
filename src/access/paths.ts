import { badRequest } from '../core/errors.js'
import { parseDuration } from '../core/duration.js'
import type { TokenEntry } from '../core/tokens.js'
import type { LogicalRequest, PathDef } from '../core/request.js'
import type { RuleStore } from './rules.js'
import type { Notifiers } from './notifiers.js'
import type { AccessService } from './service.js'
import type { Presenter } from './presentation.js'
import type { AccessRequest, RequestState, RequestStore } from './requests.js'

const STATES: RequestState[] = [
  'pending',
  'approved',
  'active',
  'denied',
  'expired',
  'cancelled',
  'ended',
]

/**
 * `sys/access/*`, designed in Vault's style (Vault has no equivalent API):
 *
 * | path | operations |
 * |---|---|
 * | `sys/access/rules/<name>` | read, write (JSON rule), delete; LIST `sys/access/rules` |
 * | `sys/access/notifiers/<name>` | read (no URL or key), write, delete; LIST |
 * | `sys/access/requests` | write: create `{path, duration, justification, ticket, start_time}`; LIST with `?state=`, `?filter=mine|approvable` |
 * | `sys/access/requests/<id>` | read (`?wait=30s` long-polls while pending) |
 * | `sys/access/requests/<id>/approve|deny|cancel|end|extend|review|activate` | write |
 * | `sys/access/break-glass` | write `{path, justification, duration}` |
 * | `sys/access/report/unused` | read: ended grants that were never used; live ones apart |
 */
export function accessPaths(deps: {
  service: AccessService
  view: Presenter
  rules: RuleStore
  requests: RequestStore
  notifiers: Notifiers
}): PathDef[] {
  const { service, view, rules, requests, notifiers } = deps
  const text = (req: LogicalRequest, ...names: string[]) => {
    for (const n of names) if (typeof req.data[n] === 'string') return req.data[n] as string
    return ''
  }
  /** The request as the API shows it; `viewer` (the caller) gets the approver's details too. */
  const shown = async (r: AccessRequest, viewer?: TokenEntry) => ({ data: await view(r, viewer) })
  const shownTo = (req: LogicalRequest) => (r: AccessRequest) => shown(r, req.token)

  return [
    {
      pattern: /^access\/rules\/?$/,
      operations: { list: async () => ({ data: { keys: await rules.names() } }) },
    },
    {
      pattern: /^access\/rules\/(?<name>[^/]+)$/,
      operations: {
        read: async (_req, p) => {
          const rule = await rules.get(p.name!)
          return rule ? { data: { name: rule.name, ...rule.raw } } : null
        },
        update: async (req, p) => {
          const body =
            typeof req.data.rule === 'string'
              ? parseJson(req.data.rule)
              : (req.data.rule ?? req.data)
          await rules.write(p.name!, body)
          return null
        },
        delete: async (_req, p) => {
          await rules.delete(p.name!)
          return null
        },
      },
    },
    {
      pattern: /^access\/notifiers\/?$/,
      operations: { list: async () => ({ data: { keys: await notifiers.names() } }) },
    },
    {
      pattern: /^access\/notifiers\/(?<name>[^/]+)$/,
      operations: {
        read: async (_req, p) => {
          const n = await notifiers.read(p.name!)
          return n ? { data: n } : null
        },
        update: async (req, p) => {
          const { generatedKey } = await notifiers.write(p.name!, req.data)
          // The signing key is shown once, when Stint generated it.
          return generatedKey ? { data: { secret: generatedKey } } : null
        },
        delete: async (_req, p) => {
          await notifiers.delete(p.name!)
          return null
        },
      },
    },
    {
      pattern: /^access\/requests\/?$/,
      operations: {
        update: async (req) => shown(await service.create(req.token!, req.data)),
        list: async (req) => {
          const state = req.data.state === undefined ? undefined : String(req.data.state)
          if (state !== undefined && !STATES.includes(state as RequestState))
            throw badRequest(`state must be one of ${STATES.join(', ')}`)
          const list = await service.list(req.token!, {
            state: state as RequestState | undefined,
            filter: String(req.data.filter ?? ''),
          })
          const keyInfo: Record<string, unknown> = {}
          for (const r of list) {
            keyInfo[r.id] = {
              path: r.path,
              state: r.state,
              kind: r.kind,
              requester: r.requester.displayName,
              duration: r.duration,
              created_at: new Date(r.createdAt).toISOString(),
              ends_at: r.endsAt ? new Date(r.endsAt).toISOString() : null,
              break_glass: r.breakGlass,
              review_required: r.review?.required ?? false,
            }
          }
          return { data: { keys: list.map((r) => r.id), key_info: keyInfo } }
        },
      },
    },
    {
      pattern: /^access\/requests\/(?<id>[^/]+)$/,
      operations: {
        read: async (req, p) => {
          const wait = req.data.wait === undefined ? 0 : parseDuration(req.data.wait, 'wait')
          const request = await service.visible(req.token!, p.id!)
          return shownTo(req)(wait > 0 ? await service.wait(request.id, wait) : request)
        },
      },
    },
    {
      pattern:
        /^access\/requests\/(?<id>[^/]+)\/(?<action>approve|deny|cancel|end|extend|review|activate)$/,
      operations: {
        update: async (req, p) => {
          const id = p.id!
          switch (p.action) {
            case 'approve':
              return shownTo(req)(
                await service.decide(req.token!, id, 'approve', text(req, 'comment')),
              )
            case 'deny':
              return shownTo(req)(
                await service.decide(req.token!, id, 'deny', text(req, 'reason', 'comment')),
              )
            case 'cancel':
              return shownTo(req)(await service.cancel(req.token!, id))
            case 'end':
              return shownTo(req)(await service.end(req.token!, id))
            case 'extend':
              return shownTo(req)(await service.extend(req.token!, id, req.data))
            case 'activate':
              return shownTo(req)(await service.activate(req.token!, id, text(req, 'totp', 'code')))
            default:
              return shownTo(req)(
                await service.review(req.token!, id, text(req, 'note', 'comment')),
              )
          }
        },
      },
    },
    {
      pattern: /^access\/break-glass$/,
      operations: {
        update: async (req) => shownTo(req)(await service.breakGlass(req.token!, req.data)),
      },
    },
    {
      pattern: /^access\/report\/unused$/,
      operations: {
        read: async () => {
          // Only a grant that has ended can be said to be unused: a live one seconds old is
          // listed apart (`live`), so it is not mistaken for over-provisioning.
          const ended = [
            ...(await requests.list({ state: 'ended' })),
            ...(await requests.list({ state: 'expired' })).filter((r) => r.approvedAt !== null),
          ].filter((r) => r.kind !== 'extension')
          const live = [
            ...(await requests.list({ state: 'active' })),
            ...(await requests.list({ state: 'approved' })),
          ].filter((r) => r.kind !== 'extension')
          const row = (r: (typeof ended)[number]) => ({
            id: r.id,
            path: r.path,
            requester: r.requester.displayName,
            state: r.state,
            live: r.state === 'active' || r.state === 'approved',
            duration: r.duration,
            credentials_issued: r.credsIssued,
            created_at: new Date(r.createdAt).toISOString(),
            ends_at: r.endsAt === null ? null : new Date(r.endsAt).toISOString(),
            ended_at: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
          })
          return {
            data: {
              unused: ended.filter((r) => r.credsIssued === 0).map(row),
              credentials_never_connected: ended
                .filter((r) => r.credsIssued > 0 && !r.sessionsSeen)
                .map(row),
              live: live.filter((r) => r.credsIssued === 0 || !r.sessionsSeen).map(row),
              grants_considered: ended.length,
            },
          }
        },
      },
    },
  ]
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw badRequest('rule must be JSON')
  }
}
