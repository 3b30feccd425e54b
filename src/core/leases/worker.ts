import { sql } from 'kysely'
import type { Logger } from '../logger.js'
import type { Storage } from '../../storage/storage.js'
import type { LeaseRow } from './rows.js'
import type { LeaseSettings } from './settings.js'

/**
 * A target may have this many rows per in-flight slot claimed (running plus queued), on top of a
 * full batch per slot when its backend batches (see `#heldCap`).
 */
const QUEUE_FACTOR = 8

export interface ExpiryWorkerDeps {
  storage: Pick<Storage, 'db' | 'capabilities'>
  settings: LeaseSettings
  logger: Logger
  /**
   * Revokes claimed rows of one target (one backend call when the backend batches) and records
   * each row's outcome on its own. Must not throw. With `background`, the rows' deletes may still
   * be pending when it resolves (`settled` waits for such deletes).
   */
  settle(rows: LeaseRow[], background: boolean): Promise<void>
  settled(): Promise<void>
  /**
   * Most rows like this one that may be settled together (1: one row per call). Default 1.
   * The manager answers `revokeBatchSize` when the row's backend has `revokeSecrets`.
   */
  batchLimit?(row: LeaseRow): number
  now?: () => number
}

/**
 * The expiry worker. Storage is the queue: each poll claims due rows (a compare-and-set on
 * `claimed_by`/`claim_until`, so nodes sharing a storage never revoke one lease twice, and a dead
 * node's claims lapse) into a small local queue, and revocations run from it with bounded
 * concurrency. Candidates are taken round-robin across `target_key`, and each target has its own
 * in-flight cap, so one dead database cannot starve the others. Nothing is held per lease beyond
 * the claimed batch, and nothing is loaded at start.
 *
 * Rows of one target whose backend revokes in batches are started together (up to `batchLimit`).
 * A batch takes one slot, of the node's `concurrency` and of its target's `perTargetLimit`: the
 * caps bound concurrent work on a target (a batch is one connection and one transaction there),
 * not rows. Batches are sized to spread a target's queued rows over its free slots, so a small
 * burst still runs in parallel and only a backlog fills whole batches.
 */
export class ExpiryWorker {
  #deps: ExpiryWorkerDeps
  #timer: NodeJS.Timeout | undefined
  #pumping: Promise<void> | undefined
  #again = false
  #claimSeq = 0
  #rotation = 0
  #keys: { at: number; keys: string[] } | undefined
  /** Claimed, not started yet. */
  #queue: LeaseRow[] = []
  /** Per target: rows running plus queued. */
  #held = new Map<string, number>()
  /** Per target: settle calls (single rows or batches) in flight. */
  #running = new Map<string, number>()
  #total = 0
  /** Per target: the batch limit of its rows (see `#heldCap`). */
  #batchOf = new Map<string, number>()
  #tasks = new Set<Promise<void>>()
  /** Claim tags whose update may have committed though the claim failed. */
  #unsettledTags = new Set<string>()

  constructor(deps: ExpiryWorkerDeps) {
    this.#deps = deps
  }

  get running(): boolean {
    return this.#timer !== undefined
  }

  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => void this.pump(), this.#deps.settings.tickMs)
    this.#timer.unref()
    void this.pump()
  }

  /** Stops polling, hands unstarted claims back to other nodes, and waits for running work. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#pumping
    const unstarted = this.#queue.splice(0)
    for (const row of unstarted) bump(this.#held, row.target_key, -1)
    if (unstarted.length > 0) {
      await this.#deps.storage.db
        .updateTable('leases')
        .set({ claimed_by: null, claim_until: null })
        .where(
          'id',
          'in',
          unstarted.map((r) => r.id),
        )
        .execute()
        .catch(() => {})
    }
    await Promise.allSettled([...this.#tasks])
    await this.#deps.settled()
  }

  /** Polls for due rows (single-flight; a call during a poll asks for another one after it). */
  pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true
      return this.#pumping
    }
    this.#pumping = this.#fill()
      .catch((err: unknown) => {
        this.#deps.logger.warn({ err: (err as Error)?.name }, 'lease expiry poll failed')
      })
      .finally(() => (this.#pumping = undefined))
    return this.#pumping
  }

  /** One synchronous pass for tests and tools: claims what is due and waits for the outcome. */
  async runOnce(): Promise<number> {
    this.#keys = undefined
    const rows = await this.#claim(this.#deps.settings.batchSize)
    for (const row of rows) bump(this.#held, row.target_key, -1)
    const groups: LeaseRow[][] = []
    const open = new Map<string, LeaseRow[]>()
    for (const row of rows) {
      let group = open.get(row.target_key)
      if (!group || group.length >= this.#batchLimit(row)) {
        group = []
        groups.push(group)
        open.set(row.target_key, group)
      }
      group.push(row)
    }
    await Promise.all(groups.map((group) => this.#deps.settle(group, false)))
    return rows.length
  }

  async #fill(): Promise<void> {
    const { settings } = this.#deps
    do {
      this.#again = false
      // Rows of a target at its in-flight cap wait without taking room from the others.
      const ready = this.#queue.filter(
        (r) => (this.#running.get(r.target_key) ?? 0) < settings.perTargetLimit,
      ).length
      const room = settings.batchSize - ready
      if (room < Math.min(settings.concurrency, settings.batchSize)) break
      const rows = await this.#claim(room)
      this.#queue.push(...rows)
      this.#dispatch()
      // Something was due, so more may be: poll again now rather than at the next tick.
      if (rows.length > 0) this.#again = true
    } while (this.#again && this.#timer)
    this.#dispatch()
  }

  #batchLimit(row: LeaseRow): number {
    const limit = this.#deps.batchLimit?.(row) ?? 1
    return Number.isInteger(limit) && limit > 1 ? limit : 1
  }

  /**
   * Starts queued work while there are free slots, skipping targets at their cap. The first ready
   * row (the queue interleaves targets) picks the target; that target's queued rows of the same
   * mount, in order, make the batch.
   */
  #dispatch(): void {
    const { concurrency, perTargetLimit } = this.#deps.settings
    const now = (this.#deps.now ?? Date.now)()
    for (let i = 0; i < this.#queue.length && this.#total < concurrency;) {
      const first = this.#queue[i]!
      const key = first.target_key
      const running = this.#running.get(key) ?? 0
      if (running >= perTargetLimit) {
        i++
        continue
      }
      // One batch is one target and one backend (mount).
      const same = (row: LeaseRow) =>
        row.target_key === key && row.mount_accessor === first.mount_accessor
      let size = 1
      const limit = this.#batchLimit(first)
      if (limit > 1) {
        let queued = 0
        for (let j = i; j < this.#queue.length; j++) if (same(this.#queue[j]!)) queued++
        const free = Math.min(perTargetLimit - running, concurrency - this.#total)
        size = Math.min(limit, Math.max(1, Math.ceil(queued / free)))
      }
      const batch: LeaseRow[] = []
      const rest = this.#queue.slice(0, i)
      for (let j = i; j < this.#queue.length; j++) {
        const row = this.#queue[j]!
        if (!same(row) || batch.length >= size) rest.push(row)
        else if (Number(row.claim_until) < now + 1000) {
          // Our claim is (almost) over: another node may take the row, so leave it to a new poll.
          bump(this.#held, key, -1)
        } else batch.push(row)
      }
      this.#queue = rest
      if (batch.length > 0) this.#start(key, batch)
    }
  }

  #start(key: string, rows: LeaseRow[]): void {
    this.#total++
    bump(this.#running, key, 1)
    const task = this.#deps.settle(rows, true).finally(() => {
      this.#total--
      bump(this.#running, key, -1)
      bump(this.#held, key, -rows.length)
      this.#tasks.delete(task)
      if (!this.#timer) return
      this.#dispatch()
      // Refill before the free slots run dry: a slot takes one row, or a batch of rows.
      if (this.#queue.length < this.#deps.settings.concurrency * this.#batchLimit(rows[0]!)) {
        void this.pump()
      }
    })
    this.#tasks.add(task)
  }

  /**
   * Every state is due once `next_attempt_at` passes (active: expiry; pending: recovery deadline;
   * irrevocable: the rare retry), so the queries filter on time alone and stay on their indexes
   * (SQLite would otherwise scan the whole `(state, next_attempt_at)` range for the claim).
   *
   * Picks candidates round-robin across targets (each target's due rows come from the
   * `(target_key, next_attempt_at)` index, so a poll costs O(targets × batch), not O(due rows)),
   * then claims them with a compare-and-set; returns the rows won (read back by the claim itself
   * where storage has `RETURNING`, else by its tag).
   */
  async #claim(limit: number): Promise<LeaseRow[]> {
    const { storage, settings } = this.#deps
    const now = (this.#deps.now ?? Date.now)()
    const db = storage.db
    if (this.#unsettledTags.size > 0) return this.#adopt(now)
    const keys = await this.#targetKeys(now)
    const picked: string[] = []
    const offset = keys.length > 0 ? this.#rotation++ % keys.length : 0
    // An equal share per target (the rotation gives any remainder to each in turn).
    const share = Math.max(1, Math.ceil(limit / Math.max(1, keys.length)))
    for (let i = 0; i < keys.length && picked.length < limit; i++) {
      const key = keys[(offset + i) % keys.length]!
      const room = Math.min(
        this.#heldCap(key) - (this.#held.get(key) ?? 0),
        share,
        limit - picked.length,
      )
      if (room <= 0) continue
      const rows = await db
        .selectFrom('leases')
        .select('id')
        .where('target_key', '=', key)
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claim_until', '<', now)]))
        .orderBy('next_attempt_at')
        .limit(room)
        .execute()
      for (const r of rows) picked.push(r.id)
    }
    if (picked.length === 0) return []

    const tag = `${settings.nodeId}:${++this.#claimSeq}`
    let won: LeaseRow[]
    try {
      const claim = db
        .updateTable('leases')
        .set({ claimed_by: tag, claim_until: now + settings.claimMs })
        .where('id', 'in', picked)
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claim_until', '<', now)]))
      if (storage.capabilities.returning) {
        // The rows won, in the claim's own round trip.
        won = await claim.returningAll().execute()
      } else {
        await claim.execute()
        won = await db
          .selectFrom('leases')
          .selectAll()
          .where('id', 'in', picked)
          .where('claimed_by', '=', tag)
          .execute()
      }
    } catch (err) {
      // The update may have committed before its answer was lost (a storage connection cut):
      // the next poll takes up the rows it claimed rather than leave them until the claim lapses.
      this.#unsettledTags.add(tag)
      throw err
    }
    // Keep the round-robin order of the candidates, so targets interleave in the queue.
    const order = new Map(picked.map((id, i) => [id, i]))
    won.sort((a, b) => order.get(a.id)! - order.get(b.id)!)
    return this.#took(won)
  }

  /** Rows claimed under tags whose claim failed half-way (see `#claim`), still ours to settle. */
  async #adopt(now: number): Promise<LeaseRow[]> {
    const tags = [...this.#unsettledTags]
    const rows = await this.#deps.storage.db
      .selectFrom('leases')
      .selectAll()
      .where('claimed_by', 'in', tags)
      .where('claim_until', '>', now)
      .execute()
    for (const tag of tags) this.#unsettledTags.delete(tag)
    return this.#took(rows)
  }

  #took(rows: LeaseRow[]): LeaseRow[] {
    for (const row of rows) {
      bump(this.#held, row.target_key, 1)
      this.#batchOf.set(row.target_key, this.#batchLimit(row))
    }
    return rows
  }

  /**
   * Rows one target may hold: `QUEUE_FACTOR` per slot, plus room for a full batch per slot when
   * its backend batches (learnt from the rows it last claimed there).
   */
  #heldCap(key: string): number {
    return this.#deps.settings.perTargetLimit * (QUEUE_FACTOR + (this.#batchOf.get(key) ?? 1) - 1)
  }

  /** Distinct target keys by a loose index scan (one index seek per target), cached for a tick. */
  async #targetKeys(now: number): Promise<string[]> {
    if (this.#keys && now - this.#keys.at < this.#deps.settings.tickMs) return this.#keys.keys
    const { rows } = await sql<{ k: string | null }>`
      with recursive t(k) as (
        select min(target_key) from leases
        union all
        select (select min(target_key) from leases where target_key > t.k) from t where t.k is not null
      )
      select k from t where k is not null`.execute(this.#deps.storage.db)
    const keys = rows.flatMap((r) => (r.k === null ? [] : [r.k]))
    this.#keys = { at: now, keys }
    const live = new Set(keys)
    for (const key of this.#batchOf.keys()) if (!live.has(key)) this.#batchOf.delete(key)
    return keys
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by
  if (n <= 0) map.delete(key)
  else map.set(key, n)
}
