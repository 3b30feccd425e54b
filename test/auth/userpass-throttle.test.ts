import { afterEach, describe, expect, it } from 'vitest'
import { LoginThrottle, THROTTLED_MESSAGE } from '../../src/auth/userpass/throttle.js'
import { passwordStats } from '../../src/auth/userpass/password.js'
import { startUserpassServer, type UserpassServer } from './userpass-helpers.js'

describe('login throttle (unit)', () => {
  const clock = { now: 1_000_000 }
  const make = () => new LoginThrottle({ now: () => clock.now })
  const tryAdmit = (th: LoginThrottle, user: string, address: string) => {
    try {
      return th.admit(user, address)
    } catch (err) {
      expect((err as { status: number }).status).toBe(429)
      return undefined
    }
  }

  it('admits at most the free quota of an address, even for attempts still in flight', () => {
    const th = make()
    const tickets = Array.from({ length: 50 }, () => tryAdmit(th, 'alice', '10.0.0.1'))
    expect(tickets.filter(Boolean)).toHaveLength(5)
  })

  it('locks an address with a growing backoff and lets it try again once the backoff is over', () => {
    const th = make()
    for (let i = 0; i < 5; i++) th.admit('alice', '10.0.0.1').failure()
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeUndefined()
    clock.now += 1_001
    tryAdmit(th, 'alice', '10.0.0.1')!.failure()
    clock.now += 1_001
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeUndefined()
    clock.now += 1_000
    expect(tryAdmit(th, 'alice', '10.0.0.1')).toBeDefined()
  })

  it('never locks an address for longer than the cap', () => {
    const th = new LoginThrottle({ now: () => clock.now, addressMaxLockMs: 10_000 })
    for (let i = 0; i < 40; i++) {
      const ticket = tryAdmit(th, `u${i}`, '10.0.0.2')
      ticket?.failure()
      clock.now += 10_001
    }
    expect(tryAdmit(th, 'x', '10.0.0.2')).toBeDefined()
  })

  it('hands the attempt back on success and clears the username counter', () => {
    const th = make()
    for (let i = 0; i < 3; i++) th.admit('alice', '10.0.0.3').failure()
    expect(th.failures('user', 'alice')).toBe(3)
    th.admit('alice', '10.0.0.3').success()
    expect(th.failures('user', 'alice')).toBe(0)
    expect(th.failures('address', '10.0.0.3')).toBe(3)
  })

  it('forgets failures over quiet time', () => {
    const th = make()
    for (let i = 0; i < 4; i++) th.admit('alice', '10.0.0.4').failure()
    clock.now += 3 * 5 * 60_000
    th.admit('bob', '10.0.0.4').release()
    expect(th.failures('address', '10.0.0.4')).toBe(1)
  })

  it('keeps a soft-locked username open to an address that has not failed', () => {
    const th = make()
    // Five addresses fail twice each: the username is locked for failing addresses only.
    for (let i = 0; i < 5; i++) {
      th.admit('alice', `10.1.0.${i}`).failure()
      th.admit('alice', `10.1.0.${i}`).failure()
    }
    expect(tryAdmit(th, 'alice', '10.1.0.1')).toBeUndefined()
    expect(tryAdmit(th, 'alice', '192.168.1.10')).toBeDefined()
  })
})

describe('userpass login throttling', () => {
  let t: UserpassServer
  afterEach(async () => {
    await t.server.close()
  })

  it('lets at most 5 of a burst of 50 wrong passwords reach argon2, refuses the rest with 429, and keeps the real user in', async () => {
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
    // ...but the real user, from elsewhere, logs in at once.
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(200)
  })

  it('slows a distributed guess at one username, yet lets the real user in after the short backoff', async () => {
    t = await startUserpassServer()
    await t.server.call('POST', 'auth/userpass/users/alice', { body: { password: 'the-real-one' } })
    const before = passwordStats.verifications
    const statuses: number[] = []
    for (let i = 0; i < 60; i++) {
      statuses.push((await t.login('alice', { password: `guess-${i}` }, `10.20.${i}.1`)).status)
    }
    const verified = passwordStats.verifications - before
    expect(verified).toBe(30)
    expect(statuses.filter((s) => s === 429)).toHaveLength(30)
    expect((await t.login('alice', { password: 'the-real-one' }, '198.51.100.20')).status).toBe(429)

    t.clock.now += 60_001
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
