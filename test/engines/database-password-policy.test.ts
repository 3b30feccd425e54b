import { randomBytes } from 'node:crypto'
import type { Connection } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import { startTestServer, type TestServer } from '../support/server.js'
import {
  mountDatabase,
  must,
  mysqlAdmin,
  mysqlAs,
  mysqlConfigBody,
  mysqlTarget,
  pgAdmin,
  pgAs,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from './database-fixtures.js'

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const DIGITS = '0123456789'
/** Every printable ASCII symbol Stint places in SQL: all but ' " ` and \. */
const SYMBOLS = '!#$%&()*+,-./:;<=>?@[]^_{|}~'

/** A JSON password policy with one charset rule per `[charset, min-chars]`. */
const policyJson = (length: number, ...rules: Array<[string, number]>) =>
  JSON.stringify({
    length,
    rule: rules.map(([charset, min]) => ({ charset: { charset, 'min-chars': min } })),
  })

/** 32 characters, at least 6 symbols: URL, DSN and SQL quoting all get exercised. */
const SQL_SAFE_POLICY = policyJson(32, [LOWER, 1], [UPPER, 1], [DIGITS, 1], [SYMBOLS, 6])

function expectFollowsSqlSafePolicy(password: string) {
  expect(password).toHaveLength(32)
  expect([...password].every((c) => (LOWER + UPPER + DIGITS + SYMBOLS).includes(c))).toBe(true)
  const count = (set: string) => [...password].filter((c) => set.includes(c)).length
  expect(count(LOWER)).toBeGreaterThanOrEqual(1)
  expect(count(UPPER)).toBeGreaterThanOrEqual(1)
  expect(count(DIGITS)).toBeGreaterThanOrEqual(1)
  expect(count(SYMBOLS)).toBeGreaterThanOrEqual(6)
}

async function putPolicy(server: TestServer, name: string, policy: string) {
  must(await server.call('PUT', `sys/policies/password/${name}`, { body: { policy } }), 204)
}

/** The admin password a connection config holds now (storage is sealed: open it as Stint does). */
async function storedAdminPassword(server: TestServer, config: string): Promise<string> {
  const row = await server.storage.db
    .selectFrom('database_configs')
    .selectAll()
    .where('name', '=', config)
    .executeTakeFirstOrThrow()
  const opened = server.services.seal.barrier.decrypt(
    'database_configs',
    'sealed',
    row.id,
    row.sealed,
  )
  return (JSON.parse(opened) as { password: string }).password
}

const expect400 = (res: { status: number; body: any }, pattern: RegExp) => {
  expect(res.status, JSON.stringify(res.body)).toBe(400)
  expect(res.body.errors.join(' ')).toMatch(pattern)
}

/*
 * password_policy on database connections, against the real targets. PostgreSQL checks passwords
 * (pg_hba scram-sha-256 for generated users, proved in beforeAll), so a login proves the password.
 */
describe('database password_policy on PostgreSQL', () => {
  let server: TestServer
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>

  beforeAll(async () => {
    await assertPgPasswordChecking()
    fixture = await pgGroupFixture()
    server = await startTestServer()
    await mountDatabase(server)
    await putPolicy(server, 'sql-safe', SQL_SAFE_POLICY)
    must(
      await server.call('POST', 'database/config/pg', {
        body: pgConfigBody({ password_policy: 'sql-safe' }),
      }),
      204,
    )
    must(
      await server.call('POST', 'database/roles/ro', {
        body: { db_name: 'pg', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await fixture?.drop()
  })

  const leaseCount = async (role: string) => {
    const res = await server.call('LIST', `sys/leases/lookup/database/creds/${role}/`)
    return res.status === 404 ? 0 : (res.body.data.keys as string[]).length
  }
  const usersLike = async (prefix: string) =>
    (
      await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE ${prefix + '%'}`
    )[0]!.n as number
  /** A connection `name` using password policy `policy`, and a role of the same name on it. */
  const connectionWithRole = async (name: string, policy: string) => {
    must(
      await server.call('POST', `database/config/${name}`, {
        body: pgConfigBody({ password_policy: policy }),
      }),
      204,
    )
    must(
      await server.call('POST', `database/roles/${name}`, {
        body: { db_name: name, creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
  }

  it('stores the policy name and returns it on read; an update without it keeps it', async () => {
    expect(must(await server.call('GET', 'database/config/pg')).data.password_policy).toBe(
      'sql-safe',
    )
    must(await server.call('POST', 'database/config/pg', { body: { allowed_roles: '*' } }), 204)
    expect(must(await server.call('GET', 'database/config/pg')).data.password_policy).toBe(
      'sql-safe',
    )
  })

  it('issues passwords that follow the policy and log in', async () => {
    const symbolsSeen = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const creds = must(await server.call('GET', 'database/creds/ro'))
      const { username, password } = creds.data as { username: string; password: string }
      expectFollowsSqlSafePolicy(password)
      for (const c of password) if (SYMBOLS.includes(c)) symbolsSeen.add(c)
      const user = pgAs(username, password)
      try {
        const rows = await user`SELECT label FROM ${user(fixture.table)} WHERE id = 1`
        expect(rows[0]?.label).toBe('one')
      } finally {
        await user.end()
      }
      const wrong = pgAs(username, `${password}x`)
      try {
        await expect(wrong`SELECT 1`).rejects.toMatchObject({ code: '28P01' })
      } finally {
        await wrong.end({ timeout: 1 })
      }
    }
    expect(symbolsSeen.size).toBeGreaterThan(10)
  })

  it('refuses a connection naming a policy that does not exist, and writes nothing', async () => {
    expect400(
      await server.call('POST', 'database/config/pp', {
        body: pgConfigBody({ password_policy: 'nope' }),
      }),
      /^password policy "nope" does not exist$/,
    )
    expect((await server.call('GET', 'database/config/pp')).status).toBe(404)
    expect400(
      await server.call('POST', 'database/config/pp', {
        body: pgConfigBody({ password_policy: '../acl/root' }),
      }),
      /invalid password policy name/,
    )
  })

  it('refuses policies that can generate \', ", ` or \\, naming them', async () => {
    for (const [name, char] of [
      ['quote', "'"],
      ['dquote', '"'],
      ['backtick', '`'],
      ['backslash', '\\'],
    ] as const) {
      await putPolicy(server, name, policyJson(20, [LOWER + char, 0]))
      expect400(
        await server.call('POST', 'database/config/unsafe', {
          body: pgConfigBody({ password_policy: name }),
        }),
        new RegExp(
          `^password policy "${name}" can generate \\${char}, which Stint does not place in SQL`,
        ),
      )
    }
    await putPolicy(server, 'all-unsafe', policyJson(20, [LOWER + '\'"`\\', 0]))
    expect400(
      await server.call('POST', 'database/config/unsafe', {
        body: pgConfigBody({ password_policy: 'all-unsafe' }),
      }),
      /can generate ' " ` \\, which/,
    )
    expect((await server.call('GET', 'database/config/unsafe')).status).toBe(404)
  })

  it('fails issuance clearly when the policy was deleted, leaving no lease and no user', async () => {
    await putPolicy(server, 'temp', policyJson(24, [LOWER + DIGITS, 1]))
    await connectionWithRole('vanish', 'temp')
    must(await server.call('DELETE', 'sys/policies/password/temp'), 204)
    const before = await usersLike('v-root-vanish-')
    expect400(
      await server.call('GET', 'database/creds/vanish'),
      /^password policy "temp" does not exist$/,
    )
    expect(await leaseCount('vanish')).toBe(0)
    expect(await usersLike('v-root-vanish-')).toBe(before)
    // An empty password_policy returns the connection to the default generator.
    must(
      await server.call('POST', 'database/config/vanish', { body: { password_policy: '' } }),
      204,
    )
    const creds = must(await server.call('GET', 'database/creds/vanish'))
    expect(creds.data.password).toMatch(/^[A-Za-z0-9-]{20}$/)
  })

  it('refuses issuance when the policy was rewritten to generate an unsafe character', async () => {
    await putPolicy(server, 'drift', policyJson(24, [LOWER + DIGITS, 1]))
    await connectionWithRole('drift', 'drift')
    await putPolicy(server, 'drift', policyJson(24, [LOWER + "'", 1]))
    expect400(await server.call('GET', 'database/creds/drift'), /can generate ', which/)
    expect(await leaseCount('drift')).toBe(0)
  })

  it('refuses a password with $ inside a $$ body, leaving no lease and no user', async () => {
    await putPolicy(server, 'dollars', policyJson(20, [LOWER + DIGITS, 0], ['$', 1]))
    must(
      await server.call('POST', 'database/config/dollar', {
        body: pgConfigBody({ password_policy: 'dollars' }),
      }),
      204,
    )
    must(
      await server.call('POST', 'database/roles/dollar', {
        body: {
          db_name: 'dollar',
          creation_statements: [
            `DO $$ BEGIN EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', '{{name}}', '{{password}}'); END $$;`,
          ],
        },
      }),
      204,
    )
    const before = await usersLike('v-root-dollar-')
    expect400(await server.call('GET', 'database/creds/dollar'), /\$\$ body/)
    expect(await leaseCount('dollar')).toBe(0)
    expect(await usersLike('v-root-dollar-')).toBe(before)
  })

  it('rotate-root sets an admin password from the policy, which then works for issuance', async () => {
    const admin = pgAdmin()
    const name = `stint_rot_${randomBytes(4).toString('hex')}`
    const oldPassword = `Old-${randomBytes(8).toString('hex')}`
    await admin`CREATE ROLE ${admin(name)} WITH LOGIN CREATEROLE PASSWORD ${admin.unsafe(`'${oldPassword}'`)}`
    await admin`GRANT ${admin(fixture.group)} TO ${admin(name)} WITH ADMIN OPTION`
    try {
      must(
        await server.call('POST', 'database/config/rot', {
          body: pgConfigBody({
            username: name,
            password: oldPassword,
            password_policy: 'sql-safe',
          }),
        }),
        204,
      )
      must(
        await server.call('POST', 'database/roles/rot-ro', {
          body: { db_name: 'rot', creation_statements: pgGroupCreation(fixture.group) },
        }),
        204,
      )
      const res = await server.call('POST', 'database/rotate-root/rot')
      expect(res.status, JSON.stringify(res.body)).toBe(204)
      const newPassword = await storedAdminPassword(server, 'rot')
      expect(newPassword).not.toBe(oldPassword)
      expectFollowsSqlSafePolicy(newPassword)

      const old = pgAs(name, oldPassword)
      await expect(old`SELECT 1`).rejects.toMatchObject({ code: '28P01' })
      await old.end({ timeout: 1 })
      const fresh = pgAs(name, newPassword)
      try {
        expect((await fresh`SELECT current_user AS u`)[0]?.u).toBe(name)
      } finally {
        await fresh.end()
      }
      // The pool reconnects through connection_url with the new password URL-encoded in it.
      must(await server.call('POST', 'database/reset/rot'), 204)
      const creds = must(await server.call('GET', 'database/creds/rot-ro'))
      expectFollowsSqlSafePolicy(creds.data.password as string)
      must(
        await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }),
        204,
      )
      expect(JSON.stringify(must(await server.call('GET', 'database/config/rot')))).not.toContain(
        newPassword,
      )
    } finally {
      await server.call('DELETE', 'database/config/rot')
      await admin`DROP ROLE IF EXISTS ${admin(name)}`
      await admin.end()
    }
  })

  it('rotate-root fails cleanly when the policy was deleted, keeping the old password', async () => {
    const admin = pgAdmin()
    const name = `stint_rot_${randomBytes(4).toString('hex')}`
    const oldPassword = `Old-${randomBytes(8).toString('hex')}`
    await admin`CREATE ROLE ${admin(name)} WITH LOGIN CREATEROLE PASSWORD ${admin.unsafe(`'${oldPassword}'`)}`
    try {
      await putPolicy(server, 'rot-temp', policyJson(24, [LOWER + DIGITS, 1]))
      must(
        await server.call('POST', 'database/config/rot2', {
          body: pgConfigBody({
            username: name,
            password: oldPassword,
            password_policy: 'rot-temp',
          }),
        }),
        204,
      )
      must(await server.call('DELETE', 'sys/policies/password/rot-temp'), 204)
      const res = await server.call('POST', 'database/rotate-root/rot2')
      expect400(res, /^password policy "rot-temp" does not exist$/)
      expect(JSON.stringify(res.body)).not.toContain(oldPassword)
      expect(await storedAdminPassword(server, 'rot2')).toBe(oldPassword)
      const still = pgAs(name, oldPassword)
      try {
        await still`SELECT 1`
      } finally {
        await still.end()
      }
    } finally {
      await server.call('DELETE', 'database/config/rot2')
      await admin`DROP ROLE IF EXISTS ${admin(name)}`
      await admin.end()
    }
  })
})

describe('database password_policy on MySQL/MariaDB', () => {
  let server: TestServer
  let admin: Connection
  const table = 'stint_items'
  const database = () => mysqlTarget().pathname.slice(1)

  beforeAll(async () => {
    admin = await mysqlAdmin()
    await admin.query(`CREATE TABLE IF NOT EXISTS \`${table}\` (id int primary key, label text)`)
    await admin.query(`INSERT IGNORE INTO \`${table}\` VALUES (1, 'one')`)
    server = await startTestServer()
    await mountDatabase(server)
    await putPolicy(server, 'sql-safe', SQL_SAFE_POLICY)
    must(
      await server.call('POST', 'database/config/my', {
        body: mysqlConfigBody({ password_policy: 'sql-safe' }),
      }),
      204,
    )
    must(
      await server.call('POST', 'database/roles/ro', {
        body: {
          db_name: 'my',
          creation_statements: [
            `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON \`${database()}\`.\`${table}\` TO '{{name}}'@'%';`,
          ],
        },
      }),
      204,
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await admin?.end()
  })

  it('issues passwords that follow the policy and log in', async () => {
    for (let i = 0; i < 6; i++) {
      const creds = must(await server.call('GET', 'database/creds/ro'))
      const { username, password } = creds.data as { username: string; password: string }
      expectFollowsSqlSafePolicy(password)
      const user = await mysqlAs(username, password)
      try {
        const [rows] = await user.query(`SELECT label FROM \`${table}\` WHERE id = 1`)
        expect((rows as Array<{ label: string }>)[0]?.label).toBe('one')
      } finally {
        await user.end()
      }
      await expect(mysqlAs(username, `${password}x`)).rejects.toMatchObject({
        code: expect.stringMatching(/^ER_ACCESS_DENIED/),
      })
    }
  })

  it('rotate-root sets an admin password from the policy that Stint then connects with', async () => {
    const name = `stint_rot_${randomBytes(3).toString('hex')}`
    const oldPassword = `Old-${randomBytes(8).toString('hex')}`
    await admin.query(`CREATE USER '${name}'@'%' IDENTIFIED BY '${oldPassword}'`)
    try {
      must(
        await server.call('POST', 'database/config/rot', {
          body: mysqlConfigBody({
            username: name,
            password: oldPassword,
            connection_url: `{{username}}:{{password}}@tcp(${mysqlTarget().host})/`,
            password_policy: 'sql-safe',
          }),
        }),
        204,
      )
      const res = await server.call('POST', 'database/rotate-root/rot')
      expect(res.status, JSON.stringify(res.body)).toBe(204)
      const newPassword = await storedAdminPassword(server, 'rot')
      expectFollowsSqlSafePolicy(newPassword)
      await expect(mysqlAs(name, oldPassword, false)).rejects.toMatchObject({
        code: expect.stringMatching(/^ER_ACCESS_DENIED/),
      })
      const fresh = await mysqlAs(name, newPassword, false)
      await fresh.end()
      // reset reconnects through the Go DSN with the new password URL-encoded in it.
      must(await server.call('POST', 'database/reset/rot'), 204)
    } finally {
      await server.call('DELETE', 'database/config/rot')
      await admin.query(`DROP USER IF EXISTS '${name}'@'%'`)
    }
  })
})
