import { existsSync } from 'node:fs'
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { migrations } from '../../schema/index.js'
import { openStorage } from '../../src/storage/storage.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'

// The columns these tests touch, typed here so they do not depend on who augments `Tables`.
interface ProbeTables {
  stint_meta: { key: string; value: string }
  stint_migrations: { name: string }
  policies: { name: string; body: string; created_at: number; updated_at: number }
}

describe.each(eachDialect)('%s storage', (dialect) => {
  let fresh: FreshStorage
  let db: Kysely<ProbeTables>

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    db = fresh.storage.db as unknown as Kysely<ProbeTables>
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('applies every migration to a fresh database', async () => {
    const tables = (await db.introspection.getTables()).map((t) => t.name)
    expect(tables).toContain('stint_meta')
    const applied = await db.selectFrom('stint_migrations').select('name').execute()
    expect(applied.map((m) => m.name)).toEqual(migrations.map((m) => m.name))
  })

  it('stores and reads back a stint_meta row', async () => {
    await db.insertInto('stint_meta').values({ key: 'probe', value: '{"a":1}' }).execute()
    const row = await db.selectFrom('stint_meta').selectAll().where('key', '=', 'probe').execute()
    expect(row).toEqual([{ key: 'probe', value: '{"a":1}' }])
  })

  it('reads BIGINT epoch milliseconds back as the same JS number', async () => {
    const createdAt = 1767225600123
    const updatedAt = Number.MAX_SAFE_INTEGER
    await db
      .insertInto('policies')
      .values({ name: 'bigint-probe', body: '', created_at: createdAt, updated_at: updatedAt })
      .execute()
    const row = await db
      .selectFrom('policies')
      .select(['created_at', 'updated_at'])
      .where('name', '=', 'bigint-probe')
      .executeTakeFirstOrThrow()
    expect(row).toEqual({ created_at: createdAt, updated_at: updatedAt })
    expect(typeof row.created_at).toBe('number')
  })

  it('gives every call its own empty database', async () => {
    const other = await freshStorage(dialect)
    try {
      await db.insertInto('stint_meta').values({ key: 'only-here', value: 'x' }).execute()
      const otherDb = other.storage.db as unknown as Kysely<ProbeTables>
      expect(await otherDb.selectFrom('stint_meta').selectAll().execute()).toEqual([])
    } finally {
      await other.drop()
    }
  })

  it('deletes the database on drop', async () => {
    const other = await freshStorage(dialect)
    await other.drop()
    if (dialect === 'sqlite') {
      expect(existsSync(other.storage.file ?? '')).toBe(false)
      return
    }
    const reopened = openStorage(other.url)
    try {
      await expect(sql`SELECT 1`.execute(reopened.db)).rejects.toThrow(/stint_t_/)
    } finally {
      await reopened.close()
    }
  })
})

describe('PostgreSQL password checking', () => {
  it('refuses a wrong password for a generated role and accepts the right one', async () => {
    await assertPgPasswordChecking()
  })
})
