import { readFileSync, renameSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { toLogFile, verifyAuditLog } from '../../src/audit/verify.js'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

describe('audit file rotation', () => {
  it('reopens the file on SIGHUP: new entries go to a new file that links to the old one', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    await server.call('POST', 'secret/data/one', { body: { data: { v: '1' } } })
    const rotated = `${audit.filePath}.1`
    renameSync(audit.filePath, rotated)
    process.emit('SIGHUP')
    await server.call('POST', 'secret/data/two', { body: { data: { v: '2' } } })

    const oldFile = toLogFile('audit.log.1', readFileSync(rotated, 'utf8'))
    const newFile = toLogFile('audit.log', readFileSync(audit.filePath, 'utf8'))
    expect(readFileSync(rotated, 'utf8')).toContain('secret/data/one')
    expect(readFileSync(rotated, 'utf8')).not.toContain('secret/data/two')
    expect(audit.entries().map((e) => e.request.path)).toEqual([
      'secret/data/two',
      'secret/data/two',
    ])
    expect(JSON.parse(oldFile.lines.at(-2)!)).toMatchObject({ type: 'checkpoint', reason: 'close' })

    expect(verifyAuditLog([oldFile], audit.publicKey)).toMatchObject({ ok: true, warnings: [] })
    expect(verifyAuditLog([newFile], audit.publicKey).ok).toBe(true)
    expect(verifyAuditLog([oldFile, newFile], audit.publicKey).ok).toBe(true)
    expect(verifyAuditLog([newFile, oldFile], audit.publicKey).ok).toBe(false)
  })

  it('continues the chain when the server restarts on the same file', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    await server.call('GET', 'sys/mounts')
    await server.services.seal.seal()
    await server.call('PUT', 'sys/unseal', { token: null, body: { key: server.unsealKeys[0] } })
    await server.call('GET', 'sys/mounts')
    const lines = audit.lines()
    const reasons = lines.filter((l) => l.type === 'checkpoint').map((l) => l.reason)
    expect(reasons).toEqual(['open', 'close', 'open'])
    const file = toLogFile('audit.log', readFileSync(audit.filePath, 'utf8'))
    expect(verifyAuditLog([file], audit.publicKey).problem).toBeUndefined()
  })

  it('writes an interval checkpoint every checkpoint_interval entries', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server, { extra: { checkpoint_interval: '4' } })
    for (let i = 0; i < 4; i++) await server.call('GET', 'sys/mounts')
    const intervals = audit.lines().filter((l) => l.reason === 'interval')
    expect(intervals.length).toBeGreaterThanOrEqual(2)
    expect(intervals[0]!.sig).toBeTruthy()
  })
})
