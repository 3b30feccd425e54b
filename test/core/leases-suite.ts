import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { LeaseManagerControl } from '../../src/core/leases/manager.js'
import type { FreshStorage } from '../support/databases.js'
import type { DialectName } from '../../src/storage/storage.js'
import type { TestServer } from '../support/server.js'
import {
  LEAKY_SECRET,
  newRecorder,
  startLeaseServer,
  startNode,
  until,
  type Recorder,
} from './leases-fixture.js'

/** The lease manager's suite on one storage dialect (one file each, so they run in parallel). */
export function leaseManagerSuite(dialect: DialectName): void {
  describe(`lease manager on ${dialect}`, () => {
    let fresh: FreshStorage
    let server: TestServer
    let leases: LeaseManagerControl
    let recorder: Recorder

    beforeAll(async () => {
      ;({ fresh, server, recorder, leases } = await startLeaseServer(dialect, {
        path: 'leasetest/',
      }))
    })
    afterAll(async () => {
      await server?.services.seal.seal()
      await fresh?.drop()
    })
    beforeEach(async () => {
      // Deterministic by default: tests that need the background worker start it themselves.
      await leases.worker().stop()
      leases.tune({ tickMs: 25, maxAttempts: 6, backoffBaseMs: 10_000, pendingGraceMs: 60_000 })
      leases.tune({ concurrency: 32, perTargetLimit: 16, claimMs: 60_000, batchSize: 200 })
      Object.assign(recorder, newRecorder())
    })
    afterEach(async () => {
      await leases.worker().stop()
      await server.storage.db.deleteFrom('leases').execute()
    })

    async function issue(target: string, query = ''): Promise<string> {
      const res = await server.call('GET', `leasetest/creds/${target}${query}`)
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      return res.body.lease_id as string
    }
    const row = (id: string) =>
      server.storage.db.selectFrom('leases').selectAll().where('id', '=', id).executeTakeFirst()
    const makeDue = (ids: string[]) => leases.capExpiry(ids, Date.now() - 1)

    it('writes the pending lease before the backend creates the credential', async () => {
      const id = await issue('alpha')
      expect(recorder.creates).toHaveLength(1)
      expect(recorder.creates[0]!.leaseId).toBe(id)
      expect(recorder.creates[0]!.stateSeen).toBe('pending')
      expect((await row(id))?.state).toBe('active')
      expect(id).toMatch(/^leasetest\/creds\/alpha\/[0-9A-Za-z]{24}$/)
    })

    it('revokes and forgets the lease when the backend fails to create the credential', async () => {
      recorder.failCreate = true
      const res = await server.call('GET', 'leasetest/creds/alpha')
      expect(res.status).toBe(500)
      expect(JSON.stringify(res.body)).not.toContain(LEAKY_SECRET)
      expect(recorder.revokes.map((r) => r.target)).toEqual(['alpha'])
      expect(await leases.count()).toBe(0)
    })

    it('stores the revocation data sealed, not as plain text', async () => {
      const id = await issue('alpha')
      const stored = await row(id)
      expect(stored?.internal).not.toContain('alpha')
      expect(stored?.internal).not.toContain('v-alpha')
    })

    it('hands the backend data of a live lease to evidence-of-use sampling, and nothing once revoked', async () => {
      const id = await issue('alpha')
      const secret = await leases.secretOf!(id)
      expect(secret?.mountAccessor).toBe(server.services.mounts.get('leasetest/')!.entry.accessor)
      expect(secret?.internal).toMatchObject({ target: 'alpha' })
      await leases.revoke(id)
      expect(await leases.secretOf!(id)).toBeUndefined()
    })

    it('recovers a stale pending lease left by a crash and leaves a fresh one alone', async () => {
      const stale = await issue('alpha')
      const fresh2 = await issue('beta')
      const now = Date.now()
      await server.storage.db
        .updateTable('leases')
        .set({ state: 'pending', issue_time: now - 600_000, next_attempt_at: now - 1 })
        .where('id', '=', stale)
        .execute()
      await server.storage.db
        .updateTable('leases')
        .set({ state: 'pending', next_attempt_at: now + 60_000 })
        .where('id', '=', fresh2)
        .execute()
      expect(await leases.worker().runOnce()).toBe(1)
      expect(recorder.revokes.map((r) => r.target)).toEqual(['alpha'])
      expect(await row(stale)).toBeUndefined()
      expect((await row(fresh2))?.state).toBe('pending')
    })

    it('never activates an intent that recovery claimed while a slow create ran, and leaves no credential', async () => {
      let recovery: Promise<number> | undefined
      recorder.revokeDelay.set('alpha', 300)
      recorder.duringCreate = async (leaseId) => {
        // The create outlives the grace period: recovery claims the pending row and starts a
        // (slow) revocation that is still running when the create returns.
        await server.storage.db
          .updateTable('leases')
          .set({ next_attempt_at: Date.now() - 1 })
          .where('id', '=', leaseId)
          .execute()
        recovery = leases.worker().runOnce()
        await until(async () => (await row(leaseId))?.claimed_by != null)
      }
      const res = await server.call('GET', 'leasetest/creds/alpha')
      expect(res.status).toBe(503)
      await recovery
      const leaseId = recorder.creates[0]!.leaseId
      expect(await row(leaseId)).toBeUndefined()
      // Revoked by recovery (possibly before the credential existed) and again by the issuer after.
      expect(recorder.revokes.length).toBe(2)
      expect(new Set(recorder.revokes.map((r) => r.user)).size).toBe(1)
    })

    it('revokes a lease within a bounded time after it is due', async () => {
      const id = await issue('alpha', '?ttl=1')
      const expireTime = Number((await row(id))!.expire_time)
      leases.worker().start()
      await until(async () => (await row(id)) === undefined, 5000)
      expect(recorder.revokes).toHaveLength(1)
      const lag = recorder.revokes[0]!.at - expireTime
      expect(lag).toBeGreaterThanOrEqual(0)
      expect(lag).toBeLessThan(1000)
    })

    it('lets two nodes on one storage revoke every lease exactly once', async () => {
      const other = await startNode(fresh.url, recorder, 'b')
      try {
        other.leases.tune({ tickMs: 10, batchSize: 20 })
        leases.tune({ tickMs: 10, batchSize: 20 })
        recorder.revokeDelay.set('alpha', 2)
        const ids: string[] = []
        for (let i = 0; i < 120; i++) ids.push(await issue('alpha'))
        await makeDue(ids)
        leases.worker().start()
        other.leases.worker().start()
        await until(async () => (await leases.count()) === 0, 15_000)
        const users = recorder.revokes.map((r) => r.user)
        expect(users).toHaveLength(120)
        expect(new Set(users).size).toBe(120)
      } finally {
        await other.close()
      }
    })

    it('picks up leases claimed by a node that died once its claim lapses', async () => {
      const ids = [await issue('alpha'), await issue('alpha')]
      await makeDue(ids)
      await server.storage.db
        .updateTable('leases')
        .set({ claimed_by: 'dead-node:1', claim_until: Date.now() + 300 })
        .execute()
      expect(await leases.worker().runOnce()).toBe(0)
      await new Promise((r) => setTimeout(r, 350))
      expect(await leases.worker().runOnce()).toBe(2)
      expect(await leases.count()).toBe(0)
    })

    it('backs off after failures, then marks the lease irrevocable, then force-revokes it', async () => {
      leases.tune({ maxAttempts: 3, backoffBaseMs: 60_000 })
      recorder.failTargets.add('dead')
      const id = await issue('dead')
      await makeDue([id])
      expect(await leases.worker().runOnce()).toBe(1)
      let stored = await row(id)
      expect(stored?.state).toBe('active')
      expect(stored?.attempts).toBe(1)
      // 60 s base with ±50% jitter: the retry is at least 30 s away, so the next pass skips it.
      expect(Number(stored?.next_attempt_at)).toBeGreaterThan(Date.now() + 25_000)
      expect(stored?.last_error).toContain('refused')
      expect(stored?.last_error).not.toContain(LEAKY_SECRET)
      expect(await leases.worker().runOnce()).toBe(0)

      const retryNow = () =>
        server.storage.db
          .updateTable('leases')
          .set({ next_attempt_at: 0 })
          .where('id', '=', id)
          .execute()
      await retryNow()
      expect(await leases.worker().runOnce()).toBe(1)
      expect((await row(id))?.state).toBe('active')
      await retryNow()
      expect(await leases.worker().runOnce()).toBe(1)
      stored = await row(id)
      expect(stored?.attempts).toBe(3)
      expect(Number(stored?.next_attempt_at)).toBeGreaterThan(Date.now() + 3600_000)
      expect(await leases.count({ state: 'irrevocable' })).toBe(1)
      const listed = await leases.irrevocable()
      expect(listed.map((l) => l.id)).toEqual([id])
      expect(listed[0]!.revokeError).toContain('refused')

      const summary = await leases.revokePrefix(id, { force: true })
      expect(summary).toMatchObject({ revoked: 0, failed: 1 })
      expect(await row(id)).toBeUndefined()
    })

    it('keeps revoking healthy targets while another target hangs and fails', async () => {
      // A batch smaller than the dead target's backlog: it must not fill the batch on its own.
      leases.tune({ concurrency: 8, perTargetLimit: 4, tickMs: 10, batchSize: 16 })
      recorder.failTargets.add('dead')
      recorder.revokeDelay.set('dead', 1500)
      const dead: string[] = []
      for (let i = 0; i < 20; i++) dead.push(await issue('dead'))
      const alive: string[] = []
      for (let i = 0; i < 20; i++) alive.push(await issue('alive'))
      // The dead target's leases are due first, so a plain "oldest first" queue would serve them.
      await leases.capExpiry(dead, Date.now() - 10_000)
      await leases.capExpiry(alive, Date.now() - 1)
      const started = Date.now()
      leases.worker().start()
      await until(() => recorder.revokes.filter((r) => r.target === 'alive').length === 20, 3000)
      // Served behind the dead target, they would wait at least one 1.5 s round of its revokes.
      expect(Date.now() - started).toBeLessThan(1200)
    })

    it('caps a renewal at the lease max TTL with a warning and tells the backend first', async () => {
      const id = await issue('alpha', '?ttl=10&max_ttl=20')
      const { ttl, warnings } = await leases.renew(id, 100)
      expect(ttl).toBeLessThanOrEqual(20)
      expect(ttl).toBeGreaterThanOrEqual(19)
      expect(warnings[0]).toMatch(
        /exceeded the effective max_ttl of .*TTL value is capped accordingly/,
      )
      expect(recorder.renews).toHaveLength(1)
      expect(Number((await row(id))!.expire_time)).toBe(recorder.renews[0]!.expireTime)
      expect((await row(id))!.last_renewal).not.toBeNull()
    })

    it('refuses to renew a lease that is not renewable', async () => {
      const id = await issue('alpha', '?renewable=false')
      await expect(leases.renew(id, 10)).rejects.toThrow('lease is not renewable')
      expect(recorder.renews).toHaveLength(0)
    })

    it('never raises an expiry when capping it', async () => {
      const id = await issue('alpha', '?ttl=30')
      const before = Number((await row(id))!.expire_time)
      await leases.capExpiry([id], before + 60_000)
      expect(Number((await row(id))!.expire_time)).toBe(before)
      await leases.capExpiry([id], before - 10_000)
      expect(Number((await row(id))!.expire_time)).toBe(before - 10_000)
    })

    it('gives a capped lease its time back when the cap is raised, never past its own max (issue 12, item 13)', async () => {
      const id = await issue('alpha', '?ttl=600&max_ttl=900')
      const issued = await row(id)
      const ownMax = Number(issued!.max_expire_time)
      const cap = Date.now() + 60_000
      await leases.capExpiry([id], cap)
      expect(Number((await row(id))!.expire_time)).toBe(cap)
      expect(Number((await row(id))!.max_expire_time)).toBe(cap)

      // Raised within its own max: expiry and max follow, and the backend is told.
      recorder.renews.length = 0
      await leases.raiseCap([id], cap + 120_000)
      let now = (await row(id))!
      expect(Number(now.expire_time)).toBe(cap + 120_000)
      expect(Number(now.max_expire_time)).toBe(cap + 120_000)
      expect(Number(now.next_attempt_at)).toBe(cap + 120_000)
      expect(recorder.renews.map((r) => r.expireTime)).toEqual([cap + 120_000])
      // A renewal still stops there.
      await leases.renew(id, 3600)
      expect(Number((await row(id))!.expire_time)).toBeLessThanOrEqual(cap + 120_000)

      // Raised beyond it: the lease stops at the max it was issued with.
      await leases.raiseCap([id], ownMax + 3600_000)
      now = (await row(id))!
      expect(Number(now.max_expire_time)).toBe(ownMax)
      expect(Number(now.expire_time)).toBe(ownMax)
    })

    it('leaves a lease whose own TTL ended before the cap at its expiry when the cap is raised', async () => {
      const id = await issue('alpha', '?ttl=30&max_ttl=900')
      const expiry = Number((await row(id))!.expire_time)
      const cap = Date.now() + 120_000
      await leases.capExpiry([id], cap)
      expect(Number((await row(id))!.expire_time)).toBe(expiry)
      expect(Number((await row(id))!.max_expire_time)).toBe(cap)
      await leases.raiseCap([id], cap + 60_000)
      expect(Number((await row(id))!.expire_time)).toBe(expiry)
      expect(Number((await row(id))!.max_expire_time)).toBe(cap + 60_000)
    })

    it('revokes the leases of a token when the token is revoked', async () => {
      const child = await server.services.tokens.create({
        policies: ['root'],
        path: 'auth/token/create',
        defaultTtl: 3600,
        maxTtl: 3600,
      })
      const res = await server.call('GET', 'leasetest/creds/alpha', { token: child.token })
      expect(res.status).toBe(200)
      const mine = await issue('beta')
      await server.services.tokens.revokeTree(child.entry)
      expect(recorder.revokes.map((r) => r.target)).toEqual(['alpha'])
      expect(await row(res.body.lease_id)).toBeUndefined()
      expect(await row(mine)).toBeDefined()
    })

    it('revokes only the leases under a prefix', async () => {
      const a = [await issue('alpha'), await issue('alpha')]
      const b = await issue('beta')
      const summary = await leases.revokePrefix('leasetest/creds/alpha')
      expect(summary).toMatchObject({ revoked: 2, failed: 0 })
      expect(await row(a[0]!)).toBeUndefined()
      expect(await row(b)).toBeDefined()
      // A prefix that is a proper string prefix but not a path prefix revokes nothing.
      expect((await leases.revokePrefix('leasetest/creds/bet')).revoked).toBe(0)
    })

    it('lists the direct children of a prefix', async () => {
      const a1 = await issue('alpha')
      const a2 = await issue('alpha')
      await issue('beta')
      expect(await leases.list('leasetest/')).toEqual(['creds/'])
      expect(await leases.list('leasetest/creds/')).toEqual(['alpha/', 'beta/'])
      const suffixes = [a1, a2].map((id) => id.split('/').pop()).sort()
      expect(await leases.list('leasetest/creds/alpha/')).toEqual(suffixes)
      expect(await leases.list('nothing/')).toEqual([])
    })

    it('revokes everything under a mount when it is disabled, keeping failures as irrevocable', async () => {
      await server.services.mounts.enable({ path: 'gone/', kind: 'secret', type: 'test-leases' })
      const ok = await server.call('GET', 'gone/creds/alpha')
      recorder.failTargets.add('dead')
      const bad = await server.call('GET', 'gone/creds/dead')
      const kept = await issue('alpha')
      await server.services.mounts.disable('gone/')
      expect(await row(ok.body.lease_id)).toBeUndefined()
      const stuck = await row(bad.body.lease_id)
      expect(stuck?.state).toBe('irrevocable')
      expect(stuck?.last_error).toContain('mount was disabled')
      expect(await row(kept)).toBeDefined()
    })

    it('tidies leases whose token no longer exists', async () => {
      const id = await issue('alpha')
      await server.storage.db.updateTable('leases').set({ token_id: 'no-such-token' }).execute()
      expect(await leases.tidy()).toBe(1)
      expect(await row(id)).toBeUndefined()
    })
  })
}
