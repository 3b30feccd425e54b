import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

/**
 * Each capability flag of `openStorage`'s result against what the real database does: a flag
 * that says yes must work, a flag that says no must be a real no (so code reading it never takes
 * a path the database refuses, nor skips one it has).
 */
describe.each(eachDialect)('%s storage capabilities', (dialect) => {
  let fresh: FreshStorage
  let db: Kysely<unknown>

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    db = fresh.storage.db as unknown as Kysely<unknown>
    await sql`create table cap_probe (id varchar(32) primary key, n integer not null)`.execute(db)
    await sql`insert into cap_probe (id, n) values ('a', 1), ('b', 1)`.execute(db)
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('has UPDATE ... RETURNING exactly where `returning` says so', async () => {
    const update = sql<{ id: string; n: number }>`
      update cap_probe set n = n + 1 where id = 'a' returning id, n`.execute(db)
    if (fresh.storage.capabilities.returning) {
      expect((await update).rows).toEqual([{ id: 'a', n: 2 }])
      const inserted = await sql<{ id: string }>`
        insert into cap_probe (id, n) values ('c', 1) returning id`.execute(db)
      expect(inserted.rows).toEqual([{ id: 'c' }])
      const deleted = await sql<{ id: string }>`
        delete from cap_probe where id = 'c' returning id`.execute(db)
      expect(deleted.rows).toEqual([{ id: 'c' }])
    } else {
      await expect(update).rejects.toThrow(/syntax/i)
    }
  })

  it('skips rows another transaction locked exactly where `skipLocked` says so', async () => {
    if (!fresh.storage.capabilities.skipLocked) {
      // SQLite has no row locks, and no FOR UPDATE to ask for them.
      await expect(
        sql`select id from cap_probe for update skip locked`.execute(db),
      ).rejects.toThrow(/syntax/i)
      return
    }
    const other = await db.transaction().execute(async (holder) => {
      await sql`select id from cap_probe where id = 'a' for update`.execute(holder)
      // A second connection, while the first holds the lock on 'a'.
      return db.transaction().execute(async (trx) => {
        const { rows } = await sql<{ id: string }>`
          select id from cap_probe order by id for update skip locked`.execute(trx)
        return rows.map((r) => r.id)
      })
    })
    expect(other).toEqual(['b'])
  })

  it('rolls DDL back with its transaction exactly where `transactionalDdl` says so', async () => {
    const table = `cap_ddl_${Math.random().toString(36).slice(2, 8)}`
    await db
      .transaction()
      .execute(async (trx) => {
        await sql`create table ${sql.table(table)} (id integer primary key)`.execute(trx)
        throw new Error('roll back')
      })
      .catch((err: Error) => expect(err.message).toBe('roll back'))
    const read = sql`select count(*) as n from ${sql.table(table)}`.execute(db)
    if (fresh.storage.capabilities.transactionalDdl) {
      await expect(read).rejects.toThrow(/exist|no such table/i)
    } else {
      await expect(read).resolves.toBeDefined()
    }
  })
})

describe('mysql storage and RETURNING', () => {
  let fresh: FreshStorage
  beforeAll(async () => {
    fresh = await freshStorage('mysql')
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('says no to RETURNING on MySQL/MariaDB even where MariaDB returns rows from DELETE', async () => {
    const db = fresh.storage.db as unknown as Kysely<unknown>
    expect(fresh.storage.capabilities.returning).toBe(false)
    await sql`create table cap_ret (id varchar(32) primary key)`.execute(db)
    const { rows } = await sql<{ v: string }>`select version() as v`.execute(db)
    // The test server is MariaDB (10.5+ has DELETE/INSERT ... RETURNING; only UPDATE lacks it).
    expect(rows[0]!.v).toContain('MariaDB')
    await sql`insert into cap_ret (id) values ('d')`.execute(db)
    const deleted = await sql<{
      id: string
    }>`delete from cap_ret where id = 'd' returning id`.execute(db)
    expect(deleted.rows).toEqual([{ id: 'd' }])
    await expect(
      sql`update cap_ret set id = 'e' where id = 'd' returning id`.execute(db),
    ).rejects.toThrow(/syntax/i)
  })
})
