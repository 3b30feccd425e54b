import { ApiError } from '../../core/errors.js'

/** Tuning of the login throttle. Times in milliseconds. */
export interface ThrottleOptions {
  now?: () => number
  /** Failures an address may make before it is locked out (then 1s, 2s, 4s... up to the cap). */
  addressFreeFailures?: number
  addressMaxLockMs?: number
  /** Failures a username may collect before it is soft-locked. */
  userFreeFailures?: number
  /** Failures after which the username lock applies to clean addresses too. */
  userHardFailures?: number
  /** The username lock is short: an attacker must not keep a real user out for long. */
  userMaxLockMs?: number
  /** One failure is forgotten per this much quiet time. */
  decayMs?: number
  /** Bound on remembered keys; the oldest are forgotten first. */
  maxEntries?: number
}

/** What a login does with the ticket it got: exactly one call. */
export interface ThrottleTicket {
  /** Right credentials: the user's failures are cleared, the address gets its attempt back. */
  success(): void
  /** Wrong credentials: counted against the user and the address. */
  failure(): void
  /** Neither (e.g. the TOTP code is still to come): the attempt is handed back. */
  release(): void
}

interface Counter {
  failures: number
  /** Attempts admitted and not yet settled (counted as failures until they are). */
  pending: number
  lockedUntil: number
  touchedAt: number
}

export const THROTTLED_MESSAGE = 'too many failed login attempts; retry later'

/**
 * Slows online password guessing per client address and per username.
 *
 * Counters live in memory (a bounded map), not in a table: admission and charging happen in one
 * synchronous step, so even a concurrent burst can reach the password check at most
 * `addressFreeFailures` times, which a shared table could only guarantee with per-dialect atomic
 * updates. The cost: with several nodes, each node allows its own quota.
 *
 * Every admitted attempt is charged up front and settled afterwards. An address that keeps
 * failing is locked with an exponential backoff (capped at 15 minutes by default). A username
 * that keeps failing is locked for at most a minute, and only for addresses that have failed
 * themselves, unless failures pile up from many addresses (a distributed attack), when the
 * short lock applies to everyone. The real user, from a clean address, is never kept out long.
 */
export class LoginThrottle {
  #now: () => number
  #opts: Required<Omit<ThrottleOptions, 'now'>>
  #counters = new Map<string, Counter>()

  constructor(options: ThrottleOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#opts = {
      addressFreeFailures: options.addressFreeFailures ?? 5,
      addressMaxLockMs: options.addressMaxLockMs ?? 15 * 60_000,
      userFreeFailures: options.userFreeFailures ?? 10,
      userHardFailures: options.userHardFailures ?? 30,
      userMaxLockMs: options.userMaxLockMs ?? 60_000,
      decayMs: options.decayMs ?? 5 * 60_000,
      maxEntries: options.maxEntries ?? 50_000,
    }
  }

  /**
   * Admits one login attempt for (user, address) or throws 429. Synchronous on purpose: nothing
   * can interleave between the check and the charge.
   */
  admit(user: string, address: string): ThrottleTicket {
    const now = this.#now()
    const o = this.#opts
    const u = this.#counter(`u:${user}`, now)
    const a = this.#counter(`a:${address}`, now)
    const addressBlocked =
      now < a.lockedUntil || (a.pending > 0 && a.failures + a.pending >= o.addressFreeFailures)
    const addressDirty = a.failures + a.pending > 0
    const userLocked =
      now < u.lockedUntil || (u.pending > 0 && u.failures + u.pending >= o.userFreeFailures)
    const userBlocked = userLocked && (addressDirty || u.failures >= o.userHardFailures)
    if (addressBlocked || userBlocked) throw new ApiError(429, THROTTLED_MESSAGE)

    u.pending++
    a.pending++
    let settled = false
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      u.pending--
      a.pending--
      fn()
      this.#forgetIfClean(`u:${user}`, u)
      this.#forgetIfClean(`a:${address}`, a)
    }
    return {
      success: () =>
        settle(() => {
          u.failures = 0
          u.lockedUntil = 0
        }),
      failure: () =>
        settle(() => {
          const at = this.#now()
          this.#fail(u, at, o.userFreeFailures, o.userMaxLockMs)
          this.#fail(a, at, o.addressFreeFailures, o.addressMaxLockMs)
        }),
      release: () => settle(() => {}),
    }
  }

  /** Current failure count of a username (for tests and metrics). */
  failures(kind: 'user' | 'address', key: string): number {
    return this.#counters.get(`${kind === 'user' ? 'u' : 'a'}:${key}`)?.failures ?? 0
  }

  #fail(c: Counter, now: number, free: number, maxLockMs: number): void {
    c.failures++
    c.touchedAt = now
    if (c.failures >= free) {
      const lockMs = Math.min(maxLockMs, 1000 * 2 ** Math.min(c.failures - free, 30))
      c.lockedUntil = Math.max(c.lockedUntil, now + lockMs)
    }
  }

  #counter(key: string, now: number): Counter {
    let c = this.#counters.get(key)
    if (!c) {
      c = { failures: 0, pending: 0, lockedUntil: 0, touchedAt: now }
      if (this.#counters.size >= this.#opts.maxEntries) this.#evict()
      this.#counters.set(key, c)
      return c
    }
    // Forget one failure per quiet decay period.
    const steps = Math.floor((now - c.touchedAt) / this.#opts.decayMs)
    if (steps > 0) {
      c.failures = Math.max(0, c.failures - steps)
      c.touchedAt += steps * this.#opts.decayMs
    }
    return c
  }

  #forgetIfClean(key: string, c: Counter): void {
    if (c.failures === 0 && c.pending === 0 && c.lockedUntil <= this.#now())
      this.#counters.delete(key)
  }

  #evict(): void {
    // Drop the oldest tenth that is not in flight; Map iteration follows insertion order.
    let budget = Math.max(1, Math.floor(this.#opts.maxEntries / 10))
    for (const [key, c] of this.#counters) {
      if (budget <= 0) break
      if (c.pending > 0) continue
      this.#counters.delete(key)
      budget--
    }
  }
}
