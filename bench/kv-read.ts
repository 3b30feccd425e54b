import { runLoad, type LoadOptions, type LoadResult } from './support/load.js'
import { startTarget, type RunningTarget } from './support/child.js'

/**
 * Authenticated KV v2 reads over HTTP on loopback, side by side with a bare Hono hello-world and
 * Stint's own no-op routes. Each target runs in its own process; the load generator (raw
 * keep-alive sockets, fixed concurrency) runs in this one.
 *
 * - hello-world: `@hono/node-server` serving one `GET /` route;
 * - floor: the least work an authenticated KV read can do on this stack, hand-written on
 *   `node:http` (token HMAC + Map, one SQLite row, XChaCha20 decrypt, JSON): not a target, the
 *   scale that says how much of the KV ÷ hello-world gap is Stint's and how much the stack's;
 * - unauthenticated no-op: `GET /v1/noop/open`, a route of a benchmark-only engine that answers
 *   `{"ok": true}` without a token;
 * - authenticated no-op: `GET /v1/noop/closed`, the same handler behind a token and the ACL, so
 *   the pair differs only by authentication;
 * - KV read: `GET /v1/secret/data/bench/app`, a 256-byte value, with a non-root token.
 *
 * Scenarios are interleaved over several rounds and the median is kept, so a machine whose load
 * drifts (other processes) biases every scenario alike. Next to req/s it prints the target's CPU
 * time per request, which other processes on a busy machine disturb much less than throughput;
 * each ratio is given both ways.
 *
 * Env: `BENCH_SECONDS` (per scenario per round, default 2), `BENCH_ROUNDS` (default 5),
 * `BENCH_CONNECTIONS` (default 32), `BENCH_CPU_PROF=<dir>` (Stint target under `node --cpu-prof`),
 * `BENCH_EXPERIMENTS=stmt-cache,token-cache` (patch the Stint target to measure what a core
 * change would buy; see bench/support/target.ts).
 */
export async function run(): Promise<void> {
  const durationMs = Number(process.env.BENCH_SECONDS ?? 2) * 1000
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5))
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 32)
  const cpuProfDir = process.env.BENCH_CPU_PROF || undefined
  const experiments = process.env.BENCH_EXPERIMENTS || undefined

  console.log(
    `kv-read: ${connections} keep-alive connections, ${rounds} rounds x ${durationMs / 1000}s per scenario` +
      (experiments ? `, experiments: ${experiments}` : ''),
  )
  const targets: RunningTarget[] = []
  try {
    const hello = await startTarget('hello')
    targets.push(hello)
    const floor = await startTarget('floor')
    targets.push(floor)
    const stint = await startTarget('stint', { cpuProfDir, experiments })
    targets.push(stint)
    const headers = { 'X-Vault-Token': stint.token! }
    const scenarios: Array<{ name: string; target: RunningTarget; load: LoadOptions }> = [
      {
        name: 'hello-world (bare Hono)',
        target: hello,
        load: { address: hello.address, method: 'GET', path: '/' },
      },
      {
        name: 'floor: hand-written KV read',
        target: floor,
        load: {
          address: floor.address,
          method: 'GET',
          path: `/v1/${floor.secretPath}`,
          headers: { 'X-Vault-Token': floor.token! },
        },
      },
      {
        name: 'stint no-op, unauthenticated',
        target: stint,
        load: { address: stint.address, method: 'GET', path: '/v1/noop/open' },
      },
      {
        name: 'stint no-op, authenticated',
        target: stint,
        load: {
          address: stint.address,
          method: 'GET',
          path: '/v1/noop/closed',
          headers,
        },
      },
      {
        name: 'stint KV v2 read (256 B)',
        target: stint,
        load: { address: stint.address, method: 'GET', path: `/v1/${stint.secretPath}`, headers },
      },
    ]
    // `BENCH_SCENARIOS=KV;floor` (substrings of names) profiles one path alone; ratios need all four.
    const only = (process.env.BENCH_SCENARIOS ?? '').split(';').filter(Boolean)
    if (only.length) {
      for (const s of scenarios) {
        if (!only.some((o) => s.name.includes(o))) continue
        const r = await runLoad({
          ...s.load,
          connections,
          durationMs,
          warmupMs: 1500,
          targetCpuUs: () => s.target.cpuUs(),
        })
        console.log(
          `  ${s.name.padEnd(30)} ${r.rps.toFixed(0).padStart(7)} req/s  ${r.cpuUsPerRequest!.toFixed(0).padStart(5)} µs CPU/req`,
        )
      }
      return
    }
    const samples = scenarios.map(() => [] as LoadResult[])
    for (let round = 0; round < rounds; round++) {
      for (const [i, s] of scenarios.entries()) {
        const result = await runLoad({
          ...s.load,
          connections,
          durationMs,
          warmupMs: round === 0 ? 1500 : 300,
          targetCpuUs: () => s.target.cpuUs(),
        })
        if (result.errors > 0 || result.requests === 0) {
          throw new Error(`${s.name}: ${result.errors} unexpected responses of ${result.requests}`)
        }
        samples[i]!.push(result)
      }
    }
    const medians = samples.map((list) => median(list, (r) => r.rps))
    const cpu = samples.map((list) => median(list, (r) => -(r.cpuUsPerRequest ?? 0)))
    for (const [i, s] of scenarios.entries()) {
      const m = medians[i]!
      const all = samples[i]!.map((r) => r.rps.toFixed(0)).join(' / ')
      console.log(
        `  ${s.name.padEnd(30)} ${m.rps.toFixed(0).padStart(7)} req/s` +
          `  ${cpu[i]!.cpuUsPerRequest!.toFixed(0).padStart(5)} µs CPU/req` +
          `  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  (rounds: ${all})`,
      )
    }
    const [hw, fl, , , kv] = medians.map((m) => m.rps) as number[] as [
      number,
      number,
      number,
      number,
      number,
    ]
    const [hwCpu, flCpu, unauthCpu, authCpu, kvCpu] = cpu.map((m) => m.cpuUsPerRequest!) as [
      number,
      number,
      number,
      number,
      number,
    ]
    const verdict = (value: number, target: number) => (value >= target ? 'ok' : 'MISSED')
    // Scenarios of one round run back to back, so a ratio taken within a round cancels the
    // machine's drift between rounds; the verdict uses the median of those paired ratios.
    const paired = (a: number, b: number) => {
      const each = samples[a]!.map((r, i) => r.rps / samples[b]![i]!.rps)
      return { median: [...each].sort((x, y) => x - y)[Math.floor(each.length / 2)]!, each }
    }
    const line = (label: string, a: number, b: number, cost: number, target: number) => {
      const p = paired(a, b)
      console.log(
        `  ${label} ${p.median.toFixed(2)} paired by round (${p.each.map((x) => x.toFixed(2)).join(' / ')}),` +
          ` ${(medians[a]!.rps / medians[b]!.rps).toFixed(2)} of medians, ${cost.toFixed(2)} by CPU per request` +
          ` (target >= ${target}: ${verdict(p.median, target)})`,
      )
    }
    // Issue 13's targets: Stint's KV read against the hand-written floor, and what
    // authentication costs; KV ÷ hello-world is kept for the history of this benchmark.
    line('KV read / floor:                ', 4, 1, flCpu / kvCpu, 0.85)
    line('authenticated / unauthenticated:', 3, 2, unauthCpu / authCpu, 0.95)
    console.log(
      `  for scale: floor / hello-world ${(fl / hw).toFixed(2)} by req/s, ${(hwCpu / flCpu).toFixed(2)} by CPU;` +
        ` Stint KV / hello-world ${(kv / hw).toFixed(2)} by req/s, ${(hwCpu / kvCpu).toFixed(2)} by CPU`,
    )
  } finally {
    for (const t of targets.reverse()) await t.stop()
  }
  if (cpuProfDir) console.log(`  CPU profile of the Stint target written to ${cpuProfDir}`)
}

/** The round with the median value of `key`. */
function median(results: LoadResult[], key: (r: LoadResult) => number): LoadResult {
  const sorted = [...results].sort((a, b) => key(a) - key(b))
  return sorted[Math.floor(sorted.length / 2)]!
}
