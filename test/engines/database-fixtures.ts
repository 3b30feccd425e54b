import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import postgres from 'postgres'
import { targetUrls } from '../support/databases.js'
import type { TestServer } from '../support/server.js'

/** Helpers shared by the database engine tests: target fixtures on the real servers. */

export const pgTarget = () => new URL(targetUrls().postgres)
export const mysqlTarget = () => new URL(targetUrls().mysql)

/** `postgres://{{username}}:{{password}}@host:port/db` plus the admin credentials, as Vault takes them. */
export function pgConfigBody(extra: Record<string, unknown> = {}) {
  const url = pgTarget()
  return {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgres://{{username}}:{{password}}@${url.host}${url.pathname}`,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    allowed_roles: '*',
    ...extra,
  }
}

export function mysqlConfigBody(extra: Record<string, unknown> = {}) {
  const url = mysqlTarget()
  return {
    plugin_name: 'mysql-database-plugin',
    connection_url: `{{username}}:{{password}}@tcp(${url.host})${url.pathname}`,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    allowed_roles: '*',
    ...extra,
  }
}

export function pgAdmin() {
  return postgres(targetUrls().postgres, { max: 2, connect_timeout: 10, onnotice: () => {} })
}

/**
 * The MariaDB superuser, only to look at `mysql.user` in assertions (the least-privilege admin
 * cannot read it). Stint itself always connects as `stint_admin`.
 */
export async function mysqlInspector() {
  const url = process.env.STINT_TEST_MYSQL_ROOT_URL || 'mysql://root@127.0.0.1:3306/mysql'
  return mysql.createConnection({ uri: url, connectTimeout: 10_000 })
}

export async function mysqlAdmin() {
  return mysql.createConnection({ uri: targetUrls().mysql, connectTimeout: 10_000 })
}

/** A group role with SELECT on one table, made by the least-privilege admin itself. */
export async function pgGroupFixture() {
  const suffix = randomBytes(4).toString('hex')
  const group = `stint_ro_${suffix}`
  const table = `items_${suffix}`
  const sql = pgAdmin()
  await sql`CREATE ROLE ${sql(group)} NOLOGIN`
  await sql`CREATE TABLE ${sql(table)} (id int primary key, label text)`
  await sql`INSERT INTO ${sql(table)} VALUES (1, 'one')`
  await sql`GRANT SELECT ON ${sql(table)} TO ${sql(group)}`
  return {
    group,
    table,
    sql,
    async drop() {
      await sql`DROP TABLE IF EXISTS ${sql(table)}`
      await sql`DROP ROLE IF EXISTS ${sql(group)}`
      await sql.end()
    },
  }
}

/** Logs in to PostgreSQL as an issued user (password checked by pg_hba, see pg-password-auth.ts). */
export function pgAs(username: string, password: string) {
  const url = pgTarget()
  return postgres({
    host: url.hostname,
    port: Number(url.port || 5432),
    database: url.pathname.slice(1),
    username,
    password,
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
  })
}

export async function mysqlAs(username: string, password: string, withDatabase = true) {
  const url = mysqlTarget()
  return mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    database: withDatabase ? url.pathname.slice(1) : undefined,
    user: username,
    password,
    connectTimeout: 10_000,
  })
}

/** Mounts `database/` and a PostgreSQL connection `pg` with a `ro` role in a group. */
export async function mountDatabase(server: TestServer, path = 'database') {
  const res = await server.call('POST', `sys/mounts/${path}`, { body: { type: 'database' } })
  if (res.status !== 204) throw new Error(`mount failed: ${res.status} ${JSON.stringify(res.body)}`)
}

export const pgGroupCreation = (group: string) => [
  `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${group}";`,
]

export function must(res: { status: number; body: unknown }, status = 200) {
  if (res.status !== status) {
    throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`)
  }

  return res.body as Record<string, any>
}
