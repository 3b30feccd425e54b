import { afterEach, describe, expect, it } from 'vitest'
import {
  DEFAULT_LOCKOUT,
  LoginThrottle,
  THROTTLED_MESSAGE,
  lockoutFromOptions,
  type LockoutSettings,
} from '../../src/auth/userpass/throttle.js'
import { passwordStats } from '../../src/auth/userpass/password.js'
import { startUserpassServer, type UserpassServer } from './userpass-helpers.js'
import { startTestServer } from '../support/server.js'

describe('login throttle (unit)', () => {
  const clock = { now: 1_000_000 }
  const make = () => new LoginThrottle({ now: () => clock.now })
  const tryAdmit = (
    th: LoginThrottle,
    user: string,
    address: string,
    settings?: LockoutSettings,
  ) => {
    try {
      return th.admit(user, address, settings)
    } catch (err) {
      expect((err as { status: number }).status).toBe(429)
      return undefined
    }
  }

  // Issue 12 item 10: the quota of 5 is now the username's; the address's is ten times that.
  it('admits at most the free quota of a username and of an address, even for attempts still in flight', () => {
    const th = make()
    const tickets = Array.from({ length: 50 }, () => tryAdmit(th, 'alice', '10.0.0.1'))
    expect(tickets.filter(Boolean)).toHaveLength(5)
    const spray = Array.from({ length: 80 }, (_, i) => tryAdmit(th, `user${i}`, '10.0.0.9'))
    expect(spray.filter(Boolean)).toHaveLength(50)
  })

  // Issue 12 item 10 replaced the address backoff after 5 failures with Vault's user lockout.
  it('locks a username for lockout_duration after lockout_threshold failures, then lets it try again', () => {
    const th = make()
    for (let i = 0; i < 5; i++) th.admit('alice', '10.0.0.1').failure()
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeUndefined()
    expect(tryAdmit(th, 'bob', '10.0.0.1')).toBeDefined()
    clock.now += 15 * 60_000 - 1
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeUndefined()
    clock.now += 1
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeDefined()
    expect(th.failures('user', 'alice')).toBe(0)
  })

  // Issue 12 item 10: addresses have no backoff lock any more (nor its `addressMaxLockMs`); an
  // address over its cap gets one attempt back per counter_reset / cap (18 s).
  it('never keeps an address out for long: one attempt comes back per leak period', () => {
    const th = make()
    for (let i = 0; i < 60; i++) tryAdmit(th, `u${i}`, '10.0.0.2')?.failure()
    expect(tryAdmit(th, 'x', '10.0.0.2')).toBeUndefined()
    clock.now += 18_000
    tryAdmit(th, 'y', '10.0.0.2')!.failure()
    expect(tryAdmit(th, 'z', '10.0.0.2')).toBeUndefined()
    clock.now += 18_000
    expect(tryAdmit(th, 'z', '10.0.0.2')).toBeDefined()
  })

  it('hands the attempt back on success and clears the username counter', () => {
    const th = make()
    for (let i = 0; i < 3; i++) th.admit('alice', '10.0.0.3').failure()
    expect(th.failures('user', 'alice')).toBe(3)
    th.admit('alice', '10.0.0.3').success()
    expect(th.failures('user', 'alice')).toBe(0)
    expect(th.failures('address', '10.0.0.3')).toBe(3)
  })

  // Issue 12 item 10: a username forgets after lockout_counter_reset (15 min) without a
  // failure, as Vault; an address leaks one failure per counter_reset / cap (18 s).
  it('forgets failures over quiet time', () => {
    const th = make()
    for (let i = 0; i < 4; i++) th.admit('alice', '10.0.0.4').failure()
    clock.now += 3 * 18_000
    th.admit('bob', '10.0.0.4').release()
    expect(th.failures('address', '10.0.0.4')).toBe(1)
    expect(th.failures('user', 'alice')).toBe(4)
    clock.now += 15 * 60_000
    th.admit('alice', '10.0.0.5').release()
    expect(th.failures('user', 'alice')).toBe(0)
  })

  // Issue 12 item 10 changes this on purpose: the lockout follows the username to every
  // address (Vault's user lockout), where a clean address used to get through.
  it('locks a username on every address, also ones that never failed', () => {
    const th = make()
    for (let i = 0; i < 5; i++) th.admit('alice', `10.1.0.${i}`).failure()
    expect(tryAdmit(th, 'alice', '10.1.0.1')).toBeUndefined()
    expect(tryAdmit(th, 'alice', '192.168.1.10')).toBeUndefined()
  })

  it('applies the settings given with the attempt, and none for the username when disabled', () => {
    const th = make()
    const strict = { threshold: 2, durationMs: 60_000, counterResetMs: 60_000, disabled: false }
    for (let i = 0; i < 2; i++) th.admit('dave', '10.0.0.6', strict).failure()
    expect(tryAdmit(th, 'dave', '10.0.0.7')).toBeUndefined()
    const off = { ...strict, disabled: true }
    expect(tryAdmit(th, 'dave', '10.0.0.7', off)).toBeDefined()
  })
})

describe('userpass login throttling', () => {
  let t: UserpassServer
  afterEach(async () => {
    await t.server.close()
  })

  it('lets at most 5 of a burst of 50 wrong passwords reach argon2, refuses the rest with 429, and keeps the user out until the lockout ends', async () => {
    t = await startUserpassServer()
    await t.server.call('POST', 'auth/userpass/users/alice', { body: { password: 'the-real-one' } })
    const before = passwordStats.verifications
    const burst = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        t.login('alice', { password: `guess-${i}` }, '203.0.113.7'),
      ),
    )
    const verified = passwordStats.verifications - before
    expect(verified).toBeLessThanOrEqual(5)
    expect(burst.filter((r) => r.status === 400)).toHaveLength(verified)
    const throttled = burst.filter((r) => r.status === 429)
    expect(throttled).toHaveLength(50 - verified)
    expect(throttled[0]!.body.errors).toEqual([THROTTLED_MESSAGE])

    // Even the right password is refused from the attacking address while it is locked...
    expect((await t.login('alice', { password: 'the-real-one' }, '203.0.113.7')).status).toBe(429)
    // ...and (changed by issue 12 item 10: Vault's user lockout) from elsewhere too, until
    // lockout_duration (15 min) has passed.
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(429)
    t.clock.now += 15 * 60_000
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(200)
  })

  // Changed by issue 12 item 10: the username is locked after 5 failures from any addresses
  // (30 reached argon2 before, and the lock lasted a minute); it lasts lockout_duration.
  it('stops a distributed guess at one username after 5 attempts, and lets the real user in once the lockout ends', async () => {
    t = await startUserpassServer()
    await t.server.call('POST', 'auth/userpass/users/alice', { body: { password: 'the-real-one' } })
    const before = passwordStats.verifications
    const statuses: number[] = []
    for (let i = 0; i < 60; i++) {
      statuses.push((await t.login('alice', { password: `guess-${i}` }, `10.20.${i}.1`)).status)
    }
    const verified = passwordStats.verifications - before
    expect(verified).toBe(5)
    expect(statuses.filter((s) => s === 429)).toHaveLength(55)
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(429)

    t.clock.now += 60_001
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(429)
    t.clock.now += 15 * 60_000
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(200)
  })

  it('counts wrong TOTP codes as failures', async () => {
    t = await startUserpassServer()
    await t.server.call('POST', 'auth/userpass/users/alice', { body: { password: 'the-real-one' } })
    await t.server.call('POST', 'auth/userpass/users/alice/totp')
    const statuses: number[] = []
    for (let i = 0; i < 8; i++) {
      const res = await t.login(
        'alice',
        { password: 'the-real-one', totp: String(100000 + i) },
        '203.0.113.9',
      )
      statuses.push(res.status)
    }
    expect(statuses.slice(0, 5)).toEqual([400, 400, 400, 400, 400])
    expect(statuses.slice(5)).toEqual([429, 429, 429])
  })
})

/*
 * Issue 12, item 10: the throttle was keyed on the client address only, so five wrong passwords
 * for one user locked out everyone behind the same NAT or proxy for up to 15 minutes. Now each
 * username (per mount) is locked after `lockout_threshold` failures, as Vault's user lockout, and
 * the address only has a much higher cap (ten times the threshold) as a second line.
 */
describe('userpass lockout per user and mount', () => {
  let t: UserpassServer
  afterEach(async () => {
    await t.server.close()
  })
  const NAT = '203.0.113.50'
  const addUsers = async (...names: string[]) => {
    for (const name of names) {
      const res = await t.server.call('POST', `auth/userpass/users/${name}`, {
        body: { password: `${name}-password` },
      })
      expect(res.status).toBe(204)
    }
  }

  it("one user's five wrong passwords do not lock out another user behind the same address (NAT)", async () => {
    t = await startUserpassServer()
    await addUsers('alice', 'bob')
    for (let i = 0; i < 5; i++) {
      expect((await t.login('alice', { password: `typo-${i}` }, NAT)).status).toBe(400)
    }
    const bob = await t.login('bob', { password: 'bob-password' }, NAT)
    expect(bob.status).toBe(200)
    expect(bob.body.auth.metadata.username).toBe('bob')
  })

  it('locks the user out on every address after 5 failures: her right password fails like a wrong one, with no password check, until lockout_duration has passed', async () => {
    t = await startUserpassServer()
    await addUsers('alice')
    for (let i = 0; i < 5; i++) {
      expect((await t.login('alice', { password: `typo-${i}` }, NAT)).status).toBe(400)
    }
    const before = passwordStats.verifications
    const right = await t.login('alice', { password: 'alice-password' }, NAT)
    const wrong = await t.login('alice', { password: 'another-guess' }, NAT)
    const elsewhere = await t.login('alice', { password: 'alice-password' }, '198.51.100.20')
    for (const res of [right, wrong, elsewhere]) {
      expect(res.status).toBe(429)
      expect(res.body).toEqual({ errors: [THROTTLED_MESSAGE] })
    }
    // Refused before the password is looked at: neither the answer nor its timing can tell a
    // right password from a wrong one.
    expect(passwordStats.verifications).toBe(before)

    t.clock.now += 15 * 60_000 - 1_000
    expect((await t.login('alice', { password: 'alice-password' }, NAT)).status).toBe(429)
    t.clock.now += 1_001
    expect((await t.login('alice', { password: 'alice-password' }, NAT)).status).toBe(200)
  })

  it('throttles an unknown username exactly like a real one, from any address, so a lockout does not reveal who exists', async () => {
    t = await startUserpassServer()
    await addUsers('alice')
    const attempts = async (name: string) => {
      const out: Array<{ status: number; body: unknown }> = []
      for (let i = 0; i < 7; i++)
        out.push(await t.login(name, { password: 'guess' }, `10.9.${i}.1`))
      return out
    }
    const real = await attempts('alice')
    const ghost = await attempts('ghost')
    expect(real.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 429, 429])
    expect(ghost).toEqual(real)
  })

  it('caps failures per address at ten times the threshold: an address spraying many usernames is slowed, others are not', async () => {
    t = await startUserpassServer()
    await addUsers('carol')
    const sprayer = '192.0.2.66'
    for (let i = 0; i < 50; i++) {
      expect((await t.login(`user${i}`, { password: 'Winter2030!' }, sprayer)).status).toBe(400)
    }
    const before = passwordStats.verifications
    expect((await t.login('user50', { password: 'Winter2030!' }, sprayer)).status).toBe(429)
    // Even a real user's right password is refused from that address for now...
    expect((await t.login('carol', { password: 'carol-password' }, sprayer)).status).toBe(429)
    expect(passwordStats.verifications).toBe(before)
    // ...but not from another address,
    expect((await t.login('carol', { password: 'carol-password' }, '198.51.100.7')).status).toBe(
      200,
    )
    // and the address gets one attempt back per lockout_counter_reset / cap (18 s by default).
    t.clock.now += 18_000
    expect((await t.login('user51', { password: 'Winter2030!' }, sprayer)).status).toBe(400)
    expect((await t.login('user52', { password: 'Winter2030!' }, sprayer)).status).toBe(429)
    expect((await t.login('carol', { password: 'carol-password' }, sprayer)).status).toBe(429)
  })

  it('forgets failures after lockout_counter_reset without a failure', async () => {
    t = await startUserpassServer()
    await addUsers('alice')
    for (let i = 0; i < 4; i++) await t.login('alice', { password: `typo-${i}` }, NAT)
    t.clock.now += 15 * 60_000
    for (let i = 0; i < 4; i++) {
      expect((await t.login('alice', { password: `typo-${i}` }, NAT)).status).toBe(400)
    }
    expect((await t.login('alice', { password: 'alice-password' }, NAT)).status).toBe(200)
  })

  it('reads lockout_threshold, lockout_duration, lockout_counter_reset and lockout_disable from the mount options, also after a tune', async () => {
    t = await startUserpassServer()
    const enabled = await t.server.call('POST', 'sys/auth/strict', {
      body: {
        type: 'userpass',
        options: { lockout_threshold: '2', lockout_duration: '1m', lockout_counter_reset: '30s' },
      },
    })
    expect(enabled.status).toBe(204)
    const user = await t.server.call('POST', 'auth/strict/users/dave', {
      body: { password: 'dave-password' },
    })
    expect(user.status).toBe(204)
    await addUsers('dave')
    const strict = (password: string) =>
      t.from(NAT, 'POST', 'auth/strict/login/dave', { token: null, body: { password } })

    expect((await strict('typo')).status).toBe(400)
    expect((await strict('typo')).status).toBe(400)
    expect((await strict('dave-password')).status).toBe(429)
    // Per mount: the same username on the other userpass mount is not locked.
    expect((await t.login('dave', { password: 'dave-password' }, NAT)).status).toBe(200)
    t.clock.now += 60_001
    expect((await strict('dave-password')).status).toBe(200)

    const tuned = await t.server.call('POST', 'sys/auth/strict/tune', {
      body: { options: { lockout_disable: 'true' } },
    })
    expect(tuned.status).toBe(204)
    for (let i = 0; i < 4; i++) expect((await strict(`typo-${i}`)).status).toBe(400)
    expect((await strict('dave-password')).status).toBe(200)
  })
})

describe('userpass lockout settings', () => {
  it('parses the mount options and keeps the default for values that do not parse', () => {
    expect(
      lockoutFromOptions({
        lockout_threshold: '3',
        lockout_duration: '10m',
        lockout_counter_reset: '90s',
        lockout_disable: 'false',
      }),
    ).toEqual({
      settings: { threshold: 3, durationMs: 600_000, counterResetMs: 90_000, disabled: false },
      errors: [],
    })
    const bad = lockoutFromOptions({
      lockout_threshold: '0',
      lockout_duration: 'soon',
      lockout_counter_reset: '0s',
      lockout_disable: 'yes',
    })
    expect(bad.settings).toEqual(DEFAULT_LOCKOUT)
    expect(bad.errors).toHaveLength(4)
    expect(lockoutFromOptions(null)).toEqual({ settings: DEFAULT_LOCKOUT, errors: [] })
  })

  it('keeps a lockout when the mount is tuned (the backend is rebuilt, the counters are not)', async () => {
    const server = await startTestServer()
    try {
      const enabled = await server.call('POST', 'sys/auth/userpass', {
        body: { type: 'userpass', options: { lockout_threshold: '2' } },
      })
      expect(enabled.status).toBe(204)
      await server.call('POST', 'auth/userpass/users/erin', { body: { password: 'erin-password' } })
      const login = (password: string) =>
        server.call('POST', 'auth/userpass/login/erin', { token: null, body: { password } })
      expect((await login('typo')).status).toBe(400)
      expect((await login('typo')).status).toBe(400)
      expect((await login('erin-password')).status).toBe(429)
      const tuned = await server.call('POST', 'sys/auth/userpass/tune', {
        body: { options: { lockout_threshold: '3' } },
      })
      expect(tuned.status).toBe(204)
      expect((await login('erin-password')).status).toBe(429)
    } finally {
      await server.close()
    }
  })
})
