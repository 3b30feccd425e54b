import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, startCli } from '../server/cli-process.js'
import { freshStorage, pgTargetSuperuserUrl, type FreshStorage } from '../support/databases.js'
import {
  mysqlInspector,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from '../engines/database-fixtures.js'

/*
 * Storage fault (issue 12, item 3). Repro: two server processes share one PostgreSQL (or MariaDB)
 * storage database under light load (KV writes and reads, database credentials with a 2 s TTL);
 * every storage session of that database is cut twice, 1.5 s apart, from an admin connection
 * (`pg_terminate_backend`, or `KILL` on MariaDB). Before the fix both PostgreSQL nodes exited with
 * `TypeError: Cannot read properties of null (reading 'write')` thrown by postgres.js
 * (`connection.js` `nextWrite`) on a reserved connection whose socket was gone. Now both stay up,
 * a request that lost its connection is a 503 `storage unavailable` (or is retried, for reads),
 * each node answers `sys/health` and a KV read within 5 s of each cut, and every lease that fell
 * due meanwhile is revoked: its PostgreSQL role is gone and its row deleted.
 */

type Dialect = 'postgres' | 'mysql'
type Json = any

const TTL_SECONDS = 2
const CUT_GAP_MS = 1500
const RECOVERY_MS = 5000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Node {
  name: string
  base: string
  proc: Awaited<ReturnType<typeof startCli>>
}

interface Reply {
  status: number
  body: Json
  text: string
}

async function call(
  node: Node,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<Reply> {
  const res = await fetch(`${node.base}/v1/${path}`, {
    method,
    headers: {
      ...(token && { 'X-Vault-Token': token }),
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  let parsed: Json = null
  try {
    parsed = text ? JSON.parse(text) : null
  } catch {
    parsed = text
  }
  return { status: res.status, body: parsed, text }
}

function must(reply: Reply, status = 200): Json {
  if (reply.status !== status)
    throw new Error(`expected ${status}, got ${reply.status}: ${reply.text}`)
  return reply.body
}

const alive = (node: Node) =>
  node.proc.child.exitCode === null && node.proc.child.signalCode === null

/** Cuts every session of Stint's storage database; answers how many were cut. */
async function cutStorage(dialect: Dialect, database: string): Promise<number> {
  if (dialect === 'postgres') {
    const admin = postgres(pgTargetSuperuserUrl().replace(/\/[^/]*$/, '/postgres'), {
      max: 1,
      connect_timeout: 10,
      onnotice: () => {},
    })
    try {
      const rows = await admin`
        select pg_terminate_backend(pid) as cut from pg_stat_activity
        where datname = ${database} and pid <> pg_backend_pid()`
      return rows.filter((r) => r.cut === true).length
    } finally {
      await admin.end()
    }
  }
  const admin = await mysqlInspector()
  try {
    const [rows] = await admin.query(
      'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
      [database],
    )
    let cut = 0
    for (const { id } of rows as Array<{ id: number }>) {
      // A session may end by itself between the listing and its KILL.
      await admin.query(`KILL ${Number(id)}`).then(
        () => cut++,
        () => {},
      )
    }
    return cut
  } finally {
    await admin.end()
  }
}

/** The suite for one storage dialect (one file each, so the two run in parallel). */
export function connectionLossSuite(dialect: 'postgres' | 'mysql'): void {
  describe(`two nodes on ${dialect} storage when every storage connection is cut twice under load`, () => {
    let fresh: FreshStorage | undefined
    let fixture: Awaited<ReturnType<typeof pgGroupFixture>> | undefined
    let dir: string | undefined
    const nodes: Node[] = []
    // Short enough for the username template's `truncate 8`, unique per run.
    const role = `k${randomBytes(3).toString('hex')}`
    const rolePattern = `v-root-${role}-%`

    const prefixRoles = async () =>
      (await fixture!.sql`SELECT rolname FROM pg_roles WHERE rolname LIKE ${rolePattern}`).map(
        (r) => r.rolname as string,
      )

    afterEach(async () => {
      for (const node of nodes.splice(0)) {
        if (!alive(node)) continue
        const exited = node.proc.exited
        node.proc.child.kill('SIGTERM')
        await Promise.race([exited, sleep(10_000)])
        if (alive(node)) node.proc.child.kill('SIGKILL')
      }
      // A failed run must not leave generated roles on the shared target.
      if (fixture) {
        for (const name of await prefixRoles().catch(() => [] as string[])) {
          await fixture.sql`DROP ROLE IF EXISTS ${fixture.sql(name)}`.catch(() => {})
        }
        await fixture.drop().catch(() => {})
      }
      await fresh?.drop().catch(() => {})
      if (dir) rmSync(dir, { recursive: true, force: true })
    })

    it(
      'keeps both processes up, answering within 5 s of each cut, and revokes the leases that fall due',
      { timeout: 120_000 },
      async () => {
        fresh = await freshStorage(dialect)
        const database = new URL(fresh.url).pathname.slice(1)
        fixture = await pgGroupFixture()
        dir = mkdtempSync(join(tmpdir(), 'stint-storage-cut-'))
        const unsealKey = randomBytes(32).toString('base64')

        const start = async (name: string) => {
          const port = await freePort()
          const config = join(dir!, `${name}.hcl`)
          writeFileSync(
            config,
            [
              `listener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}`,
              `storage "${dialect}" {\n  connection_url = "${fresh!.url}"\n}`,
              `seal "static" {\n  key_env = "STINT_UNSEAL_KEY"\n}`,
              `log_level = "info"`,
            ].join('\n'),
          )
          const proc = await startCli(['server', `-config=${config}`], /stint server started/, {
            STINT_UNSEAL_KEY: unsealKey,
            // Issues cut half-way become pending rows: recover them within the test.
            STINT_LEASE_PENDING_GRACE_MS: '2000',
          })
          const node = { name, base: `http://127.0.0.1:${port}`, proc }
          nodes.push(node)
          return node
        }

        const a = await start('a')
        const init = must(
          await call(a, 'PUT', 'sys/init', undefined, { secret_shares: 1, secret_threshold: 1 }),
        )
        const token = init.root_token as string
        must(
          await call(a, 'POST', 'sys/mounts/secret', token, {
            type: 'kv',
            options: { version: '2' },
          }),
          204,
        )
        must(await call(a, 'POST', 'sys/mounts/database', token, { type: 'database' }), 204)
        must(await call(a, 'POST', 'database/config/pg', token, pgConfigBody()), 204)
        must(
          await call(a, 'POST', `database/roles/${role}`, token, {
            db_name: 'pg',
            creation_statements: pgGroupCreation(fixture.group),
            default_ttl: `${TTL_SECONDS}s`,
            max_ttl: `${TTL_SECONDS}s`,
          }),
          204,
        )
        must(await call(a, 'POST', 'secret/data/probe', token, { data: { v: 'probe' } }))
        // The second node starts on the initialised storage and unseals itself.
        const b = await start('b')
        expect(must(await call(b, 'GET', 'sys/health')).sealed).toBe(false)

        for (const node of nodes) {
          must(await call(a, 'POST', `secret/data/load/${node.name}`, token, { data: { n: -1 } }))
        }

        // ---- Light load on both nodes ----------------------------------------------------------
        let stopping = false
        const unexpected: string[] = []
        const unavailable: string[] = []
        const okAt = new Map<string, number>()
        const issued: Array<{ username: string; expiresAt: number }> = []
        const record = (node: Node, what: string, reply: Reply) => {
          if (reply.status >= 200 && reply.status < 300) {
            okAt.set(`${node.name}:${what}`, Date.now())
            return true
          }
          const errors = reply.body?.errors
          // A request that lost its storage connection: a clear 503 in Vault's shape.
          if (
            reply.status === 503 &&
            Array.isArray(errors) &&
            errors.length === 1 &&
            /^storage unavailable/.test(errors[0]) &&
            !/:\/\/|password/i.test(reply.text)
          ) {
            unavailable.push(`${node.name} ${what}`)
          } else {
            unexpected.push(`${node.name} ${what}: ${reply.status} ${reply.text.slice(0, 300)}`)
          }
          return false
        }
        const loop = async (node: Node, what: string, step: (n: number) => Promise<void>) => {
          for (let n = 0; !stopping; n++) {
            try {
              await step(n)
            } catch (err) {
              unexpected.push(`${node.name} ${what}: ${(err as Error).message}`)
              await sleep(100)
            }
          }
        }
        const load = nodes.flatMap((node) => [
          loop(node, 'kv write', async (n) => {
            record(
              node,
              'kv write',
              await call(node, 'POST', `secret/data/load/${node.name}`, token, { data: { n } }),
            )
          }),
          loop(node, 'kv read', async () => {
            record(node, 'kv read', await call(node, 'GET', `secret/data/load/${node.name}`, token))
          }),
          loop(node, 'lookup-self', async () => {
            record(node, 'lookup-self', await call(node, 'GET', 'auth/token/lookup-self', token))
          }),
          loop(node, 'creds', async () => {
            const reply = await call(node, 'GET', `database/creds/${role}`, token)
            if (record(node, 'creds', reply)) {
              issued.push({
                username: reply.body.data.username,
                expiresAt: Date.now() + reply.body.lease_duration * 1000,
              })
            }
            await sleep(100)
          }),
        ])

        // ---- Two cuts while requests are in flight ---------------------------------------------
        const recovery = async (node: Node, since: number) => {
          for (;;) {
            const health = await call(node, 'GET', 'sys/health').catch(() => undefined)
            const read = await call(node, 'GET', 'secret/data/probe', token).catch(() => undefined)
            if (health?.status === 200 && read?.status === 200) return Date.now() - since
            if (Date.now() - since > RECOVERY_MS + 5000) return Infinity
            await sleep(50)
          }
        }
        await sleep(1500)
        const cuts: Array<{ at: number; sessions: number; recovery: number[] }> = []
        for (let i = 0; i < 2; i++) {
          const at = Date.now()
          const sessions = await cutStorage(dialect, database)
          const recovered = await Promise.all([recovery(a, at), recovery(b, at)])
          cuts.push({ at, sessions, recovery: recovered })
          await sleep(Math.max(0, at + CUT_GAP_MS - Date.now()))
        }
        const lastCut = cuts[1]!.at
        // Keep the load going past the cuts, so both nodes show they work again.
        await sleep(2500)
        stopping = true
        await Promise.all(load)
        const loadEnd = Date.now()

        // ---- Both processes stayed up and recovered --------------------------------------------
        for (const node of nodes) {
          expect(alive(node), `${node.name} exited:\n${node.proc.output().slice(-3000)}`).toBe(true)
          expect(node.proc.output()).not.toMatch(/uncaught|TypeError/i)
        }
        for (const cut of cuts) {
          // Each cut really ended Stint's sessions (both nodes hold some under this load).
          expect(cut.sessions).toBeGreaterThanOrEqual(2)
          for (const ms of cut.recovery) expect(ms).toBeLessThan(RECOVERY_MS)
        }
        expect(unexpected).toEqual([])
        for (const node of nodes) {
          for (const what of ['kv write', 'kv read', 'lookup-self', 'creds']) {
            expect(
              okAt.get(`${node.name}:${what}`) ?? 0,
              `${node.name} ${what} after the cuts`,
            ).toBeGreaterThan(lastCut)
          }
        }

        // ---- The leases that fell due meanwhile were revoked -----------------------------------
        const dueDuringCuts = issued.filter(
          (c) => c.expiresAt > cuts[0]!.at && c.expiresAt < loadEnd,
        )
        expect(dueDuringCuts.length).toBeGreaterThan(0)
        const lastExpiry = Math.max(...issued.map((c) => c.expiresAt))
        const deadline = Math.max(lastExpiry, loadEnd) + 8000
        let roles: string[] = []
        let rows = -1
        for (;;) {
          roles = await prefixRoles()
          const counted = await fresh.storage.db
            .selectFrom('leases')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
          rows = Number(counted.n)
          if ((roles.length === 0 && rows === 0) || Date.now() > deadline) break
          await sleep(250)
        }
        expect(roles).toEqual([])
        const left =
          rows === 0
            ? []
            : await fresh.storage.db
                .selectFrom('leases')
                .select([
                  'state',
                  'expire_time',
                  'next_attempt_at',
                  'claimed_by',
                  'claim_until',
                  'attempts',
                ])
                .execute()
        expect(rows, JSON.stringify({ now: Date.now(), left })).toBe(0)
        console.log(
          `${dialect} storage cut: ${issued.length} credentials issued, ${unavailable.length} requests answered 503, ` +
            `sessions cut ${cuts.map((c) => c.sessions).join('+')}, recovery ms ${cuts.map((c) => c.recovery.join('/')).join(', ')}`,
        )
      },
    )
  })
}
