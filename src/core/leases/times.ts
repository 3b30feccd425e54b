/** What a lease's times come to, decided in one place (issue, and what approvers are shown). */
export interface LeaseTimes {
  /** Seconds the lease lives from issue. */
  ttl: number
  /** Seconds from issue that renewals may never pass (before `notAfter`). */
  maxTtl: number
  /** Epoch ms. */
  expireTime: number
  /** Epoch ms renewals may never pass: the max, lowered to `notAfter`. */
  maxExpireTime: number
  /** The max before `notAfter` lowered it (epoch ms), or null when it did not. */
  ownMaxExpireTime: number | null
}

/**
 * The asked TTL and max (0: the mount's default and max), bounded by the mount's (which the
 * system's bound), then by `notAfter` (a JIT grant's end).
 */
export function leaseTimes(
  asked: { ttl: number; maxTtl: number; notAfter?: number },
  mount: { defaultTtl: number; maxTtl: number },
  issuedAt: number,
): LeaseTimes {
  const maxTtl = asked.maxTtl > 0 ? Math.min(asked.maxTtl, mount.maxTtl) : mount.maxTtl
  const ownMax = issuedAt + maxTtl * 1000
  const maxExpireTime = asked.notAfter !== undefined ? Math.min(ownMax, asked.notAfter) : ownMax
  const ttlAsked = Math.min(asked.ttl > 0 ? asked.ttl : mount.defaultTtl, maxTtl)
  const expireTime = Math.min(issuedAt + ttlAsked * 1000, maxExpireTime)
  return {
    ttl: Math.max(0, Math.floor((expireTime - issuedAt) / 1000)),
    maxTtl,
    expireTime,
    maxExpireTime,
    ownMaxExpireTime: maxExpireTime < ownMax ? ownMax : null,
  }
}
