import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { Kysely, sql } from 'kysely'
import { sqliteStorageDialect } from '../../src/storage/sqlite-driver.js'

/**
 * The contract of SQLite storage's driver: one connection, handed over first come, first served,
 * one waiter per release, transactions kept whole. (Why it replaced Kysely's driver, whose
 * releases woke every waiter, is a matter of CPU: see src/storage/sqlite-driver.ts and the
 * kv-read benchmark, not a timed test.)
 */
describe('the SQLite storage driver', () => {
  it('hands the connection to exactly one waiter per release, in arrival order', async () => {
    const driver = sqliteStorageDialect(new Database(':memory:')).createDriver()
    await driver.init()
    const first = await driver.acquireConnection()
    const order: number[] = []
    const waiters = Array.from({ length: 1000 }, (_, i) =>
      driver.acquireConnection().then((c) => {
        order.push(i)
        return c
      }),
    )
    const flush = () => new Promise((r) => setImmediate(r))
    await flush()
    expect(order).toEqual([])
    for (let i = 0; i < 1000; i++) {
      await driver.releaseConnection(first)
      await flush()
      // One release, one handover: nobody else woke up and took it.
      expect(order.length).toBe(i + 1)
    }
    expect(order).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    expect((await Promise.all(waiters)).every((c) => c === first)).toBe(true)
    await driver.releaseConnection(first)
    await driver.destroy()
  })

  it('keeps transactions whole while other queries wait, and serves a burst of 5,000 reads', async () => {
    const db = new Kysely<{ t: { n: number } }>({
      dialect: sqliteStorageDialect(new Database(':memory:')),
    })
    await sql`create table t (n integer)`.execute(db)
    const tx = db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ n: 1 }).execute()
      await new Promise((r) => setTimeout(r, 20))
      await trx.insertInto('t').values({ n: 2 }).execute()
    })
    // Queued behind the transaction: it sees both rows or none, never one.
    const counts = await Promise.all(
      Array.from({ length: 5000 }, () =>
        db
          .selectFrom('t')
          .select(db.fn.countAll<number>().as('c'))
          .executeTakeFirstOrThrow()
          .then((r) => Number(r.c)),
      ),
    )
    await tx
    expect(counts.every((c) => c === 2)).toBe(true)
    await db.destroy()
  })
})
