import type { KyselyPlugin, QueryId } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { composeServer } from '../../src/server/compose.js'
import { openStorage } from '../../src/storage/storage.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'
import { startTestServer, request } from '../support/server.js'
import { STATIC_KEY } from './leases-fixture.js'

const STORED = 20_000

/** Counts queries that name the `leases` table and the rows they return. */
function leaseProbe() {
  const touched = new WeakSet<QueryId>()
  const seen = { queries: 0, rows: 0 }
  const plugin: KyselyPlugin = {
    transformQuery({ node, queryId }) {
      const text = JSON.stringify(node, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))
      if (text.includes('"leases"')) {
        touched.add(queryId)
        seen.queries++
      }
      return node
    },
    async transformResult({ result, queryId }) {
      if (touched.has(queryId)) seen.rows += result.rows.length
      return result
    },
  }
  return { plugin, seen }
}

describe.each(eachDialect)('startup with stored leases on %s', (dialect) => {
  let fresh: FreshStorage

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    const server = await startTestServer({
      storage: fresh.url,
      staticUnsealKey: STATIC_KEY,
      devMounts: false,
    })
    const now = Date.now()
    const rows = Array.from({ length: STORED }, (_, i) => ({
      id: `db/creds/ro/${String(i).padStart(24, '0')}`,
      mount_accessor: 'db_1',
      mount_path: 'db/',
      path: 'db/creds/ro',
      token_id: 'tok',
      state: 'active' as const,
      ttl: 3600,
      issue_time: now,
      expire_time: now + 3600_000,
      max_expire_time: now + 3600_000,
      last_renewal: null,
      renewable: 1,
      internal: 'x',
      target_key: 'db/:pg',
      attempts: 0,
      next_attempt_at: now + 3600_000,
      last_error: null,
      claimed_by: null,
      claim_until: null,
    }))
    for (let i = 0; i < rows.length; i += 1000) {
      await server.storage.db
        .insertInto('leases')
        .values(rows.slice(i, i + 1000))
        .execute()
    }
    await server.close()
  }, 120_000)
  afterAll(async () => {
    await fresh?.drop()
  })

  it('serves without reading any of the stored leases', async () => {
    const storage = openStorage(fresh.url)
    const probe = leaseProbe()
    const stint = await composeServer({
      storage: { ...storage, db: storage.db.withPlugin(probe.plugin) },
      staticUnsealKey: STATIC_KEY,
    })
    try {
      const res = await request(stint.api, '/v1/sys/health')
      expect(res.status).toBe(200)
      // Let the expiry worker run a few polls: none is due, so none reads a lease row.
      await new Promise((r) => setTimeout(r, 600))
      expect(probe.seen.rows).toBe(0)
      // A few bounded polls, not a scan per stored lease.
      expect(probe.seen.queries).toBeGreaterThan(0)
      expect(probe.seen.queries).toBeLessThan(50)
      expect(await stint.leases!.count()).toBe(STORED)
    } finally {
      await stint.shutdown()
    }
  })
})
