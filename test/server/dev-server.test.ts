import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startCli } from './cli-process.js'

/** A parsed JSON response body. */

type Json = any

const ROOT = 'test-root'

function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request(
      `${base}/v1/${path}`,
      {
        method,
        agent: false,
        headers: {
          'X-Vault-Token': ROOT,
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
          resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : null }),
        )
      },
    )
    req.on('error', reject)
    req.end(text)
  })
}

describe('stint server -dev', () => {
  let port: number
  let base: string
  let server: Awaited<ReturnType<typeof startCli>>

  beforeAll(async () => {
    port = await freePort()
    base = `http://127.0.0.1:${port}`
    server = await startCli(
      ['server', '-dev', `-dev-listen-address=127.0.0.1:${port}`, `-dev-root-token-id=${ROOT}`],
      /Root Token: .+\n/,
    )
  }, 60_000)
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGKILL')
      await server.exited
    }
  })

  it('prints the address, the unseal key and the root token', () => {
    const out = server.output()
    expect(out).toContain(`Address:      ${base}`)
    expect(out).toMatch(/Unseal Key: [A-Za-z0-9+/]{43}=/)
    expect(out).toContain(`Root Token: ${ROOT}`)
  })

  it('serves sys/health and a KV v2 secret at secret/ with the root token', async () => {
    const health = await request(base, 'GET', 'sys/health')
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ initialized: true, sealed: false })
    const put = await request(base, 'POST', 'secret/data/dev/app', { data: { password: 'pw1' } })
    expect(put.status).toBe(200)
    expect(put.body.data.version).toBe(1)
    const get = await request(base, 'GET', 'secret/data/dev/app')
    expect(get.status).toBe(200)
    expect(get.body.data.data).toEqual({ password: 'pw1' })
    const mounts = await request(base, 'GET', 'sys/mounts')
    expect(mounts.body.data['secret/'].options.version).toBe('2')
  })

  it('finishes an in-flight request on SIGTERM, then exits 0', async () => {
    const payload = JSON.stringify({ data: { blob: 'x'.repeat(200_000) } })
    const chunks = [payload.slice(0, 1000), payload.slice(1000, 100_000), payload.slice(100_000)]
    const slow = new Promise<{ status: number; body: Json }>((resolve, reject) => {
      const req = http.request(
        `${base}/v1/secret/data/dev/slow`,
        {
          method: 'POST',
          agent: new http.Agent({ keepAlive: true }),
          headers: {
            'X-Vault-Token': ROOT,
            'Content-Type': 'application/json',
            'Content-Length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          let data = ''
          res.on('data', (c: Buffer) => (data += c.toString('utf8')))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }))
        },
      )
      req.on('error', reject)
      req.write(chunks[0])
      // Signal while the body is still arriving, then finish it.
      setTimeout(() => {
        server.child.kill('SIGTERM')
        setTimeout(() => req.write(chunks[1]), 200)
        setTimeout(() => req.end(chunks[2]), 400)
      }, 300)
    })
    const res = await slow
    expect(res.status).toBe(200)
    expect(res.body.data.version).toBe(1)
    const started = Date.now()
    expect(await server.exited).toBe(0)
    // It did not wait for the keep-alive timeout of the drained connection.
    expect(Date.now() - started).toBeLessThan(10_000)
    // New connections are refused once it has stopped.
    await expect(request(base, 'GET', 'sys/health')).rejects.toThrow()
  }, 30_000)
})
