import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createRootToken } from '../src/engines/sys/seal.js'
import { composeServer } from '../src/server/compose.js'

/**
 * Startup benchmark (issue 4 §7, performance.md T8): time until `GET /v1/sys/health` answers 200
 * and the server's RSS once serving, with 1,000,000 stored leases ÷ with none (targets ≤ 1.1 and
 * ≤ 1.2). Each storage is a real SQLite file; the server is the real CLI
 * (`node --import tsx src/cli/main.ts server -config=<file>`, static auto-unseal) in a child
 * process, started BENCH_STARTUP_RUNS times per storage, alternating, medians reported.
 *
 * Env: BENCH_STARTUP_LEASES (1000000), BENCH_STARTUP_RUNS (3).
 */
const LEASES = Number(process.env.BENCH_STARTUP_LEASES ?? 1_000_000)
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 3)
const KEY = new Uint8Array(randomBytes(32))
const KEY_ENV = 'STINT_BENCH_UNSEAL_KEY'
const CLI = new URL('../src/cli/main.ts', import.meta.url).pathname

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'stint-bench-startup-'))
  try {
    const empty = await prepare(join(dir, 'empty.db'), 0)
    const full = await prepare(join(dir, 'full.db'), LEASES)
    const results = { empty: [] as Sample[], full: [] as Sample[] }
    for (let i = 0; i < RUNS; i++) {
      results.empty.push(await startOnce(dir, empty))
      results.full.push(await startOnce(dir, full))
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    const e = {
      ms: med(results.empty.map((s) => s.ms)),
      rss: med(results.empty.map((s) => s.rssKb)),
    }
    const f = { ms: med(results.full.map((s) => s.ms)), rss: med(results.full.map((s) => s.rssKb)) }
    console.log(`startup: SQLite storage, ${RUNS} runs each, medians`)
    console.log(
      `  0 leases:         serving after ${e.ms} ms, RSS ${(e.rss / 1024).toFixed(1)} MiB`,
    )
    console.log(
      `  ${LEASES.toLocaleString('en')} leases: serving after ${f.ms} ms, RSS ${(f.rss / 1024).toFixed(1)} MiB`,
    )
    console.log(
      `  ratio time ${(f.ms / e.ms).toFixed(2)} (target ≤ 1.1), RSS ${(f.rss / e.rss).toFixed(2)} (target ≤ 1.2)`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface Sample {
  ms: number
  rssKb: number
}

/** An initialised storage file holding `count` active leases due in the future. */
async function prepare(file: string, count: number): Promise<string> {
  const stint = await composeServer({ storage: `sqlite:${file}`, staticUnsealKey: KEY })
  await stint.services.seal.initialize(
    1,
    1,
    async () => {
      await stint.services.policies.ensureBuiltins()
      await createRootToken(stint.services)
    },
    true,
  )
  await stint.shutdown()
  if (count === 0) return file

  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = OFF')
  const now = Date.now()
  const PER = 200
  const cols =
    '(id, mount_accessor, mount_path, path, token_id, state, ttl, issue_time, expire_time, ' +
    'max_expire_time, last_renewal, renewable, internal, target_key, attempts, next_attempt_at, ' +
    'last_error, claimed_by, claim_until)'
  const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1, ?, ?, 0, ?, NULL, NULL, NULL)'
  const insert = db.prepare(
    `INSERT INTO leases ${cols} VALUES ${Array.from({ length: PER }, () => row).join(', ')}`,
  )
  // A realistic sealed blob: the size of a database lease's revocation data.
  const internal = randomBytes(160).toString('base64')
  const batch = db.transaction((start: number) => {
    const values: unknown[] = []
    for (let i = start; i < start + PER; i++) {
      const role = `r${i % 50}`
      const expire = now + 3600_000 + (i % 86_400) * 1000
      values.push(
        `database/creds/${role}/${randomBytes(18).toString('base64url')}`,
        'database_1a2b3c4d',
        'database/',
        `database/creds/${role}`,
        randomBytes(32).toString('base64url'),
        'active',
        3600,
        now,
        expire,
        expire + 86_400_000,
        internal,
        `database/:db${i % 5}`,
        expire,
      )
    }
    insert.run(...values)
  })
  for (let i = 0; i < count; i += PER) batch(i)
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return file
}

/** Starts the CLI server on `file`, waits for a 200 from sys/health, reads its RSS, stops it. */
async function startOnce(dir: string, file: string): Promise<Sample> {
  const port = await freePort()
  const config = join(dir, `config-${port}.hcl`)
  writeFileSync(
    config,
    [
      `storage "sqlite" { path = "${file}" }`,
      `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
      `seal "static" { key_env = "${KEY_ENV}" }`,
      'log_level = "warn"',
    ].join('\n'),
  )
  const started = performance.now()
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'server', `-config=${config}`], {
    env: { ...process.env, [KEY_ENV]: Buffer.from(KEY).toString('base64') },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error('stint server exited before serving')
      const ok = await fetch(`http://127.0.0.1:${port}/v1/sys/health`)
        .then((r) => r.status === 200)
        .catch(() => false)
      if (ok) break
      await new Promise((r) => setTimeout(r, 5))
    }
    const ms = Math.round(performance.now() - started)
    // Let the expiry worker run a few polls, as it would in service, before reading memory.
    await new Promise((r) => setTimeout(r, 1000))
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN)
    return { ms, rssKb }
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
