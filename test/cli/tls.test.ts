import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { listen, type RunningServer } from '../../src/http/server.js'
import { startTestServer, type TestServer } from '../support/server.js'
import { selfSignedCert } from '../support/tls.js'
import { cli } from './harness.js'

describe('the CLI over TLS', () => {
  const { cert, key, certFile } = selfSignedCert()
  let server: TestServer
  let running: RunningServer

  beforeAll(async () => {
    server = await startTestServer()
    running = await listen(server.api, {
      host: '127.0.0.1',
      port: 0,
      tls: { cert, key },
    })
  })
  afterAll(async () => {
    await running.close()
    await server.close()
  })

  test('an unknown certificate authority is refused', async () => {
    const res = await cli(['status'], { address: running.address })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('error contacting')
  })

  test('-ca-cert trusts the given certificate', async () => {
    const res = await cli(['status', `-ca-cert=${certFile}`], { address: running.address })
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(/Sealed\s+false/)
  })

  test('-tls-skip-verify skips verification, and authenticated calls work over it', async () => {
    const res = await cli(['kv', 'list', '-tls-skip-verify', 'secret/'], {
      address: running.address,
      env: { STINT_TOKEN: server.rootToken },
    })
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('No value found at secret/metadata/')
  })
})
