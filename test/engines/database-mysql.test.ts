import { randomBytes } from 'node:crypto'
import type { Connection } from 'mysql2/promise'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import {
  mountDatabase,
  must,
  mysqlAdmin,
  mysqlAs,
  mysqlConfigBody,
  mysqlInspector,
  mysqlTarget,
} from './database-fixtures.js'

/*
 * Acceptance against the real MariaDB target through the least-privilege admin `stint_admin`
 * (CREATE USER, PROCESS, CONNECTION ADMIN, RELOAD, and the data privileges WITH GRANT OPTION).
 */
describe('database engine on MySQL/MariaDB', () => {
  let server: TestServer
  let admin: Connection
  let inspector: Connection
  // The least-privilege admin may create tables but not drop them: one shared table.
  const table = 'stint_items'
  const database = () => mysqlTarget().pathname.slice(1)

  beforeAll(async () => {
    admin = await mysqlAdmin()
    inspector = await mysqlInspector()
    await admin.query(`CREATE TABLE IF NOT EXISTS \`${table}\` (id int primary key, label text)`)
    await admin.query(`INSERT IGNORE INTO \`${table}\` VALUES (1, 'one')`)
    server = await startTestServer()
    await mountDatabase(server)
    must(await server.call('POST', 'database/config/my', { body: mysqlConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/ro', {
        body: {
          db_name: 'my',
          creation_statements: [
            `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON \`${database()}\`.\`${table}\` TO '{{name}}'@'%';`,
          ],
          default_ttl: '1h',
        },
      }),
      204,
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await admin?.end()
    await inspector?.end()
  })

  const issue = async (role = 'ro') => {
    const body = must(await server.call('GET', `database/creds/${role}`))
    return {
      leaseId: body.lease_id as string,
      username: body.data.username as string,
      password: body.data.password as string,
    }
  }
  const userExists = async (username: string) => {
    const [rows] = await inspector.query('SELECT 1 FROM mysql.user WHERE user = ?', [username])
    return (rows as unknown[]).length > 0
  }

  it('issues a user of at most 32 characters that logs in and reads what it was granted', async () => {
    const { username, password } = await issue()
    expect(username.length).toBeLessThanOrEqual(32)
    expect(username).toMatch(/^v-root-ro-/)
    const user = await mysqlAs(username, password)
    try {
      const [rows] = await user.query(`SELECT label FROM \`${table}\` WHERE id = 1`)
      expect((rows as Array<{ label: string }>)[0]?.label).toBe('one')
      await expect(user.query(`INSERT INTO \`${table}\` VALUES (2, 'two')`)).rejects.toMatchObject({
        code: 'ER_TABLEACCESS_DENIED_ERROR',
      })
    } finally {
      await user.end()
    }
  })

  it('refuses a wrong password', async () => {
    const { username } = await issue()
    await expect(mysqlAs(username, 'Wrong-password-123456')).rejects.toMatchObject({
      code: expect.stringMatching(/^ER_ACCESS_DENIED/),
    })
  })

  it('revoking kills the open session, blocks new logins and drops the user', async () => {
    const { leaseId, username, password } = await issue()
    expect(await userExists(username)).toBe(true)
    const session = await mysqlAs(username, password)
    session.on('error', () => {})
    await session.query('SELECT 1')
    const started = Date.now()
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
    await expect(session.query('SELECT 1')).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(5_000)
    session.destroy()
    expect(await userExists(username)).toBe(false)
    await expect(mysqlAs(username, password)).rejects.toMatchObject({
      code: expect.stringMatching(/^ER_ACCESS_DENIED/),
    })
  })

  it('an expired lease ends the user', async () => {
    must(
      await server.call('POST', 'database/roles/short', {
        body: {
          db_name: 'my',
          creation_statements: [`CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'`],
          default_ttl: '2s',
        },
      }),
      204,
    )
    const { username, password } = await issue('short')
    const session = await mysqlAs(username, password, false)
    session.on('error', () => {})
    const deadline = Date.now() + 15_000
    while ((await userExists(username)) && Date.now() < deadline) await sleep(250)
    expect(await userExists(username)).toBe(false)
    await expect(session.query('SELECT 1')).rejects.toThrow()
    session.destroy()
  })

  it('runs rollback statements when creation fails half-way', async () => {
    must(
      await server.call('POST', 'database/roles/broken', {
        body: {
          db_name: 'my',
          creation_statements: [
            `CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON \`no_such_db_${randomBytes(3).toString('hex')}\`.* TO '{{name}}'@'%';`,
          ],
        },
      }),
      204,
    )
    const [before] = await inspector.query(
      "SELECT count(*) AS n FROM mysql.user WHERE user LIKE 'v-root-broken-%'",
    )
    const res = await server.call('GET', 'database/creds/broken')
    expect(res.status).toBe(400)
    expect(JSON.stringify(res.body)).not.toMatch(/v-root-broken/)
    const [after] = await inspector.query(
      "SELECT count(*) AS n FROM mysql.user WHERE user LIKE 'v-root-broken-%'",
    )
    expect((after as Array<{ n: number }>)[0]!.n).toBe((before as Array<{ n: number }>)[0]!.n)
  })

  it('revoking a user that is already gone succeeds', async () => {
    const { leaseId, username } = await issue()
    await admin.query(`DROP USER '${username}'@'%'`)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: leaseId } }), 204)
  })

  it('rotate-root changes the admin password and keeps working', async () => {
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
          }),
        }),
        204,
      )
      must(await server.call('POST', 'database/rotate-root/rot'), 204)
      await expect(mysqlAs(name, oldPassword, false)).rejects.toMatchObject({
        code: expect.stringMatching(/^ER_ACCESS_DENIED/),
      })
      must(await server.call('POST', 'database/reset/rot'), 204)
      const read = must(await server.call('GET', 'database/config/rot'))
      expect(JSON.stringify(read)).not.toContain(oldPassword)
    } finally {
      await server.call('DELETE', 'database/config/rot')
      await admin.query(`DROP USER IF EXISTS '${name}'@'%'`)
    }
  })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
