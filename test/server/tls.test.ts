import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { listen, type RunningServer } from '../../src/http/server.js'
import { selfSignedCert } from '../support/tls.js'
import { freePort, startCli } from './cli-process.js'

/** A parsed JSON response body. */

type Json = any

const dir = mkdtempSync(join(tmpdir(), 'stint-tls-'))
let certFile = ''
let keyFile = ''

beforeAll(() => {
  ;({ certFile, keyFile } = selfSignedCert())
})

function send(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; agent?: https.Agent } = {},
): Promise<{ status: number; body: Json; reused: boolean }> {
  const ca = readFileSync(certFile)
  const text = options.body === undefined ? undefined : JSON.stringify(options.body)
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${base}/v1/${path}`,
      {
        method,
        ca,
        agent: options.agent ?? false,
        headers: {
          ...(options.token && { 'X-Vault-Token': options.token }),
          ...(text && {
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(text),
          }),
        },
      },
      (res) => {
        let data = ''
        res.on('data', (c: Buffer) => (data += c.toString('utf8')))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: data ? JSON.parse(data) : null,
            reused: req.reusedSocket,
          }),
        )
      },
    )
    req.on('error', reject)
    req.end(text)
  })
}

describe('an HTTPS listener', () => {
  let server: TestServer
  let running: RunningServer
  beforeAll(async () => {
    server = await startTestServer()
    await server.call('POST', 'secret/data/tls/a', { body: { data: { v: 'a' } } })
    await server.call('POST', 'secret/data/tls/b', { body: { data: { v: 'b' } } })
    running = await listen(server.api, {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) },
    })
  })
  afterAll(async () => {
    await running?.close()
    await server?.close()
  })

  it('answers GET and LIST over TLS, LIST also after a GET on the same connection', async () => {
    expect(running.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(certFile) })
    try {
      const health = await send(running.address, 'GET', 'sys/health', { agent })
      expect(health.status).toBe(200)
      const list = await send(running.address, 'LIST', 'secret/metadata/tls', {
        token: server.rootToken,
        agent,
      })
      expect(list.status).toBe(200)
      expect(list.body.data.keys).toEqual(['a', 'b'])
      expect(list.reused).toBe(true)
      const get = await send(running.address, 'GET', 'secret/data/tls/b', {
        token: server.rootToken,
        agent,
      })
      expect(get.body.data.data).toEqual({ v: 'b' })
      expect(get.reused).toBe(true)
    } finally {
      agent.destroy()
    }
  })

  it('refuses plain HTTP on the TLS port', async () => {
    const port = new URL(running.address).port
    await expect(fetch(`http://127.0.0.1:${port}/v1/sys/health`)).rejects.toThrow()
  })
})

describe('stint server -config with TLS, SQLite storage and a static seal key', () => {
  it('starts, inits into an unsealed state, restarts unsealed, and exits 0 on SIGTERM', async () => {
    const port = await freePort()
    const keyPath = join(dir, 'unseal.key')
    writeFileSync(keyPath, randomBytes(32).toString('base64'))
    const config = join(dir, 'stint.hcl')
    writeFileSync(
      config,
      `listener "tcp" {
        address       = "127.0.0.1:${port}"
        tls_cert_file = "${certFile}"
        tls_key_file  = "${keyFile}"
      }
      storage "sqlite" { path = "${join(dir, 'data', 'stint.db')}" }
      seal "static" { key_file = "${keyPath}" }
      log_level = "info"`,
    )
    const base = `https://127.0.0.1:${port}`

    const first = await startCli(['server', `-config=${config}`], /stint server started/)
    try {
      expect((await send(base, 'GET', 'sys/health')).status).toBe(501)
      const init = await send(base, 'PUT', 'sys/init', {
        body: { secret_shares: 1, secret_threshold: 1 },
      })
      expect(init.status).toBe(200)
      const root = init.body.root_token as string
      expect((await send(base, 'GET', 'sys/health')).status).toBe(200)
      const mount = await send(base, 'POST', 'sys/mounts/kv', {
        token: root,
        body: { type: 'kv', options: { version: '2' } },
      })
      expect(mount.status).toBe(204)
      expect(
        (await send(base, 'POST', 'kv/data/x', { token: root, body: { data: { a: '1' } } })).status,
      ).toBe(200)
      first.child.kill('SIGTERM')
      expect(await first.exited).toBe(0)
      expect(first.output()).not.toContain(root)

      const second = await startCli(['server', `-config=${config}`], /stint server started/)
      try {
        expect(second.output()).toMatch(/"sealed":false/)
        expect((await send(base, 'GET', 'sys/health')).status).toBe(200)
        const list = await send(base, 'LIST', 'kv/metadata', { token: root })
        expect(list.body.data.keys).toEqual(['x'])
        second.child.kill('SIGTERM')
        expect(await second.exited).toBe(0)
      } finally {
        if (second.child.exitCode === null) second.child.kill('SIGKILL')
      }
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL')
    }
  }, 120_000)
})
