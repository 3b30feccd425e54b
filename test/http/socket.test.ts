import http from 'node:http'
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import type { RunningServer } from '../../src/http/server.js'

/** A parsed JSON response body. */

type Json = any

let server: TestServer
let running: RunningServer
let agent: http.Agent

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  body: Json
  reused: boolean
  localPort: number | undefined
}

function send(
  method: string,
  path: string,
  options: { token?: string | null; body?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const url = new URL(`/v1/${path}`, running.address)
  const headers: Record<string, string> = { ...options.headers }
  const token = options.token === undefined ? server.rootToken : options.token
  if (token) headers['X-Vault-Token'] = token
  if (options.body !== undefined)
    headers['Content-Length'] = String(Buffer.byteLength(options.body))
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = null
        try {
          body = text ? JSON.parse(text) : null
        } catch {
          body = text
        }
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          body,
          reused: req.reusedSocket,
          localPort: req.socket?.localPort,
        })
      })
    })
    req.on('error', reject)
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })
}

beforeAll(async () => {
  server = await startTestServer()
  for (const k of ['one', 'two']) {
    await server.call('POST', `secret/data/sock/${k}`, { body: { data: { k } } })
  }
  running = await server.listen()
  agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
})
afterAll(async () => {
  agent?.destroy()
  await server?.close()
})

describe('over a real socket', () => {
  it('answers the custom LIST verb', async () => {
    const res = await send('LIST', 'secret/metadata/sock')
    expect(res.status).toBe(200)
    expect(res.body.data.keys).toEqual(['one', 'two'])
    expect(res.headers['x-request-id']).toBeTruthy()
  })

  it('answers GET ?list=true and ?list=1', async () => {
    for (const q of ['true', '1']) {
      const res = await send('GET', `secret/metadata/sock?list=${q}`)
      expect(res.status).toBe(200)
      expect(res.body.data.keys).toEqual(['one', 'two'])
    }
    expect((await send('GET', 'secret/metadata/sock?list=banana')).status).toBe(400)
  })

  it('answers LIST after a GET, and a GET after a LIST, on the same keep-alive connection', async () => {
    const get1 = await send('GET', 'secret/data/sock/one')
    expect(get1.status).toBe(200)
    const list = await send('LIST', 'secret/metadata/sock/')
    expect(list.status).toBe(200)
    expect(list.reused).toBe(true)
    expect(list.localPort).toBe(get1.localPort)
    expect(list.body.data.keys).toEqual(['one', 'two'])
    const get2 = await send('GET', 'secret/data/sock/two')
    expect(get2.status).toBe(200)
    expect(get2.reused).toBe(true)
    expect(get2.localPort).toBe(get1.localPort)
    expect(get2.body.data.data).toEqual({ k: 'two' })
    // Several in a row, alternating, with a POST body in between.
    const post = await send('POST', 'secret/data/sock/three', {
      body: JSON.stringify({ data: { k: 'three' } }),
      headers: { 'Content-Type': 'application/json' },
    })
    expect(post.status).toBe(200)
    const list2 = await send('LIST', 'secret/metadata/sock')
    expect(list2.body.data.keys).toEqual(['one', 'three', 'two'])
    expect(list2.localPort).toBe(get1.localPort)
  })

  it('keeps a real LOCK request a LOCK (405), and answers LIST for an empty folder with 404', async () => {
    const lock = await send('LOCK', 'secret/metadata/sock')
    expect(lock.status).toBe(405)
    const empty = await send('LIST', 'secret/metadata/nothing-here')
    expect(empty.status).toBe(404)
    expect(empty.body).toEqual({ errors: [] })
  })

  it('answers 204 with no body and 403 with the request id header', async () => {
    const put = await send('PUT', 'sys/policy/sock', {
      body: JSON.stringify({ policy: 'path "x" { capabilities = ["read"] }' }),
    })
    expect(put.status).toBe(204)
    expect(put.text).toBe('')
    const denied = await send('GET', 'sys/mounts', { token: null })
    expect(denied.status).toBe(403)
    expect(denied.headers['x-request-id']).toBeTruthy()
  })

  it('answers HEAD sys/health with the status and no body', async () => {
    const res = await send('HEAD', 'sys/health', { token: null })
    expect(res.status).toBe(200)
    expect(res.text).toBe('')
  })

  it('answers 413 at once when the declared body is over the default 32 MiB limit', async () => {
    const { port, hostname } = new URL(running.address)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(
          'PUT /v1/sys/policy/huge HTTP/1.1\r\nHost: x\r\n' +
            `X-Vault-Token: ${server.rootToken}\r\nContent-Length: ${33 * 1024 * 1024}\r\n\r\n{"policy":"`,
        )
      })
      let data = ''
      socket.on('data', (c) => {
        data += c.toString('utf8')
        if (data.includes('\r\n\r\n')) {
          socket.destroy()
          resolve(data)
        }
      })
      socket.on('error', reject)
      setTimeout(() => reject(new Error('no answer within 5s')), 5000).unref()
    })
    expect(reply.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 413/)
  })

  it('answers a LIST sent as a raw request line (as Vault clients send it)', async () => {
    const { port, hostname } = new URL(running.address)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(
          `LIST /v1/secret/metadata/sock HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${server.rootToken}\r\nConnection: close\r\n\r\n`,
        )
      })
      let data = ''
      socket.on('data', (c) => (data += c.toString('utf8')))
      socket.on('end', () => resolve(data))
      socket.on('error', reject)
    })
    expect(reply.split('\r\n')[0]).toBe('HTTP/1.1 200 OK')
    expect(reply).toContain('"keys":["one","three","two"]')
  })

  it('answers requests the HTTP parser refuses in Vault shape: unknown method 405, garbage 400', async () => {
    const { port, hostname } = new URL(running.address)
    const raw = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), hostname, () => socket.write(text))
        let data = ''
        socket.on('data', (c) => (data += c.toString('utf8')))
        socket.on('end', () => resolve(data))
        socket.on('error', reject)
      })
    const unknown = await raw(`FOO /v1/secret/data/x HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(unknown.split('\r\n')[0]).toBe('HTTP/1.1 405 Method Not Allowed')
    expect(unknown).toContain('Content-Type: application/json')
    expect(JSON.parse(unknown.slice(unknown.indexOf('\r\n\r\n') + 4))).toEqual({ errors: [] })
    const garbage = await raw('GET /v1/sys/health HTTP/1.1\r\nno colon here\r\n\r\n')
    expect(garbage.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request')
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4))).toEqual({
      errors: ['malformed HTTP request'],
    })
    // The server still serves normally afterwards.
    expect((await send('GET', 'sys/health', { token: null })).status).toBe(200)
  })
})
