import { badRequest } from '../core/errors.js'
import { parseDuration } from '../core/duration.js'
import type { AccessRule } from './rules.js'

/** Parsing and checking what a requester sends, against the rule that guards the path. */

export const trimSlashes = (path: string) => path.replace(/^\/+|\/+$/g, '')

/**
 * A request names one concrete path: a glob would let one approval cover every current and
 * future match, and the approver could not see what they approve.
 */
export function concretePath(value: unknown): string {
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

/** A positive duration in seconds, at most `max`. */
export function parseWindow(value: unknown, max: number, field: string): number {
  if (value === undefined || value === '' || value === null)
    throw badRequest(`${field} is required`)
  const seconds = parseDuration(value, field)
  if (seconds <= 0) throw badRequest(`${field} must be positive`)
  if (seconds > max) throw badRequest(`${field} exceeds the rule's maximum of ${max}s`)
  return seconds
}

/** The justification and ticket, as the rule wants them. */
export function checkText(rule: AccessRule, justification: string, ticket: string): void {
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

/** An optional RFC 3339 start time: not in the past, at most 30 days away. */
export function parseStartTime(value: unknown, now: number): number | null {
  if (value === undefined || value === '') return null
  const startAt = Date.parse(String(value))
  if (Number.isNaN(startAt)) throw badRequest('start_time must be an RFC 3339 time')
  if (startAt < now - 60_000) throw badRequest('start_time is in the past')
  if (startAt > now + 30 * 86400_000) throw badRequest('start_time is more than 30 days away')
  return startAt
}

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
