import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { enableFileAudit, type FileAudit } from '../support/audit.js'

describe('refused requests', () => {
  let server: TestServer
  let audit: FileAudit

  beforeAll(async () => {
    server = await startTestServer()
    audit = await enableFileAudit(server)
  })
  afterAll(async () => {
    await server.close()
  })

  it('are audited with their error: a bad token, an ACL denial and an unknown path', async () => {
    const child = await server.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
    })
    const limited = child.body.auth.client_token
    expect(
      (await server.call('GET', 'secret/data/x', { token: 'sts.not-a-real-token-at-all' })).status,
    ).toBe(403)
    expect((await server.call('GET', 'sys/mounts', { token: limited })).status).toBe(403)
    expect((await server.call('GET', 'nowhere/at/all')).status).toBe(404)

    const responses = audit.entries().filter((e) => e.type === 'response' && e.error)
    const byPath = (path: string) => responses.filter((e) => e.request?.path === path)
    expect(byPath('secret/data/x')[0]?.error).toContain('permission denied')
    expect(byPath('sys/mounts')[0]?.error).toContain('permission denied')
    expect(byPath('nowhere/at/all')).toHaveLength(1)
    // The bad token is never written in clear.
    expect(JSON.stringify(audit.lines())).not.toContain('sts.not-a-real-token-at-all')
  })
})
