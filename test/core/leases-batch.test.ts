import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { LeaseManagerControl } from '../../src/core/leases/manager.js'
import { eachDialect, type FreshStorage } from '../support/databases.js'
import type { TestServer } from '../support/server.js'
import {
  LEAKY_SECRET,
  newRecorder,
  startLeaseServer,
  until,
  type Recorder,
} from './leases-fixture.js'

/** Revocation in batches: a backend with `revokeSecrets`, each row still settled on its own. */
describe.each(eachDialect)('batched lease revocation on %s', (dialect) => {
  let fresh: FreshStorage
  let server: TestServer
  let leases: LeaseManagerControl
  let recorder: Recorder

  beforeAll(async () => {
    ;({ fresh, server, recorder, leases } = await startLeaseServer(dialect, {
      path: 'batchtest/',
      batch: true,
    }))
  })
  afterAll(async () => {
    await server?.services.seal.seal()
    await fresh?.drop()
  })
  beforeEach(async () => {
    await leases.worker().stop()
    leases.tune({ tickMs: 25, maxAttempts: 6, backoffBaseMs: 60_000, pendingGraceMs: 60_000 })
    leases.tune({ concurrency: 8, perTargetLimit: 4, claimMs: 60_000, batchSize: 200 })
    leases.tune({ revokeBatchSize: 50 })
    Object.assign(recorder, newRecorder())
  })
  afterEach(async () => {
    await leases.worker().stop()
    await server.storage.db.deleteFrom('leases').execute()
  })

  async function issue(target: string): Promise<{ id: string; user: string }> {
    const res = await server.call('GET', `batchtest/creds/${target}`)
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    return { id: res.body.lease_id as string, user: res.body.data.username as string }
  }
  async function issueMany(target: string, n: number) {
    const out: Array<{ id: string; user: string }> = []
    for (let i = 0; i < n; i++) out.push(await issue(target))
    return out
  }
  const row = (id: string) =>
    server.storage.db.selectFrom('leases').selectAll().where('id', '=', id).executeTakeFirst()
  const makeDue = (ids: string[]) => leases.capExpiry(ids, Date.now() - 1)

  it('hands due leases of a target to the backend in one batch and fails only the bad one', async () => {
    const issued = await issueMany('db', 6)
    const bad = issued[2]!
    recorder.failUsers.add(bad.user)
    await makeDue(issued.map((l) => l.id))

    expect(await leases.worker().runOnce()).toBe(6)
    expect(recorder.batches).toHaveLength(1)
    expect([...recorder.batches[0]!.users].sort()).toEqual(issued.map((l) => l.user).sort())
    for (const lease of issued) {
      if (lease === bad) continue
      expect(await row(lease.id)).toBeUndefined()
    }
    const stored = await row(bad.id)
    expect(stored?.state).toBe('active')
    expect(stored?.attempts).toBe(1)
    expect(stored?.claimed_by).toBeNull()
    expect(Number(stored?.next_attempt_at)).toBeGreaterThan(Date.now() + 25_000)
    expect(stored?.last_error).toContain('refused')
    expect(stored?.last_error).not.toContain(LEAKY_SECRET)
    expect(recorder.revokes.map((r) => r.user).sort()).toEqual(
      issued
        .filter((l) => l !== bad)
        .map((l) => l.user)
        .sort(),
    )
  })

  it('makes a lease that keeps failing inside batches irrevocable, alone', async () => {
    leases.tune({ maxAttempts: 2 })
    const issued = await issueMany('db', 4)
    const bad = issued[0]!
    recorder.failUsers.add(bad.user)
    await makeDue(issued.map((l) => l.id))
    await leases.worker().runOnce()
    await server.storage.db
      .updateTable('leases')
      .set({ next_attempt_at: 0 })
      .where('id', '=', bad.id)
      .execute()
    // A fresh lease joins the retry in the same batch and is revoked.
    const fresh = await issue('db')
    await makeDue([fresh.id])
    expect(await leases.worker().runOnce()).toBe(2)
    expect(recorder.batches.at(-1)!.users.sort()).toEqual([bad.user, fresh.user].sort())
    expect(await row(fresh.id)).toBeUndefined()
    const stored = await row(bad.id)
    expect(stored?.state).toBe('irrevocable')
    expect(stored?.attempts).toBe(2)
    expect(await leases.count()).toBe(1)
    expect((await leases.irrevocable()).map((l) => l.id)).toEqual([bad.id])
  })

  it('counts an attempt on every lease of a batch the backend rejects as a whole', async () => {
    const issued = await issueMany('down', 3)
    recorder.failTargets.add('down')
    // A whole-call failure: the fixture's outcomes are per item, so make the call itself throw.
    const backend = server.services.mounts.byAccessor(
      (await row(issued[0]!.id))!.mount_accessor,
    )!.backend
    const original = backend.revokeSecrets!
    backend.revokeSecrets = async () => {
      throw new Error(`dial tcp: password=${LEAKY_SECRET} connection refused`)
    }
    try {
      await makeDue(issued.map((l) => l.id))
      expect(await leases.worker().runOnce()).toBe(3)
    } finally {
      backend.revokeSecrets = original
    }
    for (const lease of issued) {
      const stored = await row(lease.id)
      expect(stored?.attempts).toBe(1)
      expect(stored?.last_error).toContain('connection refused')
      expect(stored?.last_error).not.toContain(LEAKY_SECRET)
    }
  })

  it('drains a backlog in batches no larger than the limit, within the per-target cap', async () => {
    leases.tune({ revokeBatchSize: 7, perTargetLimit: 2, concurrency: 8, tickMs: 10 })
    recorder.revokeDelay.set('db', 30)
    const issued = await issueMany('db', 40)
    const bad = issued[17]!
    recorder.failUsers.add(bad.user)
    const other = await issueMany('other', 5)
    await makeDue([...issued, ...other].map((l) => l.id))
    leases.worker().start()
    await until(() => recorder.revokes.length === 44, 10_000)
    await leases.worker().stop()

    const sizes = recorder.batches.filter((b) => b.target === 'db').map((b) => b.users.length)
    // The backlog went out in batches (a lone leftover row may go through revokeSecret).
    expect(sizes.length).toBeGreaterThan(0)
    expect(Math.max(...sizes)).toBeGreaterThan(1)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7)
    expect(recorder.maxInFlight.get('db')).toBeLessThanOrEqual(2)
    // Every lease was revoked exactly once; only the failing one is left, for a retry.
    const users = recorder.revokes.map((r) => r.user)
    expect(new Set(users).size).toBe(44)
    expect(users).not.toContain(bad.user)
    expect(await leases.count()).toBe(1)
    const stored = await row(bad.id)
    expect(stored?.attempts).toBe(1)
    expect(stored?.state).toBe('active')
  })

  it('revokes a prefix in batches and reports each lease in the summary', async () => {
    const issued = await issueMany('db', 5)
    recorder.failUsers.add(issued[4]!.user)
    const summary = await leases.revokePrefix('batchtest/creds/db/')
    expect(summary.revoked).toBe(4)
    expect(summary.failed).toBe(1)
    expect(summary.firstError).toContain('refused')
    expect(summary.firstError).not.toContain(LEAKY_SECRET)
    expect(recorder.batches).toHaveLength(1)
    expect(await leases.count()).toBe(1)
    expect((await row(issued[4]!.id))?.attempts).toBe(1)
  })

  it('sends one lease per call when batching is turned off', async () => {
    leases.tune({ revokeBatchSize: 1 })
    const issued = await issueMany('db', 3)
    await makeDue(issued.map((l) => l.id))
    expect(await leases.worker().runOnce()).toBe(3)
    expect(recorder.batches).toHaveLength(0)
    expect(recorder.revokes).toHaveLength(3)
    expect(await leases.count()).toBe(0)
  })
})
