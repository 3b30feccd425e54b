import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mysqlPlugin } from '../../plugins/mysql/plugin.js'
import type { DatabaseConnection } from '../../plugins/contract.js'
import { generatePassword } from '../../src/engines/database/credentials.js'
import { renderer } from '../../src/engines/database/statements.js'
import { mysqlAs, mysqlConfigBody, mysqlTarget } from '../engines/database-fixtures.js'

const dialect = mysqlPlugin.dialect

/** The MySQL/MariaDB plugin on its own, through the least-privilege admin `stint_admin`. */
describe('mysql plugin', () => {
  let conn: DatabaseConnection

  beforeAll(async () => {
    conn = mysqlPlugin.connect(mysqlPlugin.parseConfig(mysqlConfigBody()))
    await conn.verify()
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
      await other.verify()
      await other.close()
    }
    expect(() => mysqlPlugin.parseConfig(mysqlConfigBody({ connection_url: 'nonsense' }))).toThrow(
      /connection_url/,
    )
  })

  it('deleting a user that does not exist succeeds', async () => {
    await remove(`v-missing-${randomBytes(4).toString('hex')}`)
  })

  it('rolls back a half-created user and keeps secrets out of the error', async () => {
    const username = `v-half-${randomBytes(4).toString('hex')}`
    const password = generatePassword()
    const error = await create(username, password, [
      `GRANT SELECT ON \`nope_${randomBytes(3).toString('hex')}\`.* TO '{{name}}'@'%'`,
    ]).catch((e: Error) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).not.toContain(username)
    expect((error as Error).message).not.toContain(password)
    await expect(mysqlAs(username, password, false)).rejects.toMatchObject({
      code: expect.stringMatching(/^ER_ACCESS_DENIED/),
    })
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
