import { afterEach, describe, expect, it } from 'vitest'
import { eachDialect, freshStorage } from '../support/databases.js'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer | undefined
let drop: (() => Promise<void>) | undefined
afterEach(async () => {
  await server?.close()
  await drop?.()
  server = undefined
  drop = undefined
})

describe.each(eachDialect)('audit devices and metrics on %s storage', (dialect) => {
  it('persist a device, reload it after unseal and serve storage-backed gauges', async () => {
    const fresh = await freshStorage(dialect)
    drop = fresh.drop
    const storage = fresh.storage
    server = await startTestServer({ storage })
    const audit = await enableFileAudit(server)
    await server.services.seal.seal()
    await server.call('PUT', 'sys/unseal', { token: null, body: { key: server.unsealKeys[0] } })
    await server.call('POST', 'secret/data/d', { body: { data: { v: 'dialect-secret' } } })
    expect(audit.entries().some((e) => e.request.path === 'secret/data/d')).toBe(true)
    const row = await server.storage.db
      .selectFrom('audit_devices')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(row.chain_seq).toBeGreaterThan(0)
    const metrics = await server.call('GET', 'sys/metrics?format=prometheus')
    expect(metrics.body).toMatch(/^stint_tokens [1-9]/m)
    expect(metrics.body).toMatch(/^stint_sealed 0$/m)
  })
})
