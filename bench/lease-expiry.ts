import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import postgres from 'postgres'
import { createRootToken } from '../src/engines/sys/seal.js'
import { composeServer, type Stint } from '../src/server/compose.js'

/**
 * Expiry benchmark (issue 4 §7, performance.md T3/T9): 10,000 leases whose credentials are real
 * PostgreSQL roles come due; the expiry worker revokes them through a benchmark backend whose
 * `revokeSecrets` drops each batch the worker hands it (up to `revokeBatchSize` leases of the
 * target) with one `DROP ROLE IF EXISTS a, b, ...` (and `revokeSecret` drops one role). Printed
 * side by side, in the same run, with two raw baselines from postgres.js at the same concurrency:
 *
 * - raw DROP ROLE: one role per statement, each its own autocommit (the issue's baseline, and
 *   what an unbatched revocation costs);
 * - raw batched DROP ROLE: `DROP ROLE IF EXISTS` over BENCH_BATCH roles per statement, the same
 *   batch size the worker uses, so the manager's own overhead shows against like-for-like SQL.
 *
 * - backlog: all leases due at the same instant → revocations/s ÷ raw DROP ROLE/s (target ≥ 0.8),
 *   also ÷ the raw batched rate, and the p99 of (revoked at − expires at), which here is the
 *   time to drain the backlog;
 * - spread: 2,000 leases due evenly at half the raw rate (below capacity) → p99 lag ÷ tick
 *   (T9 ≤ 2).
 *
 * Env: BENCH_LEASES (10000), BENCH_CONCURRENCY (8), BENCH_TICK_MS (250), BENCH_SPREAD_LEASES (2000),
 * BENCH_BATCH (50, the worker's `revokeBatchSize`),
 * STINT_TEST_PG_TARGET_URL (a role with CREATEROLE on the target database), BENCH_STORAGE_URL
 * (Stint's own storage; default a fresh SQLite file).
 */
const N = Number(process.env.BENCH_LEASES ?? 10_000)
const C = Number(process.env.BENCH_CONCURRENCY ?? 8)
const TICK = Number(process.env.BENCH_TICK_MS ?? 250)
const SPREAD_LEASES = Math.min(N, Number(process.env.BENCH_SPREAD_LEASES ?? 2000))
const BATCH = Math.max(1, Number(process.env.BENCH_BATCH ?? 50))
const TARGET =
  process.env.STINT_TEST_PG_TARGET_URL ??
  'postgres://stint_admin:stint_admin@127.0.0.1:5432/stint_target'
const PREFIX = 'v_bench_exp_'
const KEY = new Uint8Array(32).fill(42)

export async function run(): Promise<void> {
  const target = postgres(TARGET, { max: C, onnotice: () => {} })
  const dir = mkdtempSync(join(tmpdir(), 'stint-bench-expiry-'))
  let stint: Stint | undefined
  try {
    await dropLeftovers(target)
    const names = Array.from({ length: N }, (_, i) => `${PREFIX}${i}`)

    // Raw baseline: one DROP ROLE per autocommit, C at a time.
    await createRoles(target, names)
    const rawStart = performance.now()
    await inParallel(names, C, async (name) => {
      await target`DROP ROLE IF EXISTS ${target(name)}`
    })
    const rawRate = N / ((performance.now() - rawStart) / 1000)

    // Raw batched baseline: one DROP ROLE over BATCH roles per autocommit, C at a time.
    await createRoles(target, names)
    const chunks: string[][] = []
    for (let i = 0; i < N; i += BATCH) chunks.push(names.slice(i, i + BATCH))
    const rawBatchStart = performance.now()
    await inParallel(chunks, C, async (chunk) => {
      await target`DROP ROLE IF EXISTS ${target(chunk)}`
    })
    const rawBatchRate = N / ((performance.now() - rawBatchStart) / 1000)

    const revokedAt = new Map<string, number>()
    stint = await composeServer({
      storage: process.env.BENCH_STORAGE_URL ?? `sqlite:${join(dir, 'stint.db')}`,
      staticUnsealKey: KEY,
      engines: {
        'bench-pg': () => () => ({
          paths: [],
          async revokeSecret(internal) {
            const user = String(internal.username)
            await target`DROP ROLE IF EXISTS ${target(user)}`
            revokedAt.set(user, Date.now())
          },
          async revokeSecrets(internals) {
            const users = internals.map((internal) => String(internal.username))
            await target`DROP ROLE IF EXISTS ${target(users)}`
            const at = Date.now()
            for (const user of users) revokedAt.set(user, at)
            return users.map(() => undefined)
          },
        }),
      },
    })
    const core = stint.services
    let rootToken = ''
    await core.seal.initialize(
      1,
      1,
      async () => {
        await core.policies.ensureBuiltins()
        rootToken = await createRootToken(core)
      },
      true,
    )
    const token = (await core.tokens.lookup(rootToken))!
    const mount = await core.mounts.enable({ path: 'benchdb/', kind: 'secret', type: 'bench-pg' })
    const leases = stint.leases
    leases.tune({
      tickMs: TICK,
      concurrency: C,
      perTargetLimit: C,
      batchSize: 200,
      revokeBatchSize: BATCH,
    })

    const scenario = async (label: string, names: string[], dueAt: (i: number) => number) => {
      const N = names.length
      await leases.worker().stop()
      revokedAt.clear()
      await createRoles(target, names)
      const ids: string[] = []
      const issueStart = performance.now()
      for (const name of names) {
        const { leaseId } = await leases.issue({
          mount,
          path: 'benchdb/creds/bench',
          token,
          ttl: 3600,
          maxTtl: 0,
          renewable: true,
          internal: { username: name },
          targetKey: 'benchdb/:pg',
          create: async () => {},
        })
        ids.push(leaseId)
      }
      const issueRate = N / ((performance.now() - issueStart) / 1000)
      // Set the schedule far ahead, then shift it all at once so setup time is not lag.
      const far = Date.now() + 600_000
      for (let i = 0; i < N; i++) await leases.capExpiry([ids[i]!], far + dueAt(i))
      const shift = far - (Date.now() + 500)
      await stint!.storage.db
        .updateTable('leases')
        .set({
          expire_time: sql`expire_time - ${shift}`,
          next_attempt_at: sql`next_attempt_at - ${shift}`,
        })
        .execute()
      const expiresAt = new Map<string, number>()
      for (let i = 0; i < N; i++) expiresAt.set(names[i]!, far + dueAt(i) - shift)
      leases.worker().start()
      while (revokedAt.size < N) await sleep(20)
      const lags = names.map((n) => revokedAt.get(n)! - expiresAt.get(n)!).sort((a, b) => a - b)
      const first = Math.min(...expiresAt.values())
      const last = Math.max(...revokedAt.values())
      const rate = N / ((last - first) / 1000)
      await leases.worker().stop() // flushes the last grouped deletes
      const left = await leases.count()
      return { label, issueRate, rate, lags, left }
    }

    const backlog = await scenario('backlog', names, () => 0)
    // Below capacity: half the raw DROP ROLE rate, so lag shows scheduling, not queueing.
    const spreadNames = names.slice(0, SPREAD_LEASES)
    const spreadMs = Math.round((SPREAD_LEASES / (rawRate * 0.5)) * 1000)
    const spread = await scenario('spread', spreadNames, (i) =>
      Math.floor((i * spreadMs) / SPREAD_LEASES),
    )

    const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!
    console.log(
      `lease-expiry: ${N} leases, concurrency ${C}, tick ${TICK} ms, ${describeStorage()}`,
    )
    console.log(`  raw DROP ROLE (postgres.js, c=${C}):        ${rawRate.toFixed(0)} roles/s`)
    console.log(
      `  raw batched DROP ROLE (same batch size ${BATCH}, c=${C}): ${rawBatchRate.toFixed(0)} roles/s`,
    )
    console.log(
      `  backlog (all due at once, batches of ≤ ${BATCH}):  ${backlog.rate.toFixed(0)} revocations/s, ratio ${(backlog.rate / rawRate).toFixed(2)} vs raw DROP ROLE (target ≥ 0.8), ` +
        `${(backlog.rate / rawBatchRate).toFixed(2)} vs raw batched DROP ROLE`,
    )
    console.log(
      `    lag p50 ${pct(backlog.lags, 0.5)} ms, p99 ${pct(backlog.lags, 0.99)} ms, max ${backlog.lags.at(-1)} ms (drain time of the backlog)`,
    )
    console.log(
      `  spread (${SPREAD_LEASES} due over ${spreadMs} ms, ${((SPREAD_LEASES / spreadMs) * 1000).toFixed(0)}/s = half the raw rate): lag p50 ${pct(spread.lags, 0.5)} ms, ` +
        `p99 ${pct(spread.lags, 0.99)} ms = ${(pct(spread.lags, 0.99) / TICK).toFixed(2)} × tick (target ≤ 2)`,
    )
    console.log(
      `  issue rate (lease rows only, no DDL): ${backlog.issueRate.toFixed(0)}/s; leases left: ${backlog.left + spread.left}`,
    )
  } finally {
    await stint?.shutdown()
    await dropLeftovers(target).catch(() => {})
    await target.end()
    rmSync(dir, { recursive: true, force: true })
  }
}

function describeStorage(): string {
  return process.env.BENCH_STORAGE_URL
    ? 'storage from BENCH_STORAGE_URL'
    : 'SQLite storage (WAL, NORMAL)'
}

async function createRoles(sql: postgres.Sql, names: string[]): Promise<void> {
  for (let i = 0; i < names.length; i += 1000) {
    const chunk = names.slice(i, i + 1000)
    await sql.begin(async (tx) => {
      for (const name of chunk) await tx`CREATE ROLE ${tx(name)} NOLOGIN`
    })
  }
}

async function dropLeftovers(sql: postgres.Sql): Promise<void> {
  const rows = await sql<{ rolname: string }[]>`
    SELECT rolname FROM pg_roles WHERE rolname LIKE ${PREFIX.replace(/_/g, '\\_') + '%'}`
  for (let i = 0; i < rows.length; i += 1000) {
    const chunk = rows.slice(i, i + 1000)
    await sql.begin(async (tx) => {
      for (const r of chunk) await tx`DROP ROLE IF EXISTS ${tx(r.rolname)}`
    })
  }
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!)
    }),
  )
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

if (import.meta.url === `file://${process.argv[1]}`) {
  run().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
