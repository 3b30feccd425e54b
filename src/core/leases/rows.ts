import { randomBase62 } from '../../crypto/random.js'
import type { LeaseInfo, LeaseState } from './types.js'

declare module '../../storage/tables.js' {
  interface Tables {
    leases: LeaseRow
  }
}

/** One row of the `leases` table (schema/0003-leases.ts). Times are epoch milliseconds. */
export interface LeaseRow {
  /** `<request path>/<24-char base62>`; compared byte-wise so prefixes are index ranges. */
  id: string
  mount_accessor: string
  mount_path: string
  /** Request path the secret was issued at (the id without its random suffix). */
  path: string
  /** Keyed hash of the owning token. */
  token_id: string
  state: LeaseState
  /** Seconds: the TTL granted at issue, used when a renewal asks for the default increment. */
  ttl: number
  issue_time: number
  expire_time: number
  max_expire_time: number
  /**
   * The max the lease was issued with, kept when `capExpiry` lowered `max_expire_time` (a JIT
   * grant's end); null when never lowered (schema/0011-lease-own-max.ts).
   */
  own_max_expire_time?: number | null
  last_renewal: number | null
  renewable: number
  /** Barrier ciphertext of the backend's revocation data (JSON). */
  internal: string
  target_key: string
  attempts: number
  /**
   * When the worker should next look at this row: the expiry for active leases, the recovery
   * deadline for pending ones, the next retry after a failure.
   */
  next_attempt_at: number
  last_error: string | null
  claimed_by: string | null
  claim_until: number | null
}

/** The largest code point: `prefix + MAX_CHAR` bounds every id that starts with `prefix`. */
export const MAX_CHAR = '\u{10FFFF}'

/** A lease id under `path`: the path plus 24 random base62 characters (~143 bits). */
export function newLeaseId(path: string): string {
  return `${path.replace(/\/+$/, '')}/${randomBase62(24)}`
}

export function toLeaseInfo(row: LeaseRow, now: number): LeaseInfo {
  const expireTime = Number(row.expire_time)
  return {
    id: row.id,
    path: row.path,
    mountPath: row.mount_path,
    state: row.state,
    issueTime: Number(row.issue_time),
    expireTime,
    lastRenewal: row.last_renewal === null ? null : Number(row.last_renewal),
    renewable: Number(row.renewable) === 1,
    ttl: Math.max(0, Math.floor((expireTime - now) / 1000)),
    revokeError: row.last_error,
    attempts: Number(row.attempts),
  }
}
