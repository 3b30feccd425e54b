import type { KyselyPlugin, RootOperationNode } from 'kysely'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import type { LeaseRow } from '../../src/core/leases/rows.js'
import { defaultLeaseSettings } from '../../src/core/leases/settings.js'
import { ExpiryWorker } from '../../src/core/leases/worker.js'
import type { Storage } from '../../src/storage/storage.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

/** The kinds of the statements a Kysely instance sends, in order. */
function recording(storage: Storage): { storage: Storage; kinds: string[] } {
  const kinds: string[] = []
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => {
      kinds.push((node as RootOperationNode).kind)
      return node
    },
    transformResult: async ({ result }) => result,
  }
  return { storage: { ...storage, db: storage.db.withPlugin(plugin) }, kinds }
}

function dueRow(id: string, now: number): LeaseRow {
  return {
    id,
    mount_accessor: 'acc',
    mount_path: 'claim/',
    path: 'claim/creds/x',
    token_id: 'token',
    state: 'active',
    ttl: 60,
    issue_time: now - 60_000,
    expire_time: now - 1,
    max_expire_time: now + 60_000,
    own_max_expire_time: null,
    last_renewal: null,
    renewable: 1,
    internal: `sealed-${id}`,
    target_key: 'test/x',
    attempts: 0,
    next_attempt_at: now - 1,
    last_error: null,
    claimed_by: null,
    claim_until: null,
  }
}

describe.each(eachDialect)('expiry worker claim on %s', (dialect) => {
  let fresh: FreshStorage

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
  })
  afterAll(async () => {
    await fresh?.drop()
  })
  beforeEach(async () => {
    await fresh.storage.db.deleteFrom('leases').execute()
  })

  it('hands settle the whole rows it won, read back by the claim itself where storage has RETURNING', async () => {
    const now = Date.now()
    const rows = ['claim/creds/x/a', 'claim/creds/x/b', 'claim/creds/x/c'].map((id) =>
      dueRow(id, now),
    )
    await fresh.storage.db.insertInto('leases').values(rows).execute()
    const { storage, kinds } = recording(fresh.storage)
    const settled: LeaseRow[] = []
    const worker = new ExpiryWorker({
      storage,
      settings: { ...defaultLeaseSettings(), nodeId: 'n1' },
      logger: silentLogger,
      now: () => now,
      settle: async (batch) => void settled.push(...batch),
      settled: async () => {},
    })

    expect(await worker.runOnce()).toBe(3)

    expect(settled.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id))
    for (const row of settled) {
      expect(row.claimed_by).toBe('n1:1')
      expect(Number(row.claim_until)).toBe(now + 60_000)
      expect(row.internal).toBe(`sealed-${row.id}`)
      expect(Number(row.next_attempt_at)).toBe(now - 1)
    }
    // Nothing is read after the claim where the claim returns its rows.
    const afterClaim = kinds.slice(kinds.indexOf('UpdateQueryNode') + 1)
    expect(kinds.filter((k) => k === 'UpdateQueryNode')).toHaveLength(1)
    expect(afterClaim).toEqual(fresh.storage.capabilities.returning ? [] : ['SelectQueryNode'])
  })
})
