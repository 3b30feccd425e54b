import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import mysql from 'mysql2/promise'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'
import { startTestServer, type TestServer } from '../support/server.js'

/** Every value of every row of every table in the database, as one string per cell. */
async function dumpServerDatabase(dialect: 'postgres' | 'mysql', url: string): Promise<string[]> {
  const cells: string[] = []
  const push = (value: unknown) => {
    if (value === null || value === undefined) return
    cells.push(Buffer.isBuffer(value) ? value.toString('latin1') : String(value))
  }
  if (dialect === 'postgres') {
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    try {
      const tables = await sql<{ table_name: string }[]>`
        SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`
      expect(tables.length).toBeGreaterThan(3)
      for (const { table_name } of tables) {
        const rows = await sql`SELECT * FROM ${sql(table_name)}`
        for (const row of rows) for (const v of Object.values(row)) push(v)
      }
    } finally {
      await sql.end()
    }
    return cells
  }
  const conn = await mysql.createConnection({ uri: url })
  try {
    const [tables] = await conn.query(
      `SELECT table_name AS name FROM information_schema.tables
       WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'`,
    )
    const names = (tables as Array<{ name: string }>).map((t) => t.name)
    expect(names.length).toBeGreaterThan(3)
    for (const name of names) {
      const [rows] = await conn.query(`SELECT * FROM ${conn.escapeId(name)}`)
      for (const row of rows as Array<Record<string, unknown>>) {
        for (const v of Object.values(row)) push(v)
      }
    }
  } finally {
    await conn.end()
  }
  return cells
}

/** The SQLite database file and its write-ahead log, as bytes. */
function sqliteBytes(file: string): Buffer {
  const parts = [file, `${file}-wal`, `${file}-shm`].filter((f) => existsSync(f))
  return Buffer.concat(parts.map((f) => readFileSync(f)))
}

describe.each(eachDialect)('raw %s storage', (dialect) => {
  it('holds no plaintext secret and no raw token', { timeout: 60_000 }, async () => {
    let fresh: FreshStorage | undefined
    let server: TestServer | undefined
    try {
      fresh = await freshStorage(dialect)
      server = await startTestServer({ storage: fresh.storage })

      const marker = `plaintext-${randomBytes(12).toString('hex')}`
      const kvValue = `kv-secret-${randomBytes(12).toString('hex')}`

      // A child token (its raw value must never be stored) and the root token.
      const created = await server.call('POST', 'auth/token/create', {
        body: { policies: ['default'], meta: { note: 'not-secret' } },
      })
      expect(created.status).toBe(200)
      const token = created.body.auth.client_token as string

      // A KV v2 secret, when the kv engine is registered (it is mounted at secret/).
      const kvMounted = server.services.mounts.get('secret/') !== undefined
      if (kvMounted) {
        const put = await server.call('POST', 'secret/data/app/db', {
          body: { data: { password: kvValue } },
        })
        expect(put.status).toBe(200)
        const back = await server.call('GET', 'secret/data/app/db')
        expect(back.body.data.data.password).toBe(kvValue)
      }

      // A value sealed through the barrier into a real table column.
      const sealed = server.services.seal.barrier.encrypt(
        'stint_meta',
        'value',
        'test_secret',
        marker,
      )
      await server.storage.db
        .insertInto('stint_meta')
        .values({ key: 'test_secret', value: sealed })
        .execute()
      const row = await server.storage.db
        .selectFrom('stint_meta')
        .select('value')
        .where('key', '=', 'test_secret')
        .executeTakeFirstOrThrow()
      expect(
        server.services.seal.barrier.decrypt('stint_meta', 'value', 'test_secret', row.value),
      ).toBe(marker)

      const needles = [marker, token, token.slice(4), server.rootToken]
      if (kvMounted) needles.push(kvValue)
      // The unseal key share must not be stored either.
      needles.push(
        server.unsealKeys[0]!,
        Buffer.from(server.unsealKeys[0]!, 'base64').toString('hex'),
      )

      if (dialect === 'sqlite') {
        const file = server.storage.file
        expect(file).toBeDefined()
        const bytes = sqliteBytes(file!)
        expect(bytes.length).toBeGreaterThan(4096)
        // The check can fail: data written through the storage is visible in these bytes.
        expect(bytes.includes('test_secret')).toBe(true)
        for (const needle of needles)
          expect(bytes.includes(needle), needle.slice(0, 12)).toBe(false)
      } else {
        const cells = await dumpServerDatabase(dialect, fresh.url)
        const all = cells.join('\n')
        expect(all).toContain('test_secret')
        for (const needle of needles) expect(all.includes(needle), needle.slice(0, 12)).toBe(false)
      }
    } finally {
      await server?.close().catch(() => {})
      await fresh?.drop()
    }
  })
})
