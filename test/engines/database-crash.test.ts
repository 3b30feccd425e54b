import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgConfigBody, pgGroupCreation, pgGroupFixture } from './database-fixtures.js'

/*
 * Crash safety: a real server process is SIGKILLed in the middle of a burst of issuances and
 * restarted on the same storage. Once recovery has run there is no PostgreSQL role with the burst's
 * prefix that lacks an active lease, and no active lease whose role is missing.
 */
describe('database credentials survive a crash mid-issue', () => {
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>
  let dir: string
  let child: ChildProcess | undefined
  const unsealKey = randomBytes(32).toString('base64')
  // Short enough to survive the username template's `truncate 8`, unique per run.
  const role = `c${randomBytes(3).toString('hex')}`
  let base = ''
  let token = ''

  beforeAll(async () => {
    fixture = await pgGroupFixture()
    dir = mkdtempSync(join(tmpdir(), 'stint-crash-'))
    const port = await freePort()
    base = `http://127.0.0.1:${port}/v1/`
    writeFileSync(
      join(dir, 'stint.hcl'),
      [
        `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
        `storage "sqlite" {\n  path = "${join(dir, 'stint.db')}"\n}`,
        `seal "static" {\n  key_env = "STINT_UNSEAL_KEY"\n}`,
        `log_level = "error"`,
      ].join('\n'),
    )
  })

  afterAll(async () => {
    if (token && child) {
      await api('PUT', `sys/leases/revoke-prefix/database/creds/${role}/`).catch(() => {})
    }
    await stop('SIGTERM')
    // Safety net so a failed run leaves nothing behind on the shared target.
    if (fixture) {
      for (const name of await prefixRoles().catch(() => [])) {
        await fixture.sql`DROP ROLE IF EXISTS ${fixture.sql(name)}`.catch(() => {})
      }
    }
    await fixture?.drop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const start = async () => {
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'server', `-config=${join(dir, 'stint.hcl')}`],
      {
        env: {
          ...process.env,
          STINT_UNSEAL_KEY: unsealKey,
          STINT_LEASE_PENDING_GRACE_MS: String(GRACE_MS),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const deadline = Date.now() + 30_000
    for (;;) {
      try {
        const res = await fetch(`${base}sys/health?uninitcode=200`)
        if (res.status === 200) return
      } catch {
        /* not listening yet */
      }
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`server exited: ${stderr.slice(0, 500)}`)
      if (Date.now() > deadline) throw new Error(`server did not start: ${stderr.slice(0, 500)}`)
      await sleep(100)
    }
  }

  const stop = async (signal: NodeJS.Signals) => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill(signal)
    await exited
  }

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { 'X-Vault-Token': token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await res.text()

    return { status: res.status, body: text ? (JSON.parse(text) as any) : null }
  }

  const prefixRoles = async () =>
    (await fixture.sql`SELECT rolname FROM pg_roles WHERE rolname LIKE ${`v-root-${role}-%`}`).map(
      (r) => r.rolname as string,
    )

  const leaseStates = async () => {
    const list = await api('LIST', `sys/leases/lookup/database/creds/${role}/`)
    if (list.status === 404) return []
    const keys = list.body.data.keys as string[]
    const states: string[] = []
    for (const key of keys) {
      const lookup = await api('PUT', 'sys/leases/lookup', {
        lease_id: `database/creds/${role}/${key}`,
      })
      states.push(
        lookup.status === 200 ? (lookup.body.data.state ?? 'active') : `missing:${lookup.status}`,
      )
    }
    return states
  }

  it('leaves no orphan role and no lease without its role', { timeout: 180_000 }, async () => {
    await start()
    process.stderr.write('started\n')
    const init = await fetch(`${base}sys/init`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
    })
    token = ((await init.json()) as { root_token: string }).root_token
    expect(token).toBeTruthy()
    expect((await api('POST', 'sys/mounts/database', { type: 'database' })).status).toBe(204)
    expect((await api('POST', 'database/config/pg', pgConfigBody())).status).toBe(204)
    expect(
      (
        await api('POST', `database/roles/${role}`, {
          db_name: 'pg',
          creation_statements: pgGroupCreation(fixture.group),
          default_ttl: '1h',
        })
      ).status,
    ).toBe(204)

    process.stderr.write('configured\n')
    // The burst: 16 clients issuing in a loop; SIGKILL after the first 40 successes.
    const issued: Array<{ leaseId: string; username: string }> = []
    let killed = false
    const killer = (async () => {
      while (issued.length < 40) await sleep(5)
      killed = true
      await stop('SIGKILL')
    })()
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!killed) {
          try {
            const res = await api('GET', `database/creds/${role}`)
            if (process.env.DEBUG_CRASH) process.stderr.write(`${res.status} `)
            if (res.status === 200)
              issued.push({ leaseId: res.body.lease_id, username: res.body.data.username })
            else if (process.env.DEBUG_CRASH) console.log(res.status, JSON.stringify(res.body))
          } catch (err) {
            if (process.env.DEBUG_CRASH) console.log('fetch failed', (err as Error).message)
            return
          }
        }
      }),
    )
    await killer
    expect(issued.length).toBeGreaterThanOrEqual(40)
    const rolesAtCrash = await prefixRoles()
    process.stderr.write(`killed ${issued.length}\n`)

    await start()
    // Recovery: pending rows older than the grace period are revoked by the worker.
    const deadline = Date.now() + GRACE_MS + 45_000
    let roles: string[] = []
    let states: string[] = []
    for (;;) {
      roles = await prefixRoles()
      states = await leaseStates()
      const settled = states.every((s) => s === 'active') && roles.length === states.length
      if (settled || Date.now() > deadline) break
      await sleep(250)
    }
    expect(states.filter((s) => s !== 'active')).toEqual([])
    expect(roles.length).toBe(states.length)
    // Every credential a client received is still live under its lease.
    for (const { leaseId, username } of issued) {
      expect(roles).toContain(username)
      expect((await api('PUT', 'sys/leases/lookup', { lease_id: leaseId })).status).toBe(200)
    }
    console.log(
      `crash test: ${issued.length} answered, ${rolesAtCrash.length} roles at the kill, ${roles.length} after recovery`,
    )
  })
})

/*
 * Long enough that no issue still running in the first process outlives it on a loaded machine:
 * the lease manager's recovery must never take a pending row whose create is still in flight.
 */
const GRACE_MS = 10_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}
