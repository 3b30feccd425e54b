import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * CLI start-up benchmark (issue 13): how long whole processes of the built CLI take, against a
 * real dev server, as the built package runs them (`node bin/stint.js`, which runs dist/).
 *
 * 1. `stint status` and `stint kv get secret/<x>`, each ÷ `node -e 0` (bare Node start-up on
 *    the same machine): BENCH_CLI_RUNS runs each, interleaved, medians (goal ≤ 3×).
 * 2. Dev server start: from spawning `stint server -dev` to the first 200 from
 *    `GET /v1/sys/health`, BENCH_CLI_STARTS starts, median (goal ≤ 700 ms). Each server is
 *    stopped with SIGTERM and must exit 0. On Linux it also reports the CPU time the server used
 *    until then, which other load on the machine disturbs less than wall time.
 *
 * Needs the built code (`npm run build`). Env: BENCH_CLI_RUNS (15), BENCH_CLI_STARTS (7).
 */
const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 15)
const STARTS = Number(process.env.BENCH_CLI_STARTS ?? 7)
const BIN = fileURLToPath(new URL('../bin/stint.js', import.meta.url))
const BUILT = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url))
const ROOT_TOKEN = 'bench-root'

export async function run(): Promise<void> {
  if (!existsSync(BUILT)) throw new Error('cli-start measures the built code: run npm run build')
  const home = mkdtempSync(join(tmpdir(), 'stint-bench-cli-'))
  try {
    await measureCommands(home)
    await measureDevStart(home)
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}

async function measureCommands(home: string): Promise<void> {
  const server = await startDev(home)
  try {
    const put = await fetch(`${server.address}/v1/secret/data/bench`, {
      method: 'POST',
      headers: { 'x-vault-token': ROOT_TOKEN },
      body: JSON.stringify({ data: { password: 'hunter2' } }),
    })
    if (put.status !== 200) throw new Error(`writing secret/bench answered ${put.status}`)
    const env = { ...cleanEnv(home), STINT_ADDR: server.address, STINT_TOKEN: ROOT_TOKEN }
    const cases = {
      node: ['-e', '0'],
      status: [BIN, 'status'],
      kvGet: [BIN, 'kv', 'get', 'secret/bench'],
    }
    const times = { node: [] as number[], status: [] as number[], kvGet: [] as number[] }
    await timeProcess(cases.status, env) // warms the file cache; not counted
    for (let i = 0; i < RUNS; i++) {
      for (const name of ['node', 'status', 'kvGet'] as const) {
        times[name].push(await timeProcess(cases[name], env))
      }
    }
    const node = median(times.node)
    const status = median(times.status)
    const kvGet = median(times.kvGet)
    console.log(`cli-start: built CLI against a dev server, ${RUNS} runs each, medians`)
    console.log(`  node -e 0:                ${node.toFixed(0)} ms`)
    console.log(
      `  stint status:             ${status.toFixed(0)} ms = ${(status / node).toFixed(2)}× (goal ≤ 3×)`,
    )
    console.log(
      `  stint kv get secret/bench: ${kvGet.toFixed(0)} ms = ${(kvGet / node).toFixed(2)}× (goal ≤ 3×)`,
    )
  } finally {
    await server.stop()
  }
}

async function measureDevStart(home: string): Promise<void> {
  const times: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < STARTS; i++) {
    const server = await startDev(home)
    times.push(server.startMs)
    if (server.cpuMs !== undefined) cpu.push(server.cpuMs)
    await server.stop()
  }
  const ms = median(times)
  console.log(
    `  dev server start to first 200 from sys/health: ${ms.toFixed(0)} ms, median of ${STARTS} ` +
      `(goal ≤ 700 ms; all: ${times.map((t) => t.toFixed(0)).join(', ')})`,
  )
  if (cpu.length > 0) console.log(`  server CPU time until then: ${median(cpu).toFixed(0)} ms`)
}

interface DevServer {
  address: string
  startMs: number
  /** CPU time (user + system, all threads) the server used until its first 200; Linux only. */
  cpuMs: number | undefined
  /** Sends SIGTERM and waits for the exit; fails unless the server exits 0. */
  stop(): Promise<void>
}

/**
 * Starts `stint server -dev` on a free port and waits for its first 200 from sys/health. The
 * port is read from the banner; health is polled from the spawn on, so the time includes
 * everything the server does before it serves.
 */
async function startDev(home: string): Promise<DevServer> {
  const started = performance.now()
  const child = spawn(
    process.execPath,
    [BIN, 'server', '-dev', `-dev-root-token-id=${ROOT_TOKEN}`, '-dev-listen-address=127.0.0.1:0'],
    { env: cleanEnv(home), stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  let banner = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => (banner += chunk))
  const stop = async () => {
    child.kill('SIGTERM')
    const code = await exited
    if (code !== 0) throw new Error(`stint server exited with ${code} after SIGTERM`)
  }
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error('stint server exited before serving')
      const address = /Address:\s+(\S+)/.exec(banner)?.[1]
      const ok =
        address !== undefined &&
        (await fetch(`${address}/v1/sys/health`)
          .then((r) => r.status === 200)
          .catch(() => false))
      if (ok) {
        const startMs = performance.now() - started
        return { address, startMs, cpuMs: cpuTimeMs(child.pid), stop }
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
}

/** Runs a Node process to its end and returns its wall time in ms; fails unless it exits 0. */
function timeProcess(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('error', reject)
    child.once('exit', (code) => {
      const ms = performance.now() - started
      if (code === 0) resolve(ms)
      else reject(new Error(`node ${args.join(' ')} exited with ${code}: ${stderr.trim()}`))
    })
  })
}

/** The parent's environment without Vault/Stint settings or tsx's loader, with its own home. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { HOME: home, STINT_LOG_LEVEL: 'warn' }
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(STINT_|VAULT_|NODE_OPTIONS$|HOME$)/.test(key)) env[key] = value
  }
  return env
}

/** utime + stime from /proc/<pid>/stat, in clock ticks of 10 ms (Linux's USER_HZ). */
function cpuTimeMs(pid: number | undefined): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return undefined
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
