import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresPlugin } from '../../plugins/postgres/plugin.js'
import type { DatabaseConnection } from '../../plugins/contract.js'
import { generatePassword } from '../../src/engines/database/credentials.js'
import { formatExpiration, renderer } from '../../src/engines/database/statements.js'
import { pgAs, pgConfigBody, pgGroupFixture, pgTarget } from '../engines/database-fixtures.js'
import { pgTargetSuperuserUrl } from '../support/databases.js'

const dialect = postgresPlugin.dialect

/** The PostgreSQL plugin on its own, through the least-privilege admin `stint_admin`. */
describe('postgresql plugin', () => {
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>
  let conn: DatabaseConnection

  beforeAll(async () => {
    fixture = await pgGroupFixture()
    conn = postgresPlugin.connect(
      postgresPlugin.parseConfig(pgConfigBody({ max_open_connections: 8 })),
    )
    await conn.verify({})
  })

  afterAll(async () => {
    await conn?.close()
    await fixture?.drop()
  })

  const create = async (username: string, password = generatePassword()) => {
    const expiration = formatExpiration(new Date(Date.now() + 600_000))
    const render = renderer({ name: username, username, password, expiration }, dialect)
    await conn.createUser({
      username,
      password,
      expiration: new Date(Date.now() + 600_000),
      statements: render([
        `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${fixture.group}"`,
      ]),
      rollbackStatements: [],
      render,
    })
    return password
  }
  const remove = (username: string) =>
    conn.deleteUser({
      username,
      statements: [],
      render: renderer({ name: username, username }, dialect),
    })
  const exists = async (username: string) =>
    (await fixture.sql`SELECT 1 FROM pg_roles WHERE rolname = ${username}`).length > 0

  it('deleting a user that does not exist succeeds', async () => {
    await remove(`v-missing-${randomBytes(4).toString('hex')}`)
  })

  it('drops a user that owns objects (REASSIGN/DROP OWNED with a non-superuser admin)', async () => {
    const username = `v-owner-${randomBytes(4).toString('hex')}`
    const password = await create(username)
    const user = pgAs(username, password)
    await user`SELECT lo_create(0)`
    await user.end()
    await remove(username)
    expect(await exists(username)).toBe(false)
  })

  const removeMany = async (usernames: string[], statements: string[][] = []) => {
    const users = usernames.map((username, i) => {
      const render = renderer({ name: username, username }, dialect)
      return { username, statements: render(statements[i] ?? []), render }
    })
    return (await conn.deleteUsers!({ users })).outcomes
  }

  it('deletes several users in one batch, ending their sessions; a missing one is success', async () => {
    const tag = randomBytes(4).toString('hex')
    // A dotted name: postgres.js would quote it as schema-qualified, the plugin must not.
    const names = [`v-b1-${tag}`, `v.b2.${tag}`, `v-b3-${tag}`]
    const passwords = await Promise.all(names.map((n) => create(n)))
    const owner = pgAs(names[0]!, passwords[0]!)
    await owner`SELECT lo_create(0)`
    const sessions = names.map((n, i) => pgAs(n, passwords[i]!))
    for (const s of sessions) await s`SELECT 1`
    const count = async () =>
      (
        await fixture.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY(${names})`
      )[0]!.n
    expect(await count()).toBe(4)
    const missing = `v-gone-${tag}`

    const outcomes = await removeMany([names[0]!, missing, names[1]!, names[2]!])
    expect(outcomes).toEqual([undefined, undefined, undefined, undefined])
    for (const n of names) expect(await exists(n)).toBe(false)
    expect(await count()).toBe(0)
    for (const s of [owner, ...sessions]) {
      await expect(s`SELECT 1`).rejects.toThrow()
      await s.end({ timeout: 1 }).catch(() => {})
    }
    // Idempotent: the same batch again succeeds.
    expect(await removeMany(names)).toEqual([undefined, undefined, undefined])
  })

  it('isolates a user the batch cannot drop and still drops the others', async () => {
    const tag = randomBytes(4).toString('hex')
    const names = [`v-i1-${tag}`, `v-i2-${tag}`, `v-i3-${tag}`]
    for (const n of names) await create(n)
    // A superuser role: the CREATEROLE admin may not alter it, so the batch is refused.
    const superuser = postgres(pgTargetSuperuserUrl(), {
      max: 1,
      onnotice: () => {},
    })
    const guarded = `v-su-${tag}`
    await superuser`CREATE ROLE ${superuser(guarded)} SUPERUSER NOLOGIN`
    try {
      // The custom-statement user runs its own statements, one at a time.
      const custom = `v-c-${tag}`
      await create(custom)
      const outcomes = await removeMany(
        [names[0]!, guarded, names[1]!, custom, names[2]!],
        [[], [], [], ['DROP ROLE IF EXISTS "{{name}}"']],
      )
      expect(outcomes[0]).toBeUndefined()
      expect(outcomes[2]).toBeUndefined()
      expect(outcomes[3]).toBeUndefined()
      expect(outcomes[4]).toBeUndefined()
      expect(outcomes[1]).toBeInstanceOf(Error)
      expect(outcomes[1]!.message).toMatch(/superuser/)
      expect(outcomes[1]!.message).not.toContain('stint_admin:')
      for (const n of [...names, custom]) expect(await exists(n)).toBe(false)
      expect(await exists(guarded)).toBe(true)
    } finally {
      await superuser`DROP ROLE IF EXISTS ${superuser(guarded)}`
      await superuser.end()
    }
  })

  it('fails every user of a batch at once when the target is unreachable', async () => {
    const url = pgTarget()
    const dead = postgresPlugin.connect(
      postgresPlugin.parseConfig(
        pgConfigBody({
          connection_url: `postgres://{{username}}:{{password}}@127.0.0.1:1${url.pathname}`,
          connect_timeout: 2,
        }),
      ),
    )
    try {
      const names = ['v-x1', 'v-x2', 'v-x3']
      const { outcomes } = await dead.deleteUsers!({
        users: names.map((username) => ({
          username,
          statements: [],
          render: renderer({ name: username, username }, dialect),
        })),
      })
      expect(outcomes).toHaveLength(3)
      for (const o of outcomes) expect(o).toBeInstanceOf(Error)
      expect(new Set(outcomes).size).toBe(1)
      expect(outcomes[0]!.message).not.toContain(decodeURIComponent(url.password))
    } finally {
      await dead.close()
    }
  })

  it('names the user in its errors but keeps passwords out', async () => {
    const username = `v-dup-${randomBytes(4).toString('hex')}`
    const password = await create(username)
    const second = generatePassword()
    const error = await create(username, second).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    const message = (error as Error).message
    expect(message).toContain(`role "${username}" already exists`)
    expect(message).not.toContain(second)
    expect(message).not.toContain(password)
    await remove(username)
  })

  it(
    // Past the ~2,400 grantees at which per-table grants overflow PostgreSQL's 8 KB ACL row
    // (reference/performance.md): membership in one group role has no such ceiling.
    'holds 3,000 live credentials on one group role, issued 8 at a time',
    { timeout: 600_000 },
    async () => {
      const prefix = `v-scale-${randomBytes(3).toString('hex')}`
      const total = Number(process.env.STINT_SCALE_USERS ?? 3000)
      const passwords = new Map<string, string>()
      let next = 0
      try {
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (next < total) {
              const username = `${prefix}-${next++}`
              passwords.set(username, await create(username))
            }
          }),
        )
        const [{ n }] = (await fixture.sql`
        SELECT count(*)::int AS n FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        WHERE g.rolname = ${fixture.group}`) as unknown as [{ n: number }]
        expect(n).toBe(total)
        for (const i of [0, Math.floor(total / 2), total - 1]) {
          const username = `${prefix}-${i}`
          const user = pgAs(username, passwords.get(username)!)
          const rows = await user`SELECT label FROM ${user(fixture.table)}`
          expect(rows[0]?.label).toBe('one')
          await user.end()
        }
      } finally {
        let drop = 0
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            while (drop < next) await remove(`${prefix}-${drop++}`)
          }),
        )
      }
      const left =
        await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE ${prefix + '-%'}`
      expect(left[0]!.n).toBe(0)
    },
  )
})
