import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { startTestServer, type TestServer } from '../support/server.js'
import { targetUrls } from '../support/databases.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import { group, human } from './support.js'

/*
 * Issue 12, item 13: credentials issued under a grant must survive an approved extension. The
 * guard caps a grant's leases at the grant's end; before the fix an extension moved the grant's end
 * but not its leases' (their max was already lowered to the old end), so at the old end the lease
 * expired, the session was killed and the role dropped while the grant was still `active`.
 * Real server, real PostgreSQL target (password checking enforced, see .ci/prepare-services).
 */

let server: TestServer
let admin: ReturnType<typeof postgres>
const people: Record<string, { token: string; entityId: string }> = {}
const as = (who: string) => people[who]!.token
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = (at: number) => sleep(Math.max(0, at - Date.now()))

async function act(who: string, id: string, action: string, body: Record<string, unknown> = {}) {
  return server.call('POST', `sys/access/requests/${id}/${action}`, { token: as(who), body })
}
async function readRequest(id: string) {
  return (await server.call('GET', `sys/access/requests/${id}`)).body.data
}
async function roleValidUntil(username: string): Promise<Date | null | undefined> {
  const rows = await admin`SELECT rolvaliduntil FROM pg_roles WHERE rolname = ${username}`
  return rows.length === 0 ? undefined : (rows[0]!.rolvaliduntil as Date | null)
}
async function canLogIn(username: string, password: string): Promise<boolean> {
  const session = postgres({
    host: '127.0.0.1',
    port: 5432,
    database: 'stint_target',
    username,
    password,
    max: 1,
    connect_timeout: 5,
    onnotice: () => {},
  })
  try {
    return (await session`SELECT current_user AS u`)[0]!.u === username
  } catch {
    return false
  } finally {
    await session.end({ timeout: 1 }).catch(() => {})
  }
}
async function waitFor(check: () => Promise<boolean>, ms = 8000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await sleep(100)
  }
  return false
}

beforeAll(async () => {
  await assertPgPasswordChecking()
  server = await startTestServer()
  admin = postgres(targetUrls().postgres, { max: 2, onnotice: () => {} })
  const ok = (res: { status: number; body: unknown }) => {
    if (res.status >= 300)
      throw new Error(`setup failed: ${res.status} ${JSON.stringify(res.body)}`)
  }
  ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
  ok(await server.call('POST', 'sys/mounts/database', { body: { type: 'database' } }))
  ok(
    await server.call('PUT', 'sys/policies/acl/ext-requester', {
      body: {
        policy: `
path "database/creds/ext-*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
      },
    }),
  )
  ok(
    await server.call('POST', 'database/config/pg', {
      body: {
        plugin_name: 'postgresql-database-plugin',
        connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:5432/stint_target',
        username: 'stint_admin',
        password: 'stint_admin',
        allowed_roles: '*',
      },
    }),
  )
  for (const [role, defaultTtl, maxTtl] of [
    ['ext-ro', '2h', '4h'],
    ['ext-short', '5s', '5s'],
  ] as const) {
    ok(
      await server.call('POST', `database/roles/${role}`, {
        body: {
          db_name: 'pg',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
          ],
          default_ttl: defaultTtl,
          max_ttl: maxTtl,
        },
      }),
    )
  }
  for (const name of ['rita', 'abe']) people[name] = await human(server, name, ['ext-requester'])
  await group(server, 'ext-approvers', [people.abe!.entityId])
  ok(
    await server.call('POST', 'sys/access/rules/ext', {
      body: {
        paths: ['database/creds/ext-*'],
        approvals: [{ group: 'ext-approvers', count: 1 }],
        max_duration: '1m',
        require_justification: false,
      },
    }),
  )
}, 60_000)

afterAll(async () => {
  await server?.call('PUT', 'sys/leases/revoke-prefix/database/', {})
  await admin?.end()
  await server?.close()
})

/** A grant of `seconds` for rita on `path`, approved by abe; returns its id and end. */
async function grant(path: string, seconds: number) {
  const created = await server.call('POST', 'sys/access/requests', {
    token: as('rita'),
    body: { path, duration: `${seconds}s` },
  })
  expect(created.status).toBe(200)
  const approved = await act('abe', created.body.data.id, 'approve')
  expect(approved.body.data.state).toBe('active')
  return { id: created.body.data.id as string, endsAt: Date.parse(approved.body.data.ends_at) }
}

async function extend(id: string, seconds: number) {
  const ext = await act('rita', id, 'extend', { duration: `${seconds}s` })
  expect(ext.status).toBe(200)
  expect(ext.body.data.state).toBe('pending')
  expect((await act('abe', ext.body.data.id, 'approve')).body.data.state).toBe('approved')
  const parent = await readRequest(id)
  expect(parent.state).toBe('active')
  return Date.parse(parent.ends_at)
}

describe('extending a grant extends its live credentials', () => {
  it('repro: a credential issued under a grant still logs in after the old end once an extension is approved, and is revoked at the new end', async () => {
    const { id, endsAt: oldEnd } = await grant('database/creds/ext-ro', 4)
    const creds = await server.call('GET', 'database/creds/ext-ro', { token: as('rita') })
    expect(creds.status).toBe(200)
    const { username, password } = creds.body.data
    const leaseId = creds.body.lease_id as string
    expect(await canLogIn(username, password)).toBe(true)

    const newEnd = await extend(id, 6)
    expect(newEnd - oldEnd).toBe(6000)
    // The lease and the role's VALID UNTIL follow the new end (VALID UNTIL keeps its 5 s slack).
    const lease = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })
    expect(lease.status).toBe(200)
    expect(Date.parse(lease.body.data.expire_time)).toBeGreaterThanOrEqual(newEnd - 1000)
    expect(Date.parse(lease.body.data.expire_time)).toBeLessThanOrEqual(newEnd)
    const validUntil = await roleValidUntil(username)
    expect(validUntil?.getTime()).toBeGreaterThanOrEqual(newEnd)

    // Past the old end (and the lease worker's ticks): the grant is active, so is its credential.
    await until(oldEnd + 1500)
    expect((await readRequest(id)).state).toBe('active')
    expect(await canLogIn(username, password)).toBe(true)
    const later = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })
    expect(later.status).toBe(200)
    expect(later.body.data.state ?? 'active').toBe('active')
    expect(later.body.data.ttl).toBeGreaterThan(0)

    // A renewal still stops at the grant's (new) end.
    const renewed = await server.call('PUT', 'sys/leases/renew', {
      token: as('rita'),
      body: { lease_id: leaseId, increment: 3600 },
    })
    expect(renewed.status).toBe(200)
    expect(renewed.body.lease_duration).toBeLessThanOrEqual(Math.ceil((newEnd - Date.now()) / 1000))

    // At the new end the grant ends and the credential is revoked.
    await until(newEnd)
    expect(await waitFor(async () => (await roleValidUntil(username)) === undefined)).toBe(true)
    expect(await canLogIn(username, password)).toBe(false)
    expect(
      (await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).status,
    ).toBe(400)
    expect(await waitFor(async () => (await readRequest(id)).state === 'ended')).toBe(true)
  }, 30_000)

  it("does not carry a credential past its role's max_ttl: the extension raises it only up to that", async () => {
    // ext-short has max_ttl 5s: a 3 s grant extended by 20 s leaves the credential at its own max.
    const { id, endsAt: oldEnd } = await grant('database/creds/ext-short', 3)
    const creds = await server.call('GET', 'database/creds/ext-short', { token: as('rita') })
    expect(creds.status).toBe(200)
    const issuedAt = Date.now()
    const leaseId = creds.body.lease_id as string
    const newEnd = await extend(id, 20)
    expect(newEnd - oldEnd).toBe(20_000)
    const lease = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })
    expect(lease.status).toBe(200)
    const expire = Date.parse(lease.body.data.expire_time)
    expect(expire).toBeGreaterThan(oldEnd)
    expect(expire).toBeLessThanOrEqual(issuedAt + 5000)
    await act('rita', id, 'end')
  }, 30_000)
})

describe('a credential issued under a grant', () => {
  it('is created with the grant’s end in one round trip: no lease cap and no ALTER ROLE afterwards (issue 13 item 3)', async () => {
    const backend = server.services.mounts.get('database/')!.backend
    const calls = { renew: 0, cap: 0 }
    const renew = backend.renewSecret!.bind(backend)
    const cap = server.leases.capExpiry.bind(server.leases)
    backend.renewSecret = async (...args) => {
      calls.renew++
      return renew(...args)
    }
    server.leases.capExpiry = async (...args) => {
      calls.cap++
      return cap(...args)
    }
    try {
      const { endsAt } = await grant('database/creds/ext-ro', 30)
      const creds = await server.call('GET', 'database/creds/ext-ro', { token: as('rita') })
      expect(creds.status).toBe(200)
      // The role's own default TTL is longer than the grant: the grant's end wins, at creation.
      expect(creds.body.lease_duration).toBeLessThanOrEqual(30)
      const validUntil = await roleValidUntil(creds.body.data.username)
      expect(validUntil!.getTime()).toBeGreaterThanOrEqual(endsAt)
      expect(validUntil!.getTime()).toBeLessThanOrEqual(endsAt + 6000)
      const lease = await server.call('PUT', 'sys/leases/lookup', {
        body: { lease_id: creds.body.lease_id },
      })
      expect(Date.parse(lease.body.data.expire_time)).toBeLessThanOrEqual(endsAt)
      expect(calls).toEqual({ renew: 0, cap: 0 })
    } finally {
      backend.renewSecret = renew
      server.leases.capExpiry = cap
    }
  })
})
