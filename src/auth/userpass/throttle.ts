import { ApiError } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'

/**
 * A userpass mount's user lockout, as Vault's (`lockout_threshold`, `lockout_duration`,
 * `lockout_counter_reset`, `lockout_disable`), read from the mount's options.
 */
export interface LockoutSettings {
  /** Failed logins of one username (per mount) before it is locked. */
  threshold: number
  /** How long a locked username stays locked, whatever password is given (ms). */
  durationMs: number
  /** A username's failures are forgotten after this long without a new one (ms). */
  counterResetMs: number
  /** No username lockout; the per-address cap still applies. */
  disabled: boolean
}

export const DEFAULT_LOCKOUT: LockoutSettings = {
  threshold: 5,
  durationMs: 15 * 60_000,
  counterResetMs: 15 * 60_000,
  disabled: false,
}

/** Tuning of the login throttle. Times in milliseconds. */
export interface ThrottleOptions {
  now?: () => number
  /** Settings for admissions that bring none (default {@link DEFAULT_LOCKOUT}). */
  lockout?: Partial<LockoutSettings>
  /** The per-address cap is this many times the lockout threshold (default 10). */
  addressFactor?: number
  /** Bound on remembered keys; the oldest unlocked ones are forgotten first. */
  maxEntries?: number
}

/** What a login does with the ticket it got: exactly one call. */
export interface ThrottleTicket {
  /** Right credentials: the user's failures are cleared. */
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
  /** Users: the last failure. Addresses: where the leak clock stands. */
  touchedAt: number
}

export const THROTTLED_MESSAGE = 'too many failed login attempts; retry later'

/**
 * Slows online password guessing per username and, as a second line, per client address.
 *
 * A username (keyed per mount by the caller) that fails `threshold` times, with no pause of
 * `counterResetMs` between failures, is locked for `durationMs` on every address: during the
 * lockout every attempt is refused with the same 429 before the password is looked at, so
 * neither the answer nor its timing tells a right password from a wrong one. Unknown usernames
 * are counted the same way, so a lockout does not reveal which users exist.
 *
 * An address may collect ten times the threshold in failures (over any usernames) before it is
 * refused; it gets one attempt back per `counterResetMs / cap`. One user's typos behind a NAT
 * therefore lock out only that user, while an address spraying many usernames is slowed.
 *
 * Counters live in memory (a bounded map): admission and charging happen in one synchronous
 * step, so even a concurrent burst reaches the password check at most `threshold` times. The
 * cost: with several nodes, each node allows its own quota, and a restart forgets lockouts.
 */
export class LoginThrottle {
  #now: () => number
  #defaults: LockoutSettings
  #addressFactor: number
  #maxEntries: number
  #counters = new Map<string, Counter>()

  constructor(options: ThrottleOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#defaults = { ...DEFAULT_LOCKOUT, ...options.lockout }
    this.#addressFactor = options.addressFactor ?? 10
    this.#maxEntries = options.maxEntries ?? 50_000
  }

  /**
   * Admits one login attempt for (user, address) or throws 429. Synchronous on purpose: nothing
   * can interleave between the check and the charge.
   */
  admit(user: string, address: string, settings: LockoutSettings = this.#defaults): ThrottleTicket {
    const now = this.#now()
    const cap = settings.threshold * this.#addressFactor
    const leakMs = Math.max(1, settings.counterResetMs / cap)
    const userKey = `u:${user}`
    const addressKey = `a:${address}`
    const u = settings.disabled ? undefined : this.#user(userKey, now, settings)
    const a = this.#address(addressKey, now, leakMs)
    const userBlocked =
      u !== undefined && (now < u.lockedUntil || u.failures + u.pending >= settings.threshold)
    if (userBlocked || a.failures + a.pending >= cap) {
      this.#forgetIfClean(userKey, u)
      this.#forgetIfClean(addressKey, a)
      throw new ApiError(429, THROTTLED_MESSAGE)
    }

    if (u) u.pending++
    a.pending++
    let settled = false
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      if (u) u.pending--
      a.pending--
      fn()
      this.#forgetIfClean(userKey, u)
      this.#forgetIfClean(addressKey, a)
    }
    return {
      success: () =>
        settle(() => {
          if (u) u.failures = 0
        }),
      failure: () =>
        settle(() => {
          const at = this.#now()
          if (u) {
            u.failures++
            u.touchedAt = at
            if (u.failures >= settings.threshold) u.lockedUntil = at + settings.durationMs
          }
          // Re-read the leak first: the clock moved while the password was checked.
          this.#address(addressKey, at, leakMs)
          if (a.failures === 0) a.touchedAt = at
          a.failures++
        }),
      release: () => settle(() => {}),
    }
  }

  /** Current failure count of a username or an address (for tests and metrics). */
  failures(kind: 'user' | 'address', key: string): number {
    return this.#counters.get(`${kind === 'user' ? 'u' : 'a'}:${key}`)?.failures ?? 0
  }

  /** A username's counter: cleared when its lockout is over or its failures are stale. */
  #user(key: string, now: number, s: LockoutSettings): Counter {
    const c = this.#counter(key, now)
    const stale = c.lockedUntil > 0 ? now >= c.lockedUntil : now - c.touchedAt >= s.counterResetMs
    if (stale && c.failures > 0) {
      c.failures = 0
      c.lockedUntil = 0
    }
    return c
  }

  /** An address's counter, leaking one failure per `leakMs` whether or not it keeps failing. */
  #address(key: string, now: number, leakMs: number): Counter {
    const c = this.#counter(key, now)
    const steps = Math.floor((now - c.touchedAt) / leakMs)
    if (steps > 0 && c.failures > 0) {
      c.failures = Math.max(0, c.failures - steps)
      c.touchedAt += steps * leakMs
    }
    return c
  }

  #counter(key: string, now: number): Counter {
    let c = this.#counters.get(key)
    if (!c) {
      c = { failures: 0, pending: 0, lockedUntil: 0, touchedAt: now }
      if (this.#counters.size >= this.#maxEntries) this.#evict(now)
      this.#counters.set(key, c)
    }
    return c
  }

  #forgetIfClean(key: string, c: Counter | undefined): void {
    if (c && c.failures === 0 && c.pending === 0 && c.lockedUntil <= this.#now())
      this.#counters.delete(key)
  }

  #evict(now: number): void {
    // Drop the oldest tenth not in flight, unlocked ones first (Map iteration follows insertion
    // order), so a flood of new names does not lift a lockout.
    let budget = Math.max(1, Math.floor(this.#maxEntries / 10))
    for (const spareLocked of [true, false]) {
      for (const [key, c] of this.#counters) {
        if (budget <= 0) return
        if (c.pending > 0 || (spareLocked && c.lockedUntil > now)) continue
        this.#counters.delete(key)
        budget--
      }
    }
  }
}

/**
 * Lockout settings from a userpass mount's options (set with `sys/auth/<path>` `options` or
 * `sys/auth/<path>/tune`). A value that does not parse keeps its default and is reported in
 * `errors`, so a typo never weakens the lockout nor breaks the mount.
 */
export function lockoutFromOptions(options: Record<string, string> | null | undefined): {
  settings: LockoutSettings
  errors: string[]
} {
  const settings = { ...DEFAULT_LOCKOUT }
  const errors: string[] = []
  const o = options ?? {}
  const positiveMs = (field: string): number | undefined => {
    if (o[field] === undefined || o[field] === '') return undefined
    try {
      const seconds = parseDuration(o[field], field)
      if (seconds > 0) return seconds * 1000
    } catch {
      // reported below
    }
    errors.push(`${field} must be a positive duration`)
    return undefined
  }
  if (o.lockout_threshold !== undefined && o.lockout_threshold !== '') {
    const n = Number(o.lockout_threshold)
    if (Number.isInteger(n) && n >= 1 && n <= 1_000_000) settings.threshold = n
    else errors.push('lockout_threshold must be a positive integer')
  }
  settings.durationMs = positiveMs('lockout_duration') ?? settings.durationMs
  settings.counterResetMs = positiveMs('lockout_counter_reset') ?? settings.counterResetMs
  if (o.lockout_disable !== undefined && o.lockout_disable !== '') {
    if (o.lockout_disable === 'true' || o.lockout_disable === 'false')
      settings.disabled = o.lockout_disable === 'true'
    else errors.push('lockout_disable must be true or false')
  }
  return { settings, errors }
}
