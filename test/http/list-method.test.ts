import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { connectRaw, type RawClient } from '../support/raw-http.js'
import { selfSignedCert, type SelfSignedCert } from '../support/tls.js'
import { listen, type RunningServer } from '../../src/http/server.js'

/**
 * Node's HTTP parser knows no `LIST` method, so the listener rewrites it in the byte stream. These
 * tests split, pipeline and disguise requests over real sockets, plain and TLS (issue 12, item 7:
 * the rewrite used to look only at the start of each read).
 */

let server: TestServer
let plain: RunningServer
let secure: RunningServer
let cert: SelfSignedCert

beforeAll(async () => {
  cert = selfSignedCert()
  server = await startTestServer()
  expect((await server.call('POST', 'sys/mounts/kv1', { body: { type: 'kv' } })).status).toBe(204)
  for (const t of ['plain', 'tls']) {
    for (const k of ['one', 'two']) {
      await server.call('POST', `secret/data/${t}/dir/${k}`, { body: { data: { k } } })
    }
  }
  plain = await server.listen()
  secure = await listen(server.api, { host: '127.0.0.1', port: 0, tls: cert })
})
afterAll(async () => {
  await secure?.close()
  await server?.close()
})

/** The bytes of one request with the root token (and a Content-Length when there is a body). */
function request(
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): string {
  const headers: Record<string, string> = {
    Host: '127.0.0.1',
    'X-Vault-Token': server.rootToken,
    ...options.headers,
  }
  if (options.body !== undefined && !headers['Transfer-Encoding']) {
    headers['Content-Length'] = String(Buffer.byteLength(options.body))
  }
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  return `${method} /v1/${path} HTTP/1.1\r\n${head}\r\n${options.body ?? ''}`
}

const json = { 'Content-Type': 'application/json' }

const closesWithin5s = (client: RawClient): Promise<boolean> =>
  Promise.race([client.closed.then(() => true), sleep(5000).then(() => false)])

describe.each([
  { transport: 'plain', t: 'plain' },
  { transport: 'TLS', t: 'tls' },
])('LIST over a real $transport socket', ({ t }) => {
  const connect = (): Promise<RawClient> =>
    t === 'tls' ? connectRaw(secure.address, cert.cert) : connectRaw(plain.address)
  // Built in the tests: the root token exists only once the server has started.
  const list = () => request('LIST', `secret/metadata/${t}/dir`)
  const expectKeys = (reply: { status: number; json(): any }) => {
    expect(reply.status).toBe(200)
    expect(reply.json().data.keys).toEqual(['one', 'two'])
  }

  it('answers a LIST whose first 1 to 5 bytes arrive in a read of their own (was a 405)', async () => {
    const client = await connect()
    try {
      for (let split = 1; split <= 5; split++) {
        await client.send(list().slice(0, split))
        await client.send(list().slice(split))
        const [reply] = await client.replies(1)
        expectKeys(reply!)
      }
    } finally {
      client.close()
    }
  })

  it('answers a LIST sent byte by byte (was a 405)', async () => {
    const client = await connect()
    try {
      await client.sendBytewise(list())
      const [reply] = await client.replies(1)
      expectKeys(reply!)
    } finally {
      client.close()
    }
  })

  it('answers a GET and a LIST pipelined in one segment, in order (the socket was destroyed)', async () => {
    const client = await connect()
    try {
      await client.send(request('GET', `secret/data/${t}/dir/one`) + list())
      const [get, listed] = await client.replies(2)
      expect(get!.status).toBe(200)
      expect(get!.json().data.data).toEqual({ k: 'one' })
      expectKeys(listed!)
    } finally {
      client.close()
    }
  })

  it('answers a POST and a LIST pipelined in one segment, writing once (the write ran unanswered)', async () => {
    const client = await connect()
    try {
      const post = request('POST', `secret/data/${t}/pipelined`, {
        body: JSON.stringify({ data: { v: 1 } }),
        headers: json,
      })
      await client.send(post + list())
      const [written, listed] = await client.replies(2)
      expect(written!.status).toBe(200)
      expect(written!.json().data.version).toBe(1)
      expectKeys(listed!)
    } finally {
      client.close()
    }
    const meta = await server.call('GET', `secret/metadata/${t}/pipelined`)
    expect(meta.body.data.current_version).toBe(1)
  })

  it('stores verbatim a form body that starts with "LIST /" in a read of its own (was stored as "LOCK /")', async () => {
    const client = await connect()
    try {
      const body = 'LIST /v1/anything=1'
      const whole = request('POST', `kv1/${t}/form`, {
        body,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      })
      // The POST's head is pipelined behind a GET; its body comes after the GET's answer.
      await client.send(request('GET', `secret/data/${t}/dir/one`) + whole.slice(0, -body.length))
      const [get] = await client.replies(1)
      expect(get!.status).toBe(200)
      await client.send(body)
      const [reply] = await client.replies(1)
      expect(reply!.status).toBe(204)
    } finally {
      client.close()
    }
    const stored = await server.call('GET', `kv1/${t}/form`)
    expect(stored.body.data).toEqual({ 'LIST /v1/anything': '1' })
  })

  it('stores verbatim a JSON body containing "LIST /" at the start of a read', async () => {
    const value = `LIST /v1/secret/metadata/${t}/dir HTTP/1.1`
    const body = JSON.stringify({ data: { v: value } })
    const at = body.indexOf('LIST /')
    const whole = request('POST', `secret/data/${t}/verbatim`, { body, headers: json })
    const cut = whole.length - body.length + at
    const client = await connect()
    try {
      await client.send(whole.slice(0, cut))
      await client.send(whole.slice(cut) + list())
      const [written, listed] = await client.replies(2)
      expect(written!.status).toBe(200)
      expectKeys(listed!)
    } finally {
      client.close()
    }
    const stored = await server.call('GET', `secret/data/${t}/verbatim`)
    expect(stored.body.data.data).toEqual({ v: value })
  })

  it('keeps a real LOCK a LOCK (405) after an early 400 whose unread body started with "LIST /" (was answered as LIST)', async () => {
    const client = await connect()
    try {
      // A bad path encoding is refused before the body is read.
      const body = list()
      const whole = request('POST', 'secret/data/%zz', { body })
      await client.send(whole.slice(0, whole.length - body.length))
      const [early] = await client.replies(1)
      expect(early!.status).toBe(400)
      await client.send(body)
      await client.send(request('LOCK', `secret/metadata/${t}/dir`))
      const [lock] = await client.replies(1)
      expect(lock!.status).toBe(405)
      // The connection is still in step: a LIST after it is a LIST.
      await client.send(list())
      expectKeys((await client.replies(1))[0]!)
    } finally {
      client.close()
    }
  })

  it('ignores blank lines before a LIST request line (was a 405)', async () => {
    const client = await connect()
    try {
      await client.send(`\r\n${list()}`)
      expectKeys((await client.replies(1))[0]!)
      // Also between pipelined requests, after a body.
      const post = request('POST', `secret/data/${t}/blank`, {
        body: JSON.stringify({ data: { v: 1 } }),
        headers: json,
      })
      await client.send(`${post}\r\n\r\n${list()}`)
      const [written, listed] = await client.replies(2)
      expect(written!.status).toBe(200)
      expectKeys(listed!)
    } finally {
      client.close()
    }
  })

  it('frames chunked bodies: chunk data starting with "LIST /" is stored verbatim and a LIST after it is answered', async () => {
    const value = `LIST /v1/secret/metadata/${t}/dir HTTP/1.1`
    const before = '{"data":{"v":"'
    const after = '"}}'
    const head = request('POST', `secret/data/${t}/chunked`, {
      body: '',
      headers: { ...json, 'Transfer-Encoding': 'chunked' },
    })
    const hex = (s: string) => Buffer.byteLength(s).toString(16)
    const client = await connect()
    try {
      await client.send(`${head}${hex(before)};ext=1\r\n${before}\r\n${hex(value)}\r\n`)
      await client.send(`${value}\r\n`)
      await client.send(`${hex(after)}\r\n${after}\r\n0\r\nX-Trailer: LIST /\r\n\r\n${list()}`)
      const [written, listed] = await client.replies(2)
      expect(written!.status).toBe(200)
      expectKeys(listed!)
    } finally {
      client.close()
    }
    const stored = await server.call('GET', `secret/data/${t}/chunked`)
    expect(stored.body.data.data).toEqual({ v: value })
  })

  it('answers many pipelined LIST, GET, POST and LOCK requests in order on one keep-alive connection, whole or cut in 7-byte reads', async () => {
    for (const mode of ['whole', 'cut']) {
      const kinds: string[] = []
      let bytes = ''
      for (let i = 0; i < 24; i++) {
        const kind = ['LIST', 'GET', 'POST', 'LOCK'][i % 4]!
        kinds.push(kind)
        if (kind === 'LIST') bytes += list()
        else if (kind === 'GET') bytes += request('GET', `secret/data/${t}/dir/two`)
        else if (kind === 'LOCK') bytes += request('LOCK', `secret/metadata/${t}/dir`)
        else {
          const body = JSON.stringify({ data: { text: `LIST /v1/x ${i}` } })
          bytes += request('POST', `secret/data/${t}/many/${mode}-${i}`, { body, headers: json })
        }
      }
      const client = await connect()
      try {
        if (mode === 'whole') await client.send(bytes)
        else for (let i = 0; i < bytes.length; i += 7) await client.send(bytes.slice(i, i + 7), 1)
        const replies = await client.replies(kinds.length)
        replies.forEach((reply, i) => {
          const kind = kinds[i]
          if (kind === 'LIST') expectKeys(reply)
          else if (kind === 'GET') expect(reply.json().data.data).toEqual({ k: 'two' })
          else if (kind === 'LOCK') expect(reply.status).toBe(405)
          else expect(reply.json().data.version).toBe(1)
        })
      } finally {
        client.close()
      }
      const written = await server.call('LIST', `secret/metadata/${t}/many`)
      expect(written.body.data.keys.filter((k: string) => k.startsWith(mode))).toHaveLength(6)
    }
  })

  it('keeps the LIST requests in step when Node answers one itself (an unsupported Expect: 417)', async () => {
    const client = await connect()
    try {
      const expectFoo = request('LIST', `secret/metadata/${t}/dir`, { headers: { Expect: 'foo' } })
      await client.send(expectFoo + list() + request('LOCK', `secret/metadata/${t}/dir`))
      const [refused, listed, lock] = await client.replies(3)
      expect(refused!.status).toBe(417)
      expect(refused!.json()).toEqual({ errors: ['unsupported Expect header'] })
      expectKeys(listed!)
      expect(lock!.status).toBe(405)
    } finally {
      client.close()
    }
  })

  it('closes the connection when a chunked body turns malformed mid-way (nothing can answer it)', async () => {
    const client = await connect()
    try {
      const head = request('POST', `secret/data/${t}/broken`, {
        body: '',
        headers: { ...json, 'Transfer-Encoding': 'chunked' },
      })
      await client.send(`${head}4\r\n{"da\r\nzz\r\n`)
      expect(await closesWithin5s(client)).toBe(true)
    } finally {
      client.close()
    }
    expect((await server.call('GET', `secret/data/${t}/broken`)).status).toBe(404)
  })

  it('answers a GET pipelined before an unparseable request, then the 405, then closes', async () => {
    const client = await connect()
    try {
      await client.send(request('GET', `secret/data/${t}/dir/one`) + 'FOO /v1/x HTTP/1.1\r\n\r\n')
      const [get, refused] = await client.replies(2)
      expect(get!.status).toBe(200)
      expect(get!.json().data.data).toEqual({ k: 'one' })
      expect(refused!.status).toBe(405)
      expect(refused!.json()).toEqual({ errors: [] })
      expect(await closesWithin5s(client)).toBe(true)
    } finally {
      client.close()
    }
  })
})
