import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyAuditLog } from '../../src/audit/verify.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
const cleanups: Array<() => void> = []
afterEach(async () => {
  await server?.close()
  for (const c of cleanups.splice(0)) c()
})

describe('socket and http audit devices', () => {
  it('ships entries as JSON lines over TCP, and the received stream verifies', async () => {
    let received = ''
    const tcp = createTcpServer((s) => s.on('data', (d) => (received += d.toString())))
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r))
    cleanups.push(() => tcp.close())
    const { port } = tcp.address() as AddressInfo
    server = await startTestServer()
    const enabled = await server.call('PUT', 'sys/audit/siem', {
      body: { type: 'socket', options: { address: `127.0.0.1:${port}`, socket_type: 'tcp' } },
    })
    expect(enabled.status).toBe(204)
    await server.call('POST', 'secret/data/tcp', { body: { data: { password: 'tcp-secret' } } })
    await new Promise((r) => setTimeout(r, 50))
    expect(received).toContain('secret/data/tcp')
    expect(received).not.toContain('tcp-secret')
    const key = (await server.call('GET', 'sys/audit/siem/public-key')).body.data.public_key
    expect(verifyAuditLog([{ name: 'tcp', lines: received.split('\n') }], key).ok).toBe(true)
  })

  it('refuses to enable a socket device whose collector is unreachable', async () => {
    const tcp = createTcpServer()
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r))
    const { port } = tcp.address() as AddressInfo
    await new Promise((r) => tcp.close(r))
    server = await startTestServer()
    const res = await server.call('PUT', 'sys/audit/siem', {
      body: { type: 'socket', options: { address: `127.0.0.1:${port}` } },
    })
    expect(res.status).toBe(400)
  })

  it('POSTs entries to an http sink with its headers, and never shows the headers', async () => {
    const bodies: string[] = []
    const seen: IncomingHttpHeaders[] = []
    let status = 200
    const http = createHttpServer((req, res) => {
      let body = ''
      req.on('data', (d) => (body += d))
      req.on('end', () => {
        bodies.push(body)
        seen.push(req.headers)
        res.statusCode = status
        res.end()
      })
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanups.push(() => http.close())
    const { port } = http.address() as AddressInfo
    server = await startTestServer()
    const enabled = await server.call('PUT', 'sys/audit/http', {
      body: {
        type: 'http',
        options: {
          url: `http://127.0.0.1:${port}/ingest`,
          headers: { Authorization: 'Bearer siem-key-123' },
        },
      },
    })
    expect(enabled.status).toBe(204)
    await server.call('GET', 'sys/mounts')
    expect(bodies.some((b) => JSON.parse(b).request?.path === 'sys/mounts')).toBe(true)
    expect(seen.at(-1)!.authorization).toBe('Bearer siem-key-123')

    const listed = await server.call('GET', 'sys/audit')
    expect(JSON.stringify(listed.body)).not.toContain('siem-key-123')
    const row = await server.storage.db
      .selectFrom('audit_devices')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(JSON.stringify(row)).not.toContain('siem-key-123')

    status = 503
    expect((await server.call('GET', 'sys/mounts')).status).toBe(500)
  })

  it('refuses to enable an http sink that does not accept the first line', async () => {
    const http = createHttpServer((_req, res) => {
      res.statusCode = 503
      res.end()
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanups.push(() => http.close())
    const { port } = http.address() as AddressInfo
    server = await startTestServer()
    const res = await server.call('PUT', 'sys/audit/http', {
      body: { type: 'http', options: { url: `http://127.0.0.1:${port}/ingest` } },
    })
    expect(res.status).toBe(400)
    expect((await server.call('GET', 'sys/audit')).body.data).toEqual({})
    expect((await server.call('GET', 'sys/mounts')).status).toBe(200)
  })

  it('rejects an http url that carries credentials', async () => {
    server = await startTestServer()
    const res = await server.call('PUT', 'sys/audit/http', {
      body: { type: 'http', options: { url: 'http://user:pw@127.0.0.1:1/x' } },
    })
    expect(res.status).toBe(400)
    expect(JSON.stringify(res.body)).not.toContain('pw@')
  })
})
