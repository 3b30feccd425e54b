import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import type { LeaseManagerControl } from '../../src/core/leases/manager.js'
import { startTestServer, type TestServer } from '../support/server.js'
import {
  mountDatabase,
  must,
  pgAdmin,
  pgAs,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from './database-fixtures.js'

/*
 * Acceptance against the real PostgreSQL target through the least-privilege admin `stint_admin`
 * (CREATEROLE + pg_signal_backend, not a superuser), with password checks enforced by pg_hba.
 */
describe('database engine on PostgreSQL', () => {
  let server: TestServer
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>

  beforeAll(async () => {
    await assertPgPasswordChecking()
    fixture = await pgGroupFixture()
    server = await startTestServer()
    await mountDatabase(server)
    must(await server.call('POST', 'database/config/pg', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/ro', {
        body: {
          db_name: 'pg',
          creation_statements: pgGroupCreation(fixture.group),
          default_ttl: '1h',
          max_ttl: '2h',
        },
      }),
      204,
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await fixture?.drop()
  })

  const issue = async (role = 'ro') => {
    const body = must(await server.call('GET', `database/creds/${role}`))
    return {
      leaseId: body.lease_id as string,
      username: body.data.username as string,
      password: body.data.password as string,
      body,
    }
  }

  const roleExists = async (username: string) =>
    (await fixture.sql`SELECT 1 FROM pg_roles WHERE rolname = ${username}`).length > 0

  it('issues a user that logs in with its password and can read what its group grants', async () => {
    const { username, password, body } = await issue()
    expect(body.renewable).toBe(true)
    expect(body.lease_duration).toBe(3600)
    expect(body.lease_id).toMatch(/^database\/creds\/ro\//)
    expect(username).toMatch(/^v-root-ro-[A-Za-z0-9]{20}-\d{10}$/)
    expect(password).toMatch(/^[A-Za-z0-9-]{20}$/)
    const user = pgAs(username, password)
    try {
      const rows = await user`SELECT label FROM ${user(fixture.table)} WHERE id = 1`
      expect(rows[0]?.label).toBe('one')
    } finally {
      await user.end()
    }
  })

  it('refuses the issued user anything its group does not grant', async () => {
    const { username, password } = await issue()
    const user = pgAs(username, password)
    try {
      await expect(
        user`INSERT INTO ${user(fixture.table)} VALUES (2, 'two')`,
      ).rejects.toMatchObject({ code: '42501' })
    } finally {
      await user.end()
    }
  })

  it('refuses a wrong password for an issued user', async () => {
    const { username } = await issue()
    const user = pgAs(username, 'Wrong-password-123456')
    try {
      await expect(user`SELECT 1`).rejects.toMatchObject({ code: '28P01' })
    } finally {
      await user.end({ timeout: 1 })
    }
  })

  it('sets VALID UNTIL a few seconds after the lease ends', async () => {
    const before = Date.now()
    const { username } = await issue()
    const [row] = await fixture.sql`SELECT rolvaliduntil FROM pg_roles WHERE rolname = ${username}`
    const until = new Date(row!.rolvaliduntil as string).getTime()
    expect(until).toBeGreaterThanOrEqual(before + 3600_000)
    expect(until).toBeLessThanOrEqual(Date.now() + 3600_000 + 6_000)
  })

  it('revoking the lease kills the open session, blocks new logins and drops the role', async () => {
    const { leaseId, username, password } = await issue()
    const session = pgAs(username, password)
    await session`SELECT 1`
    const started = Date.now()
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    await expect(session`SELECT 1`).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(5_000)
    await session.end({ timeout: 1 }).catch(() => {})
    expect(await roleExists(username)).toBe(false)
    const again = pgAs(username, password)
    try {
      await expect(again`SELECT 1`).rejects.toMatchObject({ code: '28P01' })
    } finally {
      await again.end({ timeout: 1 })
    }
  })

  it('an expired lease is revoked by the worker and its user is gone', async () => {
    must(
      await server.call('POST', 'database/roles/short', {
        body: {
          db_name: 'pg',
          creation_statements: pgGroupCreation(fixture.group),
          default_ttl: '2s',
        },
      }),
      204,
    )
    const { username, password } = await issue('short')
    const session = pgAs(username, password)
    await session`SELECT 1`
    const deadline = Date.now() + 15_000
    while ((await roleExists(username)) && Date.now() < deadline) await sleep(250)
    expect(await roleExists(username)).toBe(false)
    await expect(session`SELECT 1`).rejects.toThrow()
    await session.end({ timeout: 1 }).catch(() => {})
  })

  it('renewing a lease moves VALID UNTIL forward', async () => {
    const { leaseId, username } = await issue()
    must(
      await server.call('PUT', 'sys/leases/renew', {
        body: { lease_id: leaseId, increment: '7200' },
      }),
    )
    const [row] = await fixture.sql`SELECT rolvaliduntil FROM pg_roles WHERE rolname = ${username}`
    expect(new Date(row!.rolvaliduntil as string).getTime()).toBeGreaterThan(Date.now() + 7000_000)
  })

  it('revoking a user that is already gone succeeds', async () => {
    const { leaseId, username } = await issue()
    await fixture.sql`DROP ROLE ${fixture.sql(username)}`
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    const lookup = await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })
    expect(lookup.status).toBe(400)
  })

  it('revokes a lease after its role was deleted', async () => {
    must(
      await server.call('POST', 'database/roles/temp', {
        body: { db_name: 'pg', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
    const { leaseId, username } = await issue('temp')
    must(await server.call('DELETE', 'database/roles/temp'), 204)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    expect(await roleExists(username)).toBe(false)
  })

  it('fails clearly, and keeps the lease, when the connection config is gone', async () => {
    must(await server.call('POST', 'database/config/gone', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/gone', {
        body: { db_name: 'gone', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
    const { leaseId, username } = await issue('gone')
    must(await server.call('DELETE', 'database/config/gone'), 204)
    const res = await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } })
    expect(res.status).toBeGreaterThanOrEqual(400)
    expect(res.body.errors.join(' ')).toContain('connection "gone" no longer exists')
    expect(JSON.stringify(res.body)).not.toContain(username)
    expect(await roleExists(username)).toBe(true)
    expect(
      (await server.call('PUT', 'sys/leases/lookup', { body: { lease_id: leaseId } })).status,
    ).toBe(200)
    // Once the connection is back, the lease revokes normally.
    must(await server.call('POST', 'database/config/gone', { body: pgConfigBody() }), 204)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    expect(await roleExists(username)).toBe(false)
  })

  it('revokes many users in one call: each lease gets its own outcome, sessions end', async () => {
    must(await server.call('POST', 'database/config/gone2', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/gone2', {
        body: { db_name: 'gone2', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
    const users = [await issue(), await issue(), await issue()]
    const orphan = await issue('gone2')
    must(await server.call('DELETE', 'database/config/gone2'), 204)
    const session = pgAs(users[1]!.username, users[1]!.password)
    await session`SELECT 1`
    const leases = server.leases as LeaseManagerControl
    const secrets = await Promise.all(
      [users[0]!, orphan, users[1]!, users[2]!].map((u) => leases.secretOf!(u.leaseId)),
    )
    const backend = server.services.mounts.byAccessor(secrets[0]!.mountAccessor)!.backend
    const internals = secrets.map((x) => x!.internal)
    const outcomes = await backend.revokeSecrets!([
      internals[0]!,
      internals[1]!,
      internals[2]!,
      { db: 'pg', username: 'not a valid name' },
      internals[3]!,
    ])
    expect(outcomes).toHaveLength(5)
    expect(outcomes[0]).toBeUndefined()
    expect(outcomes[2]).toBeUndefined()
    expect(outcomes[4]).toBeUndefined()
    expect(outcomes[1]?.message).toContain('connection "gone2" no longer exists')
    expect(outcomes[3]?.message).toContain('no valid database user')
    for (const u of users) expect(await roleExists(u.username)).toBe(false)
    expect(await roleExists(orphan.username)).toBe(true)
    await expect(session`SELECT 1`).rejects.toThrow()
    await session.end({ timeout: 1 }).catch(() => {})
    await fixture.sql`DROP ROLE ${fixture.sql(orphan.username)}`
    await server.call('PUT', 'sys/leases/revoke-force/database/creds/gone2')
  })

  it('the worker revokes a backlog of expired leases in batches', async () => {
    const leases = server.leases as LeaseManagerControl
    const users = await Promise.all(Array.from({ length: 6 }, () => issue()))
    // Stopped first, so the background worker cannot take them one tick at a time.
    await leases.worker().stop()
    await leases.capExpiry(
      users.map((u) => u.leaseId),
      Date.now() - 1,
    )
    const backend = server.services.mounts.byAccessor(
      (await leases.secretOf!(users[0]!.leaseId))!.mountAccessor,
    )!.backend
    const original = backend.revokeSecrets!
    const sizes: number[] = []
    backend.revokeSecrets = (internals) => {
      sizes.push(internals.length)
      return original(internals)
    }
    try {
      expect(await leases.worker().runOnce()).toBeGreaterThanOrEqual(6)
    } finally {
      backend.revokeSecrets = original
      leases.worker().start()
    }
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(6)
    for (const u of users) {
      expect(await roleExists(u.username)).toBe(false)
      const lookup = await server.call('PUT', 'sys/leases/lookup', {
        body: { lease_id: u.leaseId },
      })
      expect(lookup.status).toBe(400)
    }
  })

  it('runs custom revocation statements instead of the default', async () => {
    must(
      await server.call('POST', 'database/roles/custom', {
        body: {
          db_name: 'pg',
          creation_statements: pgGroupCreation(fixture.group),
          revocation_statements: ['ALTER ROLE "{{name}}" NOLOGIN; DROP ROLE IF EXISTS "{{name}}";'],
        },
      }),
      204,
    )
    const { leaseId, username } = await issue('custom')
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    expect(await roleExists(username)).toBe(false)
  })

  it('undoes a half-done creation: no role is left when a later statement fails', async () => {
    must(
      await server.call('POST', 'database/roles/broken', {
        body: {
          db_name: 'pg',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT "no_such_group_${randomBytes(3).toString('hex')}" TO "{{name}}";`,
          ],
        },
      }),
      204,
    )
    const before =
      await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-root-broken-%'`
    const res = await server.call('GET', 'database/creds/broken')
    expect(res.status).toBe(400)
    expect(JSON.stringify(res.body)).not.toMatch(/v-root-broken/)
    const after =
      await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-root-broken-%'`
    expect(after[0]!.n).toBe(before[0]!.n)
    const leases = await server.call('LIST', 'sys/leases/lookup/database/creds/broken/')
    expect(leases.status).toBe(404)
  })

  it('rotate-root changes the admin password, keeps working, and never shows it', async () => {
    const admin = pgAdmin()
    const name = `stint_rot_${randomBytes(4).toString('hex')}`
    const oldPassword = `Old-${randomBytes(8).toString('hex')}`
    await admin`CREATE ROLE ${admin(name)} WITH LOGIN CREATEROLE PASSWORD ${admin.unsafe(`'${oldPassword}'`)}`
    try {
      must(
        await server.call('POST', 'database/config/rot', {
          body: pgConfigBody({ username: name, password: oldPassword }),
        }),
        204,
      )
      must(
        await server.call('POST', 'database/roles/rot-ro', {
          body: {
            db_name: 'rot',
            creation_statements: [
              `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
            ],
          },
        }),
        204,
      )
      must(await server.call('POST', 'database/rotate-root/rot'), 204)
      const old = pgAs(name, oldPassword)
      await expect(old`SELECT 1`).rejects.toMatchObject({ code: '28P01' })
      await old.end({ timeout: 1 })
      const creds = must(await server.call('GET', 'database/creds/rot-ro'))
      must(
        await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }),
        204,
      )
      const read = must(await server.call('GET', 'database/config/rot'))
      expect(JSON.stringify(read)).not.toContain(oldPassword)
      expect(read.data.connection_details.password).toBeUndefined()
    } finally {
      await server.call('DELETE', 'database/config/rot')
      await admin`DROP ROLE IF EXISTS ${admin(name)}`
      await admin.end()
    }
  })

  it('reset reopens the connection', async () => {
    must(await server.call('POST', 'database/reset/pg'), 204)
    await issue()
  })

  it('unmounting revokes every user the mount issued', async () => {
    await mountDatabase(server, 'db2')
    must(await server.call('POST', 'db2/config/pg', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'db2/roles/ro', {
        body: { db_name: 'pg', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
    const a = must(await server.call('GET', 'db2/creds/ro')).data.username as string
    const b = must(await server.call('GET', 'db2/creds/ro')).data.username as string
    must(await server.call('DELETE', 'sys/mounts/db2'), 204)
    expect(await roleExists(a)).toBe(false)
    expect(await roleExists(b)).toBe(false)
  })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
