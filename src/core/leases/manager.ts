import { sql, type SelectQueryBuilder } from 'kysely'
import type { Barrier } from '../barrier.js'
import { ApiError, badRequest } from '../errors.js'
import type { Logger } from '../logger.js'
import type { MountEntry, MountTable } from '../mounts.js'
import { sanitizeError } from '../../../plugins/sanitize.js'
import { fmt } from '../tokens.js'
import { isConnectionLoss } from '../../storage/connection-loss.js'
import type { Storage } from '../../storage/storage.js'
import type { Tables } from '../../storage/tables.js'
import { groupCommit } from './group-commit.js'
import { leaseTimes } from './times.js'
import { createLeaseListing } from './listing.js'
import { mapLimit } from './map-limit.js'
import { MAX_CHAR, newLeaseId, toLeaseInfo, type LeaseRow } from './rows.js'
import { backoffMs, defaultLeaseSettings, type LeaseSettings } from './settings.js'
import type { IssueInput, LeaseInfo, LeaseManager, RevokeSummary } from './types.js'
import { ExpiryWorker } from './worker.js'

export interface LeaseManagerDeps {
  storage: Storage
  barrier: Pick<Barrier, 'encrypt' | 'decrypt'>
  mounts: Pick<MountTable, 'byAccessor'>
  /** Effective default/max TTL of a mount (seconds), resolved against the system values. */
  mountTtls(mount: MountEntry): { defaultTtl: number; maxTtl: number }
  logger: Logger
  settings?: Partial<LeaseSettings>
  now?: () => number
  /** Observers for metrics: a revocation done (ms after the lease was due), or failed. */
  onRevoked?(lagMs: number): void
  onRevokeFailed?(mountPath: string): void
}

/** The manager plus what tests and benchmarks need to steer it. */
export interface LeaseManagerControl extends LeaseManager {
  /** Live settings; `tune` changes them (the worker restarts when its tick changes). */
  readonly settings: LeaseSettings
  tune(changes: Partial<LeaseSettings>): void
  /** The single expiry worker of this manager. */
  worker(): ExpiryWorker
}

const PAGE = 500
const ERROR_LIMIT = 1000
/** Tries of a revoked row's background delete when storage connections are lost (0.5 s, 1 s, …). */
const DELETE_ATTEMPTS = 5

/**
 * The lease lifecycle, top to bottom:
 *
 * 1. `issue`: write the lease as `pending` (the intent), let the backend create the credential,
 *    mark it `active`. A failed create is revoked at once; a crash leaves a `pending` row that the
 *    worker revokes once it is older than `pendingGraceMs`.
 * 2. `renew`: the backend extends the credential first, then the row; never past the max TTL.
 *    `capExpiry` lowers expiries and maxes to a JIT grant's end; `raiseCap` gives the time back
 *    when the grant is extended, never past the max the lease was issued with.
 * 3. Revocation, by id, prefix, token or mount, or by the worker when `next_attempt_at` passes:
 *    backend `revokeSecret` with the sealed internal data (or `revokeSecrets` for up to
 *    `revokeBatchSize` rows of one mount at once, when the backend has it; each row still gets
 *    its own outcome), then the row is deleted. A failure
 *    keeps the row with its sanitised error and a jittered backoff; after `maxAttempts` the lease
 *    is `irrevocable` (listed, counted, retried daily, force-revocable).
 */
export function createLeaseManager(deps: LeaseManagerDeps): LeaseManagerControl {
  const { storage, barrier, mounts, logger } = deps
  const db = storage.db
  const now = deps.now ?? Date.now
  const settings: LeaseSettings = { ...defaultLeaseSettings(), ...deps.settings }

  const seal = (id: string, internal: Record<string, unknown>) =>
    barrier.encrypt('leases', 'internal', id, JSON.stringify(internal))
  const unseal = (row: LeaseRow) =>
    JSON.parse(barrier.decrypt('leases', 'internal', row.id, row.internal)) as Record<
      string,
      unknown
    >
  // Revoked rows are deleted together: one commit per burst. The worker does not wait for its
  // deletes (its rows stay claimed meanwhile), so they gather over a few milliseconds.
  const deleteNow = groupCommit<string>(async (ids) => {
    await db.deleteFrom('leases').where('id', 'in', ids).execute()
  })
  const deleteSoon = groupCommit<string>(
    async (ids) => {
      await db.deleteFrom('leases').where('id', 'in', ids).execute()
    },
    { delayMs: 10, maxItems: 200 },
  )
  /**
   * Deletes a revoked row in the background. A delete that failed leaves the row claimed; once the
   * claim lapses it is revoked again (backends treat that as success), so a delete that lost its
   * storage connection is tried again soon instead of leaving a revoked lease listed meanwhile.
   */
  const deleteRevoked = (id: string, attempt = 1): void => {
    deleteSoon.add(id).catch((err: unknown) => {
      if (attempt < DELETE_ATTEMPTS && isConnectionLoss(err)) {
        setTimeout(() => deleteRevoked(id, attempt + 1), 250 * 2 ** attempt).unref()
        return
      }
      logger.warn({ leaseId: id, err: sanitizeError(err) }, 'lease row delete failed')
    })
  }
  const getRow = (id: string) =>
    db.selectFrom('leases').selectAll().where('id', '=', id).executeTakeFirst()

  // ---- 1. Issue --------------------------------------------------------------------------------

  async function issue(input: IssueInput) {
    const issuedAt = now()
    const times = leaseTimes(input, deps.mountTtls(input.mount), issuedAt)
    const { ttl, expireTime } = times
    const id = newLeaseId(input.path)
    const internal = seal(id, input.internal)

    await db
      .insertInto('leases')
      .values({
        id,
        mount_accessor: input.mount.accessor,
        mount_path: input.mount.path,
        path: input.path.replace(/\/+$/, ''),
        token_id: input.token.id,
        state: 'pending',
        ttl,
        issue_time: issuedAt,
        expire_time: expireTime,
        max_expire_time: times.maxExpireTime,
        // Lowered by `notAfter`: what an extension of the grant may give back.
        own_max_expire_time: times.ownMaxExpireTime,
        last_renewal: null,
        renewable: input.renewable ? 1 : 0,
        internal,
        target_key: input.targetKey,
        attempts: 0,
        next_attempt_at: issuedAt + settings.pendingGraceMs,
        last_error: null,
        claimed_by: null,
        claim_until: null,
      })
      .execute()

    try {
      await input.create(id, expireTime)
    } catch (err) {
      await undoIssue(id, input.mount.accessor, input.internal)
      throw err
    }

    // Only an unclaimed intent becomes active: a claim on a pending row is crash recovery.
    const activated = await db
      .updateTable('leases')
      .set({ state: 'active', next_attempt_at: expireTime })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .where('claimed_by', 'is', null)
      .executeTakeFirst()
    if (Number(activated.numUpdatedRows) !== 1) {
      // Recovery took the row while create ran past the grace period. Its revocation may have
      // run before the credential existed, so revoke it here too (idempotent): no orphan is left.
      await mounts
        .byAccessor(input.mount.accessor)
        ?.backend.revokeSecret?.(input.internal)
        .catch((err: unknown) =>
          logger.warn(
            { leaseId: id, err: sanitizeError(err) },
            'revoking a recovered issue failed',
          ),
        )
      throw new ApiError(
        503,
        'the credential was recovered before it became active; retry the request',
      )
    }
    return { leaseId: id, ttl, expireTime }
  }

  /** A create failed: revoke whatever it may have left, then drop the intent. */
  async function undoIssue(id: string, accessor: string, internal: Record<string, unknown>) {
    try {
      await mounts.byAccessor(accessor)?.backend.revokeSecret?.(internal)
      await db.deleteFrom('leases').where('id', '=', id).execute()
    } catch (err) {
      // Keep the pending row: recovery retries the revocation after the grace period.
      logger.warn({ leaseId: id, err: sanitizeError(err) }, 'rollback of a failed issue failed')
    }
  }

  // ---- 2. Lookup and renew ---------------------------------------------------------------------

  async function lookup(leaseId: string): Promise<LeaseInfo | undefined> {
    const row = await getRow(leaseId)
    return row ? toLeaseInfo(row, now()) : undefined
  }

  async function secretOf(leaseId: string) {
    const row = await getRow(leaseId)
    if (!row || row.state !== 'active') return undefined
    return { mountAccessor: row.mount_accessor, internal: unseal(row) }
  }

  async function renew(leaseId: string, incrementSeconds: number) {
    const row = await getRow(leaseId)
    if (!row || row.state === 'pending') throw badRequest('lease not found')
    if (Number(row.renewable) !== 1) throw badRequest('lease is not renewable')
    const at = now()
    if (row.state !== 'active' || Number(row.expire_time) <= at) throw badRequest('lease expired')

    const left = Math.floor((effectiveMax(row, Number(row.max_expire_time)) - at) / 1000)
    if (left <= 0) throw badRequest('past the max TTL, cannot renew')
    const warnings: string[] = []
    let ttl = incrementSeconds > 0 ? incrementSeconds : Number(row.ttl)
    if (ttl > left) {
      warnings.push(
        `TTL of "${fmt(ttl)}" exceeded the effective max_ttl of "${fmt(left)}"; TTL value is capped accordingly`,
      )
      ttl = left
    }
    const expireTime = at + ttl * 1000

    try {
      await renewOnBackend(row, expireTime)
    } catch (err) {
      throw badRequest(`failed to renew entry: ${sanitizeError(err).slice(0, ERROR_LIMIT)}`)
    }
    if (!(await moveExpiry(leaseId, expireTime, at))) throw badRequest('lease expired')
    return { ttl, warnings }
  }

  /** A lease's latest possible expiry: `maxExpire`, and never past its mount's max TTL. */
  function effectiveMax(row: LeaseRow, maxExpire: number): number {
    const mounted = mounts.byAccessor(row.mount_accessor)
    if (!mounted) return maxExpire
    return Math.min(maxExpire, Number(row.issue_time) + deps.mountTtls(mounted.entry).maxTtl * 1000)
  }

  /** Tells the backend a lease's new expiry (e.g. PostgreSQL's VALID UNTIL). Throws its error. */
  async function renewOnBackend(row: LeaseRow, expireTime: number) {
    await mounts.byAccessor(row.mount_accessor)?.backend.renewSecret?.(unseal(row), expireTime)
  }

  /** Moves a live lease's expiry, unless the worker has claimed it meanwhile. */
  async function moveExpiry(leaseId: string, expireTime: number, at: number): Promise<boolean> {
    const updated = await db
      .updateTable('leases')
      .set({ expire_time: expireTime, next_attempt_at: expireTime, last_renewal: at })
      .where('id', '=', leaseId)
      .where('state', '=', 'active')
      .where((eb) => eb.or([eb('claimed_by', 'is', null), eb('claim_until', '<', at)]))
      .executeTakeFirst()
    return Number(updated.numUpdatedRows) === 1
  }

  /**
   * Lowers expiries and maxes to `expireTime` (never raises them), keeping the max each lease was
   * issued with for `raiseCap`; the backend is told best-effort of the expiries that moved.
   */
  async function capExpiry(leaseIds: string[], expireTime: number) {
    for (let i = 0; i < leaseIds.length; i += PAGE) {
      const ids = leaseIds.slice(i, i + PAGE)
      // expire_time <= max_expire_time always: a lease whose expiry is before the cap still has
      // its max lowered, so no renewal takes it past the cap.
      const rows = await db
        .selectFrom('leases')
        .selectAll()
        .where('id', 'in', ids)
        .where('state', '=', 'active')
        .where('max_expire_time', '>', expireTime)
        .execute()
      if (rows.length === 0) continue
      await db
        .updateTable('leases')
        .set({
          // First: MySQL evaluates assignments left to right, so this must read the old max.
          own_max_expire_time: sql`case when own_max_expire_time is null then max_expire_time else own_max_expire_time end`,
          max_expire_time: expireTime,
          expire_time: sql`case when expire_time > ${expireTime} then ${expireTime} else expire_time end`,
          next_attempt_at: sql`case when next_attempt_at > ${expireTime} then ${expireTime} else next_attempt_at end`,
        })
        .where('id', 'in', ids)
        .where('state', '=', 'active')
        .where('max_expire_time', '>', expireTime)
        .execute()
      const moved = rows.filter((row) => Number(row.expire_time) > expireTime)
      await mapLimit(moved, settings.concurrency, async (row) => {
        try {
          await renewOnBackend(row, expireTime)
        } catch (err) {
          logger.warn(
            { leaseId: row.id, err: sanitizeError(err) },
            'could not lower a credential expiry',
          )
        }
      })
    }
  }

  /**
   * Gives leases back what `capExpiry` took, up to a later `expireTime` (a JIT grant was
   * extended): raises their max, never past the max they were issued with nor their mount's, and
   * renews those whose expiry sat at the old cap up to the new max, backend first (best-effort,
   * as `capExpiry`). A lease whose own TTL ended before the cap keeps it (it may be renewed).
   */
  async function raiseCap(leaseIds: string[], expireTime: number) {
    const at = now()
    for (let i = 0; i < leaseIds.length; i += PAGE) {
      const rows = await db
        .selectFrom('leases')
        .selectAll()
        .where('id', 'in', leaseIds.slice(i, i + PAGE))
        .where('state', '=', 'active')
        .where('own_max_expire_time', 'is not', null)
        .where('expire_time', '>', at)
        .execute()
      await mapLimit(rows, settings.concurrency, async (row) => {
        const ownMax = Number(row.own_max_expire_time)
        const oldMax = Number(row.max_expire_time)
        const newMax = Math.min(expireTime, effectiveMax(row, ownMax))
        if (newMax <= oldMax) return
        const raised = await db
          .updateTable('leases')
          .set({ max_expire_time: newMax, own_max_expire_time: newMax >= ownMax ? null : ownMax })
          .where('id', '=', row.id)
          .where('state', '=', 'active')
          .where('max_expire_time', '=', oldMax)
          .executeTakeFirst()
        // At the cap to the second (renewals count whole seconds): the cap is what stopped it.
        const atCap = Number(row.expire_time) > oldMax - 1000
        if (Number(raised.numUpdatedRows) !== 1 || !atCap) return
        try {
          await renewOnBackend(row, newMax)
        } catch (err) {
          logger.warn(
            { leaseId: row.id, err: sanitizeError(err) },
            'could not extend a credential expiry',
          )
          return
        }
        await moveExpiry(row.id, newMax, at)
      })
    }
  }

  // ---- 3. Revoke -------------------------------------------------------------------------------

  /** Asks the backend to revoke one lease's secret. Throws the backend's (unsanitised) error. */
  async function revokeSecret(row: LeaseRow) {
    const mounted = mounts.byAccessor(row.mount_accessor)
    if (!mounted) throw new Error(`mount ${row.mount_path} is not available on this node`)
    if (mounted.backend.revokeSecret) await mounted.backend.revokeSecret(unseal(row))
  }

  /** How many rows like this one may go to their backend together (1: it cannot batch). */
  const batchLimit = (row: LeaseRow): number =>
    mounts.byAccessor(row.mount_accessor)?.backend.revokeSecrets
      ? Math.max(1, settings.revokeBatchSize)
      : 1

  /**
   * Asks the backends to revoke these rows' secrets: one `revokeSecrets` call per mount that has
   * it, else `revokeSecret` row by row (in turn: the rows hold one worker slot). Returns one
   * outcome per row, in order: undefined when revoked, else `{ err }` with the unsanitised error.
   */
  async function revokeSecrets(rows: LeaseRow[]): Promise<Array<{ err: unknown } | undefined>> {
    const outcomes: Array<{ err: unknown } | undefined> = rows.map(() => undefined)
    const byMount = new Map<string, number[]>()
    rows.forEach((row, i) => {
      const group = byMount.get(row.mount_accessor)
      if (group) group.push(i)
      else byMount.set(row.mount_accessor, [i])
    })
    for (const [accessor, group] of byMount) {
      const backend = mounts.byAccessor(accessor)?.backend
      if (!backend?.revokeSecrets || group.length === 1) {
        for (const i of group) {
          try {
            await revokeSecret(rows[i]!)
          } catch (err) {
            outcomes[i] = { err }
          }
        }
        continue
      }
      const sent: number[] = []
      const internals: Record<string, unknown>[] = []
      for (const i of group) {
        try {
          internals.push(unseal(rows[i]!))
          sent.push(i)
        } catch (err) {
          outcomes[i] = { err }
        }
      }
      if (sent.length === 0) continue
      try {
        const results = await backend.revokeSecrets(internals)
        if (!Array.isArray(results) || results.length !== sent.length) {
          throw new Error(
            `the backend answered ${Array.isArray(results) ? results.length : 'no'} outcomes for ${sent.length} revocations`,
          )
        }
        sent.forEach((i, k) => {
          if (results[k] !== undefined) outcomes[i] = { err: results[k] }
        })
      } catch (err) {
        // The whole call failed (e.g. the target is unreachable): every row failed with it.
        for (const i of sent) outcomes[i] = { err }
      }
    }
    return outcomes
  }

  /**
   * Records a revocation's outcome: success deletes the row, failure counts an attempt and
   * schedules the retry (or makes the lease irrevocable). Returns the sanitised error, if any.
   */
  async function settleRow(
    row: LeaseRow,
    outcome: { err: unknown } | undefined,
    mode: RevokeMode,
  ): Promise<string | undefined> {
    const error = outcome ? sanitizeError(outcome.err).slice(0, ERROR_LIMIT) : undefined
    if (error !== undefined) deps.onRevokeFailed?.(row.mount_path)
    else if (row.state === 'active' && Number(row.expire_time) <= now()) {
      // Lag counts only for leases revoked because they expired, not early revocations.
      deps.onRevoked?.(now() - Number(row.expire_time))
    }
    if (error === undefined || mode.force) {
      if (mode.background) {
        deleteRevoked(row.id)
      } else {
        await deleteNow.add(row.id)
      }
      return error
    }
    const attempts = Number(row.attempts) + 1
    const at = now()
    const giveUp = mode.irrevocableNote !== undefined || attempts >= settings.maxAttempts
    const lastError = mode.irrevocableNote ? `${error}; ${mode.irrevocableNote}` : error
    await db
      .updateTable('leases')
      .set({
        attempts,
        state: giveUp ? 'irrevocable' : row.state,
        next_attempt_at:
          at + (giveUp ? settings.irrevocableRetryMs : backoffMs(settings, attempts)),
        last_error: lastError,
        claimed_by: null,
        claim_until: null,
      })
      .where('id', '=', row.id)
      .execute()
    logger.warn(
      { leaseId: row.id, attempts, irrevocable: giveUp, err: lastError },
      'lease revocation failed',
    )
    return error
  }

  /**
   * Revokes rows (batched per mount where the backend can) and records each row's outcome on its
   * own. One result per row: fulfilled with the sanitised revocation error (undefined: revoked),
   * or rejected when recording the outcome failed (storage trouble).
   */
  async function revokeRows(
    rows: LeaseRow[],
    mode: RevokeMode = {},
  ): Promise<Array<PromiseSettledResult<string | undefined>>> {
    const outcomes = await revokeSecrets(rows)
    // Together, so the deletes of a batch share one group commit.
    return Promise.allSettled(rows.map((row, i) => settleRow(row, outcomes[i], mode)))
  }

  /** Revokes one row and records the outcome. Returns the sanitised error, if any. */
  async function revokeRow(row: LeaseRow, mode: RevokeMode = {}): Promise<string | undefined> {
    const [result] = await revokeRows([row], mode)
    if (result!.status === 'rejected') throw result!.reason
    return result!.value
  }

  /** Splits rows into batches of one mount each, as large as its backend takes. */
  function batchesOf(rows: LeaseRow[]): LeaseRow[][] {
    const batches: LeaseRow[][] = []
    const open = new Map<string, LeaseRow[]>()
    for (const row of rows) {
      let batch = open.get(row.mount_accessor)
      if (!batch || batch.length >= batchLimit(row)) {
        batch = []
        batches.push(batch)
        open.set(row.mount_accessor, batch)
      }
      batch.push(row)
    }
    return batches
  }

  async function revoke(leaseId: string) {
    const row = await getRow(leaseId)
    if (!row) return
    const error = await revokeRow(row)
    if (error !== undefined) throw badRequest(`failed to revoke lease: ${error}`)
  }

  /** Revokes every row a query selects, page by page (keyset on id, so failures are skipped). */
  async function revokeWhere(
    where: (q: RowQuery) => RowQuery,
    mode: { force?: boolean; irrevocableNote?: string } = {},
  ): Promise<RevokeSummary> {
    const summary: RevokeSummary = { revoked: 0, failed: 0 }
    let after = ''
    for (;;) {
      const rows = await where(db.selectFrom('leases').selectAll())
        .where('id', '>', after)
        .orderBy('id')
        .limit(PAGE)
        .execute()
      if (rows.length === 0) return summary
      await mapLimit(batchesOf(rows), settings.concurrency, async (batch) => {
        for (const result of await revokeRows(batch, mode)) {
          if (result.status === 'rejected') throw result.reason
          const error = result.value
          if (error === undefined) summary.revoked++
          else {
            summary.failed++
            summary.firstError ??= error
          }
        }
      })
      after = rows[rows.length - 1]!.id
    }
  }

  async function revokePrefix(prefix: string, opts: { force?: boolean } = {}) {
    let from = prefix
    if (!prefix.endsWith('/')) {
      const exact = await getRow(prefix)
      if (exact) {
        const error = await revokeRow(exact, opts)
        return error === undefined
          ? { revoked: 1, failed: 0 }
          : { revoked: 0, failed: 1, firstError: error }
      }
      from = prefix === '' ? '' : `${prefix}/`
    }
    return revokeWhere((q) => q.where('id', '>=', from).where('id', '<', from + MAX_CHAR), opts)
  }

  async function revokeByTokens(tokenIds: string[]) {
    for (let i = 0; i < tokenIds.length; i += PAGE) {
      const ids = tokenIds.slice(i, i + PAGE)
      await revokeWhere((q) => q.where('token_id', 'in', ids))
    }
  }

  const revokeByMount = (accessor: string) =>
    revokeWhere((q) => q.where('mount_accessor', '=', accessor), {
      irrevocableNote: 'the mount was disabled before the secret could be revoked',
    })

  async function tidy() {
    const orphaned = (q: RowQuery) =>
      q.where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('tokens').select('tokens.id').whereRef('tokens.id', '=', 'leases.token_id'),
          ),
        ),
      )
    const found = await orphaned(db.selectFrom('leases').selectAll()).limit(1).execute()
    if (found.length === 0) return 0
    const summary = await revokeWhere(orphaned)
    return summary.revoked + summary.failed
  }

  // ---- Listing and counting (listing.ts) --------------------------------------------------------

  const { list, count, countByMount, irrevocable } = createLeaseListing({ storage, now })

  // ---- Worker ----------------------------------------------------------------------------------

  const expiryWorker = new ExpiryWorker({
    storage,
    settings,
    logger,
    now,
    settled: () => deleteSoon.settled(),
    batchLimit,
    settle: async (rows, background) => {
      let results: Array<PromiseSettledResult<string | undefined>>
      try {
        results = await revokeRows(rows, { background })
      } catch (err) {
        results = rows.map(() => ({ status: 'rejected', reason: err }))
      }
      results.forEach((result, i) => {
        // Storage trouble: the claim lapses and another tick (or node) retries.
        if (result.status === 'rejected') {
          logger.warn(
            { leaseId: rows[i]!.id, err: sanitizeError(result.reason) },
            'lease settle failed',
          )
        }
      })
    },
  })

  return {
    settings,
    tune(changes) {
      const restart = changes.tickMs !== undefined && changes.tickMs !== settings.tickMs
      Object.assign(settings, changes)
      if (restart && expiryWorker.running) {
        void expiryWorker.stop().then(() => expiryWorker.start())
      }
    },
    issue,
    lookup,
    secretOf,
    list,
    renew,
    revoke,
    revokePrefix,
    revokeByTokens,
    revokeByMount,
    capExpiry,
    raiseCap,
    tidy,
    count,
    countByMount,
    irrevocable,
    worker: () => expiryWorker,
  }
}

/** How a revocation treats failures: `force` deletes anyway; a note makes them irrevocable. */
interface RevokeMode {
  force?: boolean
  irrevocableNote?: string
  /** Worker: do not wait for the row's delete (it joins a delayed group commit). */
  background?: boolean
}

/** A `SELECT * FROM leases` being narrowed by a revocation's filter. */
type RowQuery = SelectQueryBuilder<Tables, 'leases', LeaseRow>
