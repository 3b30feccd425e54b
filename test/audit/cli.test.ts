import { readFileSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { cli } from '../cli/harness.js'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

describe('stint audit', () => {
  it('verify passes an intact log and points at the edited line of a tampered one', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    for (let i = 0; i < 3; i++)
      await server.call('POST', `secret/data/c${i}`, { body: { data: { v: 'x' } } })
    await server.call('DELETE', 'sys/audit/file')
    const key = `-key=${audit.publicKey}`

    const ok = await cli(['audit', 'verify', key, audit.filePath])
    expect(ok.code).toBe(0)
    expect(ok.stdout).toContain('intact')

    const lines = readFileSync(audit.filePath, 'utf8').split('\n')
    const target = lines.findIndex((l) => l.includes('secret/data/c1'))
    lines[target] = lines[target]!.replace('"operation":"create"', '"operation":"delete"')
    writeFileSync(audit.filePath, lines.join('\n'))
    const bad = await cli(['audit', 'verify', key, '-format=json', audit.filePath])
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.stdout).problem).toMatchObject({ line: target + 1 })
  })

  it('verify without -key warns that it trusted the key in the log', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const res = await cli(['audit', 'verify', audit.filePath])
    expect(res.code).toBe(0)
    expect(res.stderr).toContain('no -key given')
  })

  it('enables, lists and disables devices over HTTP', async () => {
    server = await startTestServer()
    const running = await server.listen()
    const env = { STINT_TOKEN: server.rootToken }
    const opts = { address: running.address, env }
    const enabled = await cli(['audit', 'enable', '-path=null', 'file', 'file_path=discard'], opts)
    expect(enabled.code).toBe(0)
    const listed = await cli(['audit', 'list', '-format=json'], opts)
    expect(JSON.parse(listed.stdout)['null/']).toMatchObject({
      type: 'file',
      options: { file_path: 'discard' },
    })
    expect((await cli(['audit', 'disable', 'null'], opts)).code).toBe(0)
    expect((await server.call('GET', 'sys/audit')).body.data).toEqual({})
  })
})
