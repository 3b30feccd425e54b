import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'
import { openStorage, type Storage } from '../../src/storage/storage.js'

describe('SQLite WAL checkpoints', () => {
  const dirs: string[] = []
  const opened: Storage[] = []
  const open = (file: string) => {
    const storage = openStorage(`sqlite:${file}`)
    opened.push(storage)
    return storage
  }
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => {})
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const tempFile = () => {
    const dir = mkdtempSync(join(tmpdir(), 'stint-ckpt-'))
    dirs.push(dir)
    return join(dir, 'stint.db')
  }
  const writeRows = async (storage: Storage, from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      // One commit per row, as requests do.
      await sql`insert into probe (id, body) values (${i}, ${'x'.repeat(500)})`.execute(storage.db)
    }
  }

  it('moves checkpoints off the committing connection and still folds the WAL back', async () => {
    const file = tempFile()
    const storage = open(file)
    // The request path only checkpoints as a far-off backstop.
    const pragma = await sql<{
      wal_autocheckpoint: number
    }>`pragma wal_autocheckpoint`.execute(storage.db)
    expect(pragma.rows[0]!.wal_autocheckpoint).toBe(10_000)

    await sql`create table probe (id integer primary key, body text not null)`.execute(storage.db)
    await writeRows(storage, 0, 300)
    const first = await storage.checkpoint!()
    expect(first.busy).toBe(false)
    expect(first.log).toBeGreaterThan(100)
    expect(first.checkpointed).toBe(first.log)

    // Fully copied back: the next commit restarts the WAL from its beginning.
    await writeRows(storage, 300, 1)
    const second = await storage.checkpoint!()
    expect(second.log).toBeLessThan(first.log)
    expect(second.checkpointed).toBe(second.log)

    await storage.close()
    expect(existsSync(`${file}-wal`)).toBe(false)
    const reopened = open(file)
    const count = await sql<{ n: number }>`select count(*) as n from probe`.execute(reopened.db)
    expect(count.rows[0]!.n).toBe(301)
  })

  it('refuses a checkpoint once closed, and in-memory storage has none', async () => {
    const storage = open(tempFile())
    await storage.close()
    await expect(storage.checkpoint!()).rejects.toThrow('storage is closed')
    expect(open(':memory:').checkpoint).toBeUndefined()
  })
})
