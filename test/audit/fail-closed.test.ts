import { afterEach, describe, expect, it } from 'vitest'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

describe('fail closed', () => {
  it('refuses a KV write with 500 when no device can record it, and the write does not happen', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    await audit.breakDevice()
    const res = await server.call('POST', 'secret/data/blocked', {
      body: { data: { password: 'never-stored' } },
    })
    expect(res.status).toBe(500)
    expect(res.body.errors).toEqual(['failed to audit request'])
    audit.fixDevice()
    expect((await server.call('GET', 'secret/data/blocked')).status).toBe(404)
  })

  it('refuses a token create with 500 and creates no token', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const before = (await server.call('LIST', 'auth/token/accessors')).body.data.keys.length
    await audit.breakDevice()
    const res = await server.call('POST', 'auth/token/create', { body: { policies: ['default'] } })
    expect(res.status).toBe(500)
    expect(res.body.auth).toBeUndefined()
    audit.fixDevice()
    const after = (await server.call('LIST', 'auth/token/accessors')).body.data.keys.length
    expect(after).toBe(before)
  })

  it('resumes once the device is fixed, and the new file starts with an open checkpoint', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    await audit.breakDevice()
    expect((await server.call('GET', 'sys/mounts')).status).toBe(500)
    audit.fixDevice()
    expect((await server.call('GET', 'sys/mounts')).status).toBe(200)
    expect(audit.lines()[0]).toMatchObject({ type: 'checkpoint', reason: 'open' })
    expect(audit.entries().map((e) => e.request.path)).toContain('sys/mounts')
  })

  it('lets the request through when one of two devices fails, and the healthy one records it', async () => {
    server = await startTestServer()
    const broken = await enableFileAudit(server, { path: 'broken' })
    const healthy = await enableFileAudit(server, { path: 'healthy' })
    await broken.breakDevice()
    const res = await server.call('POST', 'secret/data/ok', { body: { data: { v: '1' } } })
    expect(res.status).toBe(200)
    expect(healthy.entries().filter((e) => e.request.path === 'secret/data/ok')).toHaveLength(2)
    const metrics = await server.call('GET', 'sys/metrics?format=prometheus')
    expect(metrics.body).toMatch(/stint_audit_failures_total\{device="broken\/"\} [1-9]/)
  })

  it('requires nothing when no device is enabled', async () => {
    server = await startTestServer()
    expect(
      (await server.call('POST', 'secret/data/free', { body: { data: { v: '1' } } })).status,
    ).toBe(200)
  })
})
