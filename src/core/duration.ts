import { badRequest } from './errors.js'

const UNITS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
}
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy

/** Longest duration Stint accepts anywhere (100 years), so arithmetic never overflows. */
export const MAX_DURATION_SECONDS = 100 * 365 * 86400

/**
 * Parses a Vault duration: a number of seconds (`3600`, `"3600"`) or a Go-style duration
 * (`"1h30m"`, `"768h"`, `"10d"`). Returns whole seconds. Throws a 400 naming `field` otherwise.
 */
export function parseDuration(value: unknown, field: string): number {
  if (value === undefined || value === null || value === '') return 0
  let seconds: number
  if (typeof value === 'number') {
    seconds = value
  } else if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) {
    seconds = Number(value.trim())
  } else if (typeof value === 'string') {
    const text = value.trim()
    PART.lastIndex = 0
    seconds = 0
    let consumed = 0
    let match: RegExpExecArray | null
    while ((match = PART.exec(text)) !== null) {
      seconds += Number(match[1]) * UNITS[match[2]!]!
      consumed = PART.lastIndex
    }
    if (consumed === 0 || consumed !== text.length)
      throw badRequest(`invalid duration for ${field}`)
  } else {
    throw badRequest(`invalid duration for ${field}`)
  }
  if (!Number.isFinite(seconds) || seconds < 0) throw badRequest(`${field} must not be negative`)
  if (seconds > MAX_DURATION_SECONDS) throw badRequest(`${field} is too long`)
  return Math.floor(seconds)
}
