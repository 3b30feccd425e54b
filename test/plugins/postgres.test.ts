import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresPlugin } from '../../plugins/postgres/plugin.js'
import type { DatabaseConnection } from '../../plugins/contract.js'
import { generatePassword } from '../../src/engines/database/credentials.js'
import { formatExpiration, renderer } from '../../src/engines/database/statements.js'
import { pgAs, pgConfigBody, pgGroupFixture } from '../engines/database-fixtures.js'

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
    await conn.verify()
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

  it('keeps usernames and passwords out of its errors', async () => {
    const username = `v-dup-${randomBytes(4).toString('hex')}`
    const password = await create(username)
    const second = generatePassword()
    const error = await create(username, second).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    const message = (error as Error).message
    expect(message).toMatch(/already exists/)
    expect(message).not.toContain(username)
    expect(message).not.toContain(second)
    expect(message).not.toContain(password)
    await remove(username)
  })

  it(
    'holds 5,000 live credentials on one group role, issued 8 at a time',
    { timeout: 600_000 },
    async () => {
      const prefix = `v-scale-${randomBytes(3).toString('hex')}`
      const total = Number(process.env.STINT_SCALE_USERS ?? 5000)
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
