import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import postgres from 'postgres'
import { composeServer } from '../src/server/compose.js'
import { createRootToken } from '../src/engines/sys/seal.js'
import { listen } from '../src/http/server.js'
import { generatePassword } from '../src/engines/database/credentials.js'
import { formatExpiration } from '../src/engines/database/statements.js'

/**
 * Credential issuance: credentials per second through Stint's full HTTP path (real listener,
 * non-root token, policy check, lease intent + activation, CREATE ROLE/USER, response) divided by
 * the same statements sent straight to the target with the driver at the same concurrency and pool
 * size. Target ratio ≥ 0.85 at concurrency 1 and 8, for PostgreSQL and MySQL/MariaDB.
 *
 * Rounds alternate direct and Stint runs so machine drift hits both; each figure is the median.
 * Every created user is dropped afterwards.
 *
 * Env: `BENCH_ISSUE_COUNT` (credentials per run, default 200), `BENCH_ROUNDS` (default 3),
 * `STINT_TEST_PG_TARGET_URL`, `STINT_TEST_MYSQL_TARGET_URL` (least-privilege admins).
 */
export async function run(): Promise<void> {
  const count = Number(process.env.BENCH_ISSUE_COUNT ?? 200)
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
  console.log(`issuance: ${count} credentials per run, ${rounds} rounds, median of each`)
  for (const target of [postgresTarget(), mysqlTarget()]) {
    await benchTarget(target, count, rounds)
  }
}

interface Target {
  name: string
  configBody(pool: number): Record<string, unknown>
  setup(): Promise<void>
  /** Creation statements as the role stores them. */
  creation: string[]
  /** The same statements rendered for one user, for the direct baseline. */
  render(username: string, password: string, expiration: string): string[]
  openDirect(pool: number): { exec(statements: string[]): Promise<void>; close(): Promise<void> }
  /** Drops the baseline's users `<prefix>-0` … `<prefix>-<count-1>`. */
  dropUsers(prefix: string, count: number): Promise<void>
  teardown(): Promise<void>
}

async function benchTarget(target: Target, count: number, rounds: number): Promise<void> {
  await target.setup()
  const dir = mkdtempSync(join(tmpdir(), 'stint-bench-'))
  const stint = await composeServer({ storage: `sqlite:${join(dir, 'stint.db')}` })
  let rootToken = ''
  await stint.services.seal.initialize(
    1,
    1,
    async () => {
      await stint.services.policies.ensureBuiltins()
      rootToken = await createRootToken(stint.services)
    },
    true,
  )
  const timing = timeStintSteps(stint)
  const server = await listen(stint.api, { host: '127.0.0.1', port: 0 })
  const base = `${server.address}/v1/`
  // node:http with keep-alive: far lighter than fetch, so the load generator (same process)
  // takes as little CPU as possible from the server it measures.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
  const call = (method: string, path: string, token: string, body?: unknown) =>
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    new Promise<Record<string, any> | null>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = http.request(
        base + path,
        {
          method,
          agent,
          headers: {
            'X-Vault-Token': token,
            ...(payload
              ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
              : {}),
          },
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () => {
            if ((res.statusCode ?? 500) >= 300) {
              reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`))
            } else resolve(text ? JSON.parse(text) : null)
          })
        },
      )
      req.on('error', reject)
      req.end(payload)
    })
  try {
    await call('POST', 'sys/mounts/database', rootToken, { type: 'database' })
    await call('PUT', 'sys/policies/acl/issuer', rootToken, {
      policy: 'path "database/creds/*" { capabilities = ["read"] }',
    })
    const token = (await call('POST', 'auth/token/create', rootToken, {
      policies: ['issuer'],
      display_name: 'bench',
    }))!.auth.client_token as string
    await call('POST', 'database/config/target', rootToken, target.configBody(1))
    await call('POST', 'database/roles/bench', rootToken, {
      db_name: 'target',
      creation_statements: target.creation,
      default_ttl: '1h',
    })

    await countGuardedTrips(stint, call, rootToken, target)

    for (const concurrency of [1, 8]) {
      await call('POST', 'database/config/target', rootToken, target.configBody(concurrency))
      const direct = target.openDirect(concurrency)
      const directRates: number[] = []
      const stintRates: number[] = []
      const steps: Array<Record<'direct' | 'wall' | 'create' | 'lease' | 'handle', number>> = []
      try {
        for (let round = 0; round < rounds; round++) {
          const prefix = `v-bdir-${randomBytes(3).toString('hex')}`
          directRates.push(
            await timed(count, concurrency, async (i) => {
              const expiration = formatExpiration(new Date(Date.now() + 3600_000 + 5_000))
              await direct.exec(target.render(`${prefix}-${i}`, generatePassword(), expiration))
            }),
          )
          await target.dropUsers(prefix, count)
          const leases: string[] = []
          timing.reset()
          stintRates.push(
            await timed(count, concurrency, async () => {
              const body = (await call('GET', 'database/creds/bench', token))!
              leases.push(body.lease_id as string)
            }),
          )
          if (concurrency === 1) {
            steps.push({
              ...timing.perCredential(count),
              direct: 1000 / directRates.at(-1)!,
              wall: 1000 / stintRates.at(-1)!,
            })
          }
          await call('PUT', 'sys/leases/revoke-prefix/database/creds/bench/', rootToken)
        }
      } finally {
        await direct.close()
      }
      const d = median(directRates)
      const s = median(stintRates)
      console.log(
        `  ${target.name} c=${concurrency}: direct ${d.toFixed(0)}/s, stint ${s.toFixed(0)}/s, ratio ${(s / d).toFixed(2)} (target ≥ 0.85)`,
      )
      if (steps.length > 0) {
        // Where one credential's time goes at c=1 (medians over rounds, ms).
        const m = (k: keyof (typeof steps)[number]) => median(steps.map((x) => x[k])).toFixed(2)
        const med = (f: (x: (typeof steps)[number]) => number) => median(steps.map(f)).toFixed(2)
        console.log(
          `    c=1 per credential: direct ${m('direct')} ms; stint ${m('wall')} ms = target DDL ${m('create')}` +
            ` + lease rows ${med((x) => x.lease - x.create)} + auth/role/config ${med((x) => x.handle - x.lease)}` +
            ` + HTTP ${med((x) => x.wall - x.handle)}`,
        )
      }
    }
  } finally {
    agent.destroy()
    await server.close()
    await stint.shutdown()
    rmSync(dir, { recursive: true, force: true })
    await target.teardown()
  }
}

/**
 * Times the steps of issuing inside Stint, for the c=1 breakdown: the whole request in the core
 * (`handle`), the lease manager's `issue` (intent row, the target's DDL, activation) and the DDL
 * alone (`create`). Wraps the public methods of this run's core; nothing else changes.
 */
function timeStintSteps(stint: Awaited<ReturnType<typeof composeServer>>) {
  const { core } = stint
  const totals = { handle: 0, lease: 0, create: 0 }
  const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6
  const leases = stint.leases
  const issue = leases.issue.bind(leases)
  leases.issue = async (input) => {
    const t = process.hrtime.bigint()
    try {
      return await issue({
        ...input,
        create: async (...args) => {
          const c = process.hrtime.bigint()
          try {
            return await input.create(...args)
          } finally {
            totals.create += since(c)
          }
        },
      })
    } finally {
      totals.lease += since(t)
    }
  }
  const handle = core.handle.bind(core)
  core.handle = async (req) => {
    const t = process.hrtime.bigint()
    try {
      return await handle(req)
    } finally {
      if (req.path.startsWith('database/creds/')) totals.handle += since(t)
    }
  }
  return {
    reset: () => Object.assign(totals, { handle: 0, lease: 0, create: 0 }),
    perCredential: (count: number) => ({
      handle: totals.handle / count,
      lease: totals.lease / count,
      create: totals.create / count,
    }),
  }
}

/** Runs `count` jobs with `concurrency` workers; returns jobs per second. */
async function timed(
  count: number,
  concurrency: number,
  job: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await job(next++)
    }),
  )
  return count / ((performance.now() - started) / 1000)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function postgresTarget(): Target {
  const url = new URL(
    process.env.STINT_TEST_PG_TARGET_URL ||
      'postgres://stint_admin:stint_admin@127.0.0.1:5432/stint_target',
  )
  const group = `stint_bench_ro_${randomBytes(3).toString('hex')}`
  const admin = postgres(url.toString(), { max: 2, onnotice: () => {} })
  const rendered = (u: string, p: string, e: string) => [
    `CREATE ROLE "${u}" WITH LOGIN PASSWORD '${p}' VALID UNTIL '${e}' IN ROLE "${group}"`,
  ]
  return {
    name: 'postgresql',
    configBody: (pool) => ({
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgres://{{username}}:{{password}}@${url.host}${url.pathname}`,
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      allowed_roles: '*',
      max_open_connections: pool,
    }),
    setup: async () => {
      await admin`CREATE ROLE ${admin(group)} NOLOGIN`
    },
    creation: [
      `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${group}"`,
    ],
    render: rendered,
    openDirect(pool) {
      const sql = postgres(url.toString(), { max: pool, prepare: false, onnotice: () => {} })
      return {
        exec: async (statements) => {
          for (const s of statements) await sql.unsafe(s)
        },
        close: () => sql.end(),
      }
    },
    async dropUsers(prefix, count) {
      for (let i = 0; i < count; i += 500) {
        await admin.begin(async (tx) => {
          for (let j = i; j < Math.min(count, i + 500); j++)
            await tx`DROP ROLE IF EXISTS ${tx(`${prefix}-${j}`)}`
        })
      }
    },
    teardown: async () => {
      await admin`DROP ROLE IF EXISTS ${admin(group)}`
      await admin.end()
    },
  }
}

function mysqlTarget(): Target {
  const url = new URL(
    process.env.STINT_TEST_MYSQL_TARGET_URL ||
      'mysql://stint_admin:stint_admin@127.0.0.1:3306/stint_target',
  )
  const database = url.pathname.slice(1)
  let admin: mysql.Connection | undefined
  const grant = `GRANT SELECT ON \`${database}\`.* TO`
  return {
    name: 'mysql',
    configBody: (pool) => ({
      plugin_name: 'mysql-database-plugin',
      connection_url: `{{username}}:{{password}}@tcp(${url.host})/${database}`,
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      allowed_roles: '*',
      max_open_connections: pool,
    }),
    setup: async () => {
      admin = await mysql.createConnection({ uri: url.toString() })
    },
    creation: [`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; ${grant} '{{name}}'@'%'`],
    render: (u, p) => [`CREATE USER '${u}'@'%' IDENTIFIED BY '${p}'`, `${grant} '${u}'@'%'`],
    openDirect(pool) {
      const db = mysql.createPool({ uri: url.toString(), connectionLimit: pool })
      return {
        exec: async (statements) => {
          const conn = await db.getConnection()
          try {
            for (const s of statements) await conn.query(s)
          } finally {
            conn.release()
          }
        },
        close: () => db.end(),
      }
    },
    async dropUsers(prefix, count) {
      for (let i = 0; i < count; i++) await admin!.query(`DROP USER IF EXISTS '${prefix}-${i}'@'%'`)
    },
    teardown: async () => {
      await admin?.end()
    },
  }
}

type Call = (
  method: string,
  path: string,
  token: string,
  body?: unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
) => Promise<Record<string, any> | null>

/**
 * Target round trips per credential, unguarded and under a JIT grant: every credential costs its
 * creation; a guarded one used to cost a second trip (`renewSecret`: ALTER ROLE … VALID UNTIL /
 * ALTER USER … to the grant's end) and a lease write (`capExpiry`). Counted by wrapping the
 * mounted backend's `renewSecret` and the lease manager's `capExpiry` of this in-process server.
 */
async function countGuardedTrips(
  stint: Awaited<ReturnType<typeof composeServer>>,
  call: Call,
  rootToken: string,
  target: Target,
): Promise<void> {
  const n = 20
  await call('POST', 'database/roles/bench-jit', rootToken, {
    db_name: 'target',
    creation_statements: target.creation,
    default_ttl: '1h',
  })
  await call('POST', 'sys/auth/userpass', rootToken, { type: 'userpass' })
  await call('PUT', 'sys/policies/acl/jit', rootToken, {
    policy:
      'path "database/creds/*" { capabilities = ["read"] }\n' +
      'path "sys/access/requests" { capabilities = ["update"] }\n' +
      'path "sys/access/requests/*" { capabilities = ["read", "update"] }',
  })
  const login = async (name: string) => {
    const password = `bench-${name}-password`
    await call('POST', `auth/userpass/users/${name}`, rootToken, {
      password,
      token_policies: ['jit'],
    })
    return (await call('POST', `auth/userpass/login/${name}`, '', { password }))!.auth as {
      client_token: string
      entity_id: string
    }
  }
  const requester = await login('bench-requester')
  const approver = await login('bench-approver')
  await call('POST', 'identity/group', rootToken, {
    name: 'bench-approvers',
    member_entity_ids: [approver.entity_id],
  })
  await call('POST', 'sys/access/rules/bench-jit', rootToken, {
    paths: ['database/creds/bench-jit'],
    approvals: [{ group: 'bench-approvers', count: 1 }],
    max_duration: '1h',
  })
  const filed = (await call('POST', 'sys/access/requests', requester.client_token, {
    path: 'database/creds/bench-jit',
    duration: '30m',
    justification: 'benchmark',
  }))!.data.id as string
  await call('POST', `sys/access/requests/${filed}/approve`, approver.client_token, {})

  const backend = stint.services.mounts.get('database/')!.backend
  const counts = { renew: 0, cap: 0 }
  const renew = backend.renewSecret!.bind(backend)
  const cap = stint.leases.capExpiry.bind(stint.leases)
  backend.renewSecret = (...args) => (counts.renew++, renew(...args))
  stint.leases.capExpiry = (...args) => (counts.cap++, cap(...args))
  const perCredential: Record<string, string> = {}
  try {
    for (const [name, path] of [
      ['unguarded', 'database/creds/bench'],
      ['guarded', 'database/creds/bench-jit'],
    ] as const) {
      Object.assign(counts, { renew: 0, cap: 0 })
      for (let i = 0; i < n; i++) await call('GET', path, requester.client_token)
      perCredential[name] =
        `${(1 + counts.renew / n).toFixed(2)} target round trips, ${(counts.cap / n).toFixed(2)} lease caps`
    }
  } finally {
    backend.renewSecret = renew
    stint.leases.capExpiry = cap
    await call('PUT', 'sys/leases/revoke-prefix/database/', rootToken)
  }
  console.log(
    `  ${target.name} per credential: unguarded ${perCredential.unguarded}; under a JIT grant ${perCredential.guarded}`,
  )
}
