import { randomBytes } from 'node:crypto'
import type mysql from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mysqlPlugin } from '../../plugins/mysql/plugin.js'
import type { DatabaseConnection } from '../../plugins/contract.js'
import { generatePassword } from '../../src/engines/database/credentials.js'
import { renderer } from '../../src/engines/database/statements.js'
import {
  mysqlAs,
  mysqlConfigBody,
  mysqlInspector,
  mysqlTarget,
} from '../engines/database-fixtures.js'

const dialect = mysqlPlugin.dialect

/** The MySQL/MariaDB plugin on its own, through the least-privilege admin `stint_admin`. */
describe('mysql plugin', () => {
  let conn: DatabaseConnection

  beforeAll(async () => {
    conn = mysqlPlugin.connect(mysqlPlugin.parseConfig(mysqlConfigBody()))
    await conn.verify({})
  })

  afterAll(async () => {
    await conn?.close()
  })

  const create = async (username: string, password = generatePassword(), extra: string[] = []) => {
    const render = renderer({ name: username, username, password }, dialect)
    await conn.createUser({
      username,
      password,
      expiration: new Date(Date.now() + 600_000),
      statements: render([`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`, ...extra]),
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

  it('accepts both mysql:// URLs and Go DSNs', async () => {
    const url = mysqlTarget()
    for (const connection_url of [
      `mysql://{{username}}:{{password}}@${url.host}${url.pathname}`,
      `{{username}}:{{password}}@tcp(${url.host})${url.pathname}`,
    ]) {
      const other = mysqlPlugin.connect(
        mysqlPlugin.parseConfig(mysqlConfigBody({ connection_url })),
      )
      await other.verify({})
      await other.close()
    }
    expect(() => mysqlPlugin.parseConfig(mysqlConfigBody({ connection_url: 'nonsense' }))).toThrow(
      /connection_url/,
    )
  })

  it('deleting a user that does not exist succeeds', async () => {
    await remove(`v-missing-${randomBytes(4).toString('hex')}`)
  })

  it('rolls back a half-created user and keeps the password out of the error', async () => {
    const username = `v-half-${randomBytes(4).toString('hex')}`
    const password = generatePassword()
    const error = await create(username, password, [
      `GRANT SELECT ON \`nope_${randomBytes(3).toString('hex')}\`.* TO '{{name}}'@'%'`,
    ]).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).not.toContain(password)
    await expect(mysqlAs(username, password, false)).rejects.toMatchObject({
      code: expect.stringMatching(/^ER_ACCESS_DENIED/),
    })
  })

  const removeMany = async (usernames: string[], statements: string[][] = []) => {
    const users = usernames.map((username, i) => {
      const render = renderer({ name: username, username }, dialect)
      return { username, statements: render(statements[i] ?? []), render }
    })
    return (await conn.deleteUsers!({ users })).outcomes
  }
  const exists = async (username: string) => {
    const inspector = await mysqlInspector()
    try {
      const [rows] = await inspector.query<mysql.RowDataPacket[]>(
        'SELECT 1 FROM mysql.user WHERE user = ?',
        [username],
      )
      return rows.length > 0
    } finally {
      await inspector.end()
    }
  }

  it('deletes several users in one batch, killing their sessions; a missing one is success', async () => {
    const tag = randomBytes(4).toString('hex')
    const names = [`v-b1-${tag}`, `v.b2.${tag}`, `v-b3-${tag}`]
    const passwords = await Promise.all(names.map((n) => create(n)))
    const sessions = await Promise.all(names.map((n, i) => mysqlAs(n, passwords[i]!, false)))
    for (const s of sessions) s.on('error', () => {})
    expect(await conn.sessions({ username: names[0]! })).toEqual({ count: 1 })

    const outcomes = await removeMany([names[0]!, `v-gone-${tag}`, names[1]!, names[2]!])
    expect(outcomes).toEqual([undefined, undefined, undefined, undefined])
    for (const n of names) {
      expect(await exists(n)).toBe(false)
      expect(await conn.sessions({ username: n })).toEqual({ count: 0 })
    }
    for (const s of sessions) {
      await expect(s.query('SELECT 1')).rejects.toThrow()
      s.destroy()
    }
    // Idempotent: the same batch again succeeds.
    expect(await removeMany(names)).toEqual([undefined, undefined, undefined])
  })

  it('isolates a user the batch cannot drop and still drops the others', async () => {
    const tag = randomBytes(4).toString('hex')
    const names = [`v-i1-${tag}`, `v-i2-${tag}`]
    for (const n of names) await create(n)
    const custom = `v-c-${tag}`
    await create(custom)
    // Longer than any account name the server takes: the batch statement is refused.
    const invalid = `v-${'x'.repeat(140)}`
    const outcomes = await removeMany(
      [names[0]!, invalid, custom, names[1]!],
      [[], [], [`DROP USER IF EXISTS '{{name}}'@'%'`]],
    )
    expect(outcomes[0]).toBeUndefined()
    expect(outcomes[2]).toBeUndefined()
    expect(outcomes[3]).toBeUndefined()
    expect(outcomes[1]).toBeInstanceOf(Error)
    expect(outcomes[1]!.message).toMatch(/too long/)
    expect(outcomes[1]!.message).not.toContain('stint_admin:')
    for (const n of [...names, custom]) expect(await exists(n)).toBe(false)
  })

  it('kills every open session of the user when it is deleted', async () => {
    const username = `v-kill-${randomBytes(4).toString('hex')}`
    const password = await create(username)
    const sessions = await Promise.all([1, 2, 3].map(() => mysqlAs(username, password, false)))
    for (const s of sessions) s.on('error', () => {})
    await remove(username)
    for (const s of sessions) {
      await expect(s.query('SELECT 1')).rejects.toThrow()
      s.destroy()
    }
  })
})
