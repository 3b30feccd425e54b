import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import { badRequest } from '../core/errors.js'
import { sanitizeError } from '../../plugins/sanitize.js'
import type { Barrier } from '../core/barrier.js'
import type { Logger } from '../core/logger.js'
import { nowMs, type Storage } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    access_notifiers: {
      name: string
      format: string
      events: string
      secret: string
      created_at: number
    }
    access_deliveries: {
      id: string
      notifier: string
      event: string
      request_id: string
      payload: string
      attempts: number
      next_attempt_at: number
      state: string
      last_error: string | null
      created_at: number
    }
  }
}

export const EVENTS = [
  'created',
  'approved',
  'denied',
  'break_glass',
  'expiring_soon',
  'ended',
] as const
export type AccessEvent = (typeof EVENTS)[number]

export interface NotifierOptions {
  /** Attempts before a delivery is given up (default 8). */
  maxAttempts?: number
  /** First retry delay in ms; doubles each attempt with ±20% jitter (default 2000). */
  retryBaseMs?: number
  /** Per-delivery HTTP timeout (default 5000 ms). */
  timeoutMs?: number
}

/**
 * Webhook notifiers for access events. The URL and signing key are sealed by the barrier.
 * Each delivery is queued in storage first, then sent by the access worker and retried with
 * backoff, so a receiver that is down for a while still gets every event. Requests carry
 * `X-Stint-Timestamp` and `X-Stint-Signature: v1=<hex HMAC-SHA256(key, timestamp + "." + body)>`.
 */
export function createNotifiers(deps: {
  storage: Storage
  barrier: Barrier
  logger: Logger
  options?: NotifierOptions
}) {
  const { db } = deps.storage
  const maxAttempts = deps.options?.maxAttempts ?? 8
  const retryBaseMs = deps.options?.retryBaseMs ?? 2000
  const timeoutMs = deps.options?.timeoutMs ?? 5000

  const open = (name: string, sealed: string) =>
    JSON.parse(deps.barrier.decrypt('access_notifiers', 'secret', name, sealed)) as {
      url: string
      key: string
    }

  return {
    /** Creates or replaces a notifier. Returns the signing key when Stint generated it. */
    async write(name: string, input: Record<string, unknown>): Promise<{ generatedKey?: string }> {
      if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) throw badRequest('invalid notifier name')
      const url = input.url
      if (typeof url !== 'string') throw badRequest('missing url')
      let parsed: URL
      try {
        parsed = new URL(url)
      } catch {
        throw badRequest('url is not a valid URL')
      }
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
        throw badRequest('url must be http or https')
      const format = input.format ?? 'json'
      if (format !== 'json' && format !== 'slack')
        throw badRequest('format must be "json" or "slack"')
      const events = input.events === undefined ? [...EVENTS] : input.events
      if (
        !Array.isArray(events) ||
        !events.every((e) => (EVENTS as readonly string[]).includes(e))
      ) {
        throw badRequest(`events must be a list of: ${EVENTS.join(', ')}`)
      }
      let key = input.secret
      let generatedKey: string | undefined
      if (key === undefined || key === '') {
        key = randomBytes(32).toString('base64url')
        generatedKey = key as string
      }
      if (typeof key !== 'string' || key.length < 16)
        throw badRequest('secret must be at least 16 characters')
      const sealed = deps.barrier.encrypt(
        'access_notifiers',
        'secret',
        name,
        JSON.stringify({ url, key }),
      )
      await db.deleteFrom('access_notifiers').where('name', '=', name).execute()
      await db
        .insertInto('access_notifiers')
        .values({
          name,
          format,
          events: JSON.stringify(events),
          secret: sealed,
          created_at: nowMs(),
        })
        .execute()
      return { generatedKey }
    },

    /** A notifier as shown to operators: the URL's host only, never the key. */
    async read(name: string): Promise<Record<string, unknown> | undefined> {
      const row = await db
        .selectFrom('access_notifiers')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst()
      if (!row) return undefined
      const { url } = open(row.name, row.secret)
      const u = new URL(url)
      return {
        name: row.name,
        format: row.format,
        events: JSON.parse(row.events),
        url_host: u.host,
        url_scheme: u.protocol.replace(':', ''),
      }
    },

    async delete(name: string): Promise<void> {
      await db.deleteFrom('access_notifiers').where('name', '=', name).execute()
    },

    async names(): Promise<string[]> {
      return (await db.selectFrom('access_notifiers').select('name').orderBy('name').execute()).map(
        (r) => r.name,
      )
    },

    /** Queues an event for the named notifiers that subscribe to it. */
    async enqueue(
      names: string[],
      event: AccessEvent,
      requestId: string,
      payload: Record<string, unknown>,
    ): Promise<void> {
      if (names.length === 0) return
      const rows = await db
        .selectFrom('access_notifiers')
        .select(['name', 'events'])
        .where('name', 'in', names)
        .execute()
      const now = nowMs()
      for (const row of rows) {
        if (!(JSON.parse(row.events) as string[]).includes(event)) continue
        await db
          .insertInto('access_deliveries')
          .values({
            id: randomUUID(),
            notifier: row.name,
            event,
            request_id: requestId,
            payload: JSON.stringify(payload),
            attempts: 0,
            next_attempt_at: now,
            state: 'queued',
            last_error: null,
            created_at: now,
          })
          .execute()
      }
    },

    /** Sends due deliveries; returns how many were attempted. */
    async deliverDue(limit = 50): Promise<number> {
      const due = await db
        .selectFrom('access_deliveries')
        .selectAll()
        .where('state', '=', 'queued')
        .where('next_attempt_at', '<=', nowMs())
        .limit(limit)
        .execute()
      for (const d of due) {
        // Claim it: another node may be delivering the same row.
        const claim = await db
          .updateTable('access_deliveries')
          .set({ state: 'sending' })
          .where('id', '=', d.id)
          .where('state', '=', 'queued')
          .executeTakeFirst()
        if (Number(claim.numUpdatedRows) === 0) continue
        const notifier = await db
          .selectFrom('access_notifiers')
          .selectAll()
          .where('name', '=', d.notifier)
          .executeTakeFirst()
        if (!notifier) {
          await db
            .updateTable('access_deliveries')
            .set({ state: 'failed', last_error: 'notifier deleted' })
            .where('id', '=', d.id)
            .execute()
          continue
        }
        const { url, key } = open(notifier.name, notifier.secret)
        const payload = JSON.parse(d.payload) as Record<string, unknown>
        const body = JSON.stringify(
          notifier.format === 'slack'
            ? slackMessage(d.event as AccessEvent, payload)
            : { event: d.event, ...payload },
        )
        const timestamp = String(Math.floor(nowMs() / 1000))
        const signature = createHmac('sha256', key).update(`${timestamp}.${body}`).digest('hex')
        let error: string | undefined
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: {
              'Content-Type': 'application/json',
              'User-Agent': 'stint-notifier',
              'X-Stint-Event': d.event,
              'X-Stint-Delivery': d.id,
              'X-Stint-Timestamp': timestamp,
              'X-Stint-Signature': `v1=${signature}`,
            },
            body,
            signal: AbortSignal.timeout(timeoutMs),
          })
          await res.body?.cancel().catch(() => {})
          if (res.status >= 300) error = `receiver answered ${res.status}`
        } catch (err) {
          error = sanitizeError(err, [url, key])
        }
        const attempts = d.attempts + 1
        if (!error) {
          await db
            .updateTable('access_deliveries')
            .set({ state: 'delivered', attempts, last_error: null })
            .where('id', '=', d.id)
            .execute()
        } else if (attempts >= maxAttempts) {
          deps.logger.warn({ notifier: d.notifier, event: d.event }, 'access notification given up')
          await db
            .updateTable('access_deliveries')
            .set({ state: 'failed', attempts, last_error: error })
            .where('id', '=', d.id)
            .execute()
        } else {
          const delay = retryBaseMs * 2 ** (attempts - 1) * (0.8 + Math.random() * 0.4)
          await db
            .updateTable('access_deliveries')
            .set({
              state: 'queued',
              attempts,
              last_error: error,
              next_attempt_at: nowMs() + Math.round(delay),
            })
            .where('id', '=', d.id)
            .execute()
        }
      }
      return due.length
    },

    async deliveries(requestId: string) {
      return db
        .selectFrom('access_deliveries')
        .select(['notifier', 'event', 'state', 'attempts', 'last_error'])
        .where('request_id', '=', requestId)
        .execute()
    },
  }
}

export type Notifiers = ReturnType<typeof createNotifiers>

function slackMessage(
  event: AccessEvent,
  payload: Record<string, unknown>,
): Record<string, unknown> {
  const r = (payload.request ?? {}) as Record<string, unknown>
  const who = (r.requester as { display_name?: string } | undefined)?.display_name ?? 'someone'
  const titles: Record<AccessEvent, string> = {
    created: 'Access requested',
    approved: 'Access approved',
    denied: 'Access denied',
    break_glass: ':rotating_light: BREAK-GLASS access',
    expiring_soon: 'Access expiring soon',
    ended: 'Access ended',
  }
  const text = `${titles[event]}: ${who} → \`${String(r.path)}\` for ${String(r.duration)}s (request ${String(r.id)}). Justification: ${String(r.justification ?? '')}`
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }
}
