import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer, request } from '../support/server.js'
import { request as httpRequest } from 'node:http'
import { createApiHandler } from '../../src/http/api.js'
import { listen } from '../../src/http/server.js'
import { silentLogger } from '../../src/core/logger.js'
import { connectRaw } from '../support/raw-http.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  await server.call('POST', 'secret/data/list/a', { body: { data: { v: '1' } } })
  await server.call('POST', 'secret/data/list/b', { body: { data: { v: '2' } } })
})
afterAll(async () => {
  await server?.close()
})

const ENVELOPE_KEYS = [
  'request_id',
  'lease_id',
  'renewable',
  'lease_duration',
  'data',
  'wrap_info',
  'warnings',
  'auth',
]

describe('the success envelope', () => {
  it('has every key on a 200, with nulls for what is unset', async () => {
    const res = await server.call('GET', 'auth/token/lookup-self')
    expect(res.status).toBe(200)
    for (const key of ENVELOPE_KEYS) expect(res.body, key).toHaveProperty(key)
    expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(res.body).toMatchObject({
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      wrap_info: null,
      warnings: null,
      auth: null,
    })
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
  })

  it('has every key on a token create, with auth set and data null', async () => {
    const res = await server.call('POST', 'auth/token/create', { body: { policies: ['default'] } })
    for (const key of ENVELOPE_KEYS) expect(res.body, key).toHaveProperty(key)
    expect(res.body.data).toBeNull()
    expect(res.body.auth.client_token).toBeTruthy()
  })

  it('answers 204 with an empty body when there is nothing to return', async () => {
    const res = await request(server.api, '/v1/sys/policy/empty-body', {
      method: 'PUT',
      headers: { 'X-Vault-Token': server.rootToken },
      body: JSON.stringify({ policy: 'path "x" { capabilities = ["read"] }' }),
    })
    expect(res.status).toBe(204)
    expect(await res.text()).toBe('')
  })

  it('puts the request id on the body and a request id header on every response', async () => {
    const ok = await server.call('GET', 'sys/mounts')
    expect(ok.headers.get('x-request-id')).toBe(ok.body.request_id)
    const responses = [
      await server.call('GET', 'sys/nothing-here'),
      await server.call('GET', 'auth/token/lookup-self', { token: 'sts.bad' }),
      await server.call('POST', 'sys/mounts/x', { body: '{not json' }),
      await server.call('PUT', 'sys/policy/empty', { body: { policy: 'path "y" {}' } }),
      await server.call('GET', 'sys/health', { token: null }),
    ]
    for (const res of responses) expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('errors', () => {
  it('answers 404 with a message for an unknown path', async () => {
    for (const path of [
      'nowhere/at/all',
      'sys/not-an-endpoint',
      'auth/token/nope',
      'auth/nomount/login',
    ]) {
      const res = await server.call('GET', path)
      expect(res.status, path).toBe(404)
      expect(Array.isArray(res.body.errors)).toBe(true)
    }
    const outside = await request(server.api, '/v2/sys/health')
    expect(outside.status).toBe(404)
    expect(await outside.json()).toEqual({ errors: [] })
  })

  it('answers 404 with an empty errors list for a missing item and for an empty list', async () => {
    const missing = await server.call('GET', 'secret/data/does/not/exist')
    expect(missing.status).toBe(404)
    const empty = await server.call('LIST', 'secret/metadata/empty-folder/')
    expect(empty.status).toBe(404)
    expect(empty.body).toEqual({ errors: [] })
  })

  it('answers 405 to an operation a path does not support and to an unknown method', async () => {
    const unsupported = await server.call('DELETE', 'sys/seal-status')
    expect(unsupported.status).toBe(405)
    expect(unsupported.body.errors).toEqual(['unsupported operation'])
    const weird = await request(server.api, '/v1/sys/mounts', {
      method: 'PROPFIND',
      headers: { 'X-Vault-Token': server.rootToken },
    })
    expect(weird.status).toBe(405)
    expect((await weird.json()).errors).toBeDefined()
  })

  it('answers 400 with errors to malformed JSON and to a non-object body', async () => {
    for (const body of ['{not json', '[1,2]', '"string"', '42', 'null']) {
      const res = await server.call('POST', 'sys/policy/x', { body })
      expect(res.status, body).toBe(400)
      expect(res.body.errors.length).toBe(1)
    }
  })

  it('answers 403 permission denied without a token', async () => {
    const res = await server.call('GET', 'sys/mounts', { token: null })
    expect(res.status).toBe(403)
    expect(res.body).toEqual({ errors: ['permission denied'] })
  })

  it('answers 413 to a body over the limit, by declared length and by streamed size', async () => {
    // The production handler with a small limit, over a real socket (the body reader is the
    // listener's own, which stops reading past the limit).
    const small = createApiHandler(
      { core: server.core, logger: silentLogger, observe: () => {} },
      { maxBodyBytes: 1024 },
    )
    const running = await listen(small, { host: '127.0.0.1', port: 0 })
    try {
      const big = JSON.stringify({ policy: 'x'.repeat(2000) })
      const declared = await fetch(`${running.address}/v1/sys/policy/big`, {
        method: 'PUT',
        headers: { 'X-Vault-Token': server.rootToken },
        body: big,
      })
      expect(declared.status).toBe(413)
      expect((await declared.json()).errors.length).toBe(1)
      // Chunked: no declared length, the size is only known while reading.
      const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          `${running.address}/v1/sys/policy/big`,
          { method: 'PUT', headers: { 'X-Vault-Token': server.rootToken } },
          (res) => {
            let body = ''
            res.on('data', (c: Buffer) => (body += c.toString()))
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
          },
        )
        req.on('error', reject)
        for (let i = 0; i < 4; i++) req.write('x'.repeat(500))
        req.end()
      })
      expect(streamed.status).toBe(413)
      expect(JSON.parse(streamed.body)).toEqual({ errors: ['request body too large'] })
      // Just under the limit is fine.
      const fits = await fetch(`${running.address}/v1/sys/policy/fits`, {
        method: 'PUT',
        headers: { 'X-Vault-Token': server.rootToken },
        body: JSON.stringify({ policy: 'path "a" { capabilities = ["read"] }' }),
      })
      expect(fits.status).toBe(204)
    } finally {
      await running.close()
    }
    expect((await server.call('GET', 'sys/policy/big')).status).toBe(404)
  })

  it('answers 415 to PATCH without the merge-patch content type', async () => {
    const res = await server.call('PATCH', 'secret/data/list/a', {
      body: { data: { v: '3' } },
      headers: { 'Content-Type': 'application/json' },
    })
    expect(res.status).toBe(415)
    const ok = await server.call('PATCH', 'secret/data/list/a', {
      body: { data: { v: '3' } },
      headers: { 'Content-Type': 'application/merge-patch+json' },
    })
    expect(ok.status).toBe(200)
  })

  it('answers 400 to a path with dot segments or control characters', async () => {
    for (const path of [
      'secret/x%2F..%2Fy',
      'secret/data%2F.%2Fx',
      'secret/data/%00x',
      'secret/data/%ZZ',
    ]) {
      const res = await request(server.api, `/v1/${path}`, {
        headers: { 'X-Vault-Token': server.rootToken },
      })
      expect(res.status, path).toBe(400)
    }
  })
})

describe('dot segments in the URL', () => {
  // This test once went through an adapter production did not serve and claimed the segments
  // were resolved before routing; the served handler refuses them, before any token or ACL.
  it('are refused with a 400 before routing, in process and over a real socket', async () => {
    await server.call('PUT', 'sys/policy/secret-only', {
      body: { policy: 'path "secret/*" { capabilities = ["read", "list"] }' },
    })
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['secret-only'] },
    })
    const token = created.body.auth.client_token as string
    const refusal = { errors: ['path must not contain "." or ".." segments'] }
    for (const path of ['secret/../sys/mounts', 'secret/./data/list/a']) {
      const res = await request(server.api, `/v1/${path}`, { headers: { 'X-Vault-Token': token } })
      expect(res.status, path).toBe(400)
      expect(await res.json()).toEqual(refusal)
    }
    // fetch() would normalise the URL first: the raw client sends the bytes as written.
    const running = await server.listen()
    const raw = await connectRaw(running.address)
    try {
      await raw.send(
        `GET /v1/secret/../sys/mounts HTTP/1.1\r\nHost: x\r\nX-Vault-Token: ${token}\r\n\r\n`,
      )
      const [reply] = await raw.replies(1)
      expect(reply!.status).toBe(400)
      expect(reply!.json()).toEqual(refusal)
    } finally {
      raw.close()
    }
  })
})

describe('listing', () => {
  it.each(['true', '1', 't', 'TRUE', 'True'])('turns GET ?list=%s into a list', async (value) => {
    const res = await server.call('GET', `secret/metadata/list?list=${value}`)
    expect(res.status).toBe(200)
    expect(res.body.data.keys).toEqual(['a', 'b'])
  })

  it('treats ?list=false as a read and refuses ?list=banana with 400', async () => {
    const read = await server.call('GET', 'secret/metadata/list/a?list=false')
    expect(read.status).toBe(200)
    expect(read.body.data.versions).toBeDefined()
    const bad = await server.call('GET', 'secret/metadata/list?list=banana')
    expect(bad.status).toBe(400)
  })

  it('accepts the LIST verb in-process, with or without the trailing slash', async () => {
    expect((await server.call('LIST', 'secret/metadata/list')).body.data.keys).toEqual(['a', 'b'])
    expect((await server.call('LIST', 'secret/metadata/list/')).body.data.keys).toEqual(['a', 'b'])
  })
})

describe('request headers', () => {
  it('accepts an empty or root X-Vault-Namespace and refuses another namespace', async () => {
    for (const ns of ['', 'root', 'root/']) {
      const res = await server.call('GET', 'sys/mounts', { headers: { 'X-Vault-Namespace': ns } })
      expect(res.status, JSON.stringify(ns)).toBe(200)
    }
    const other = await server.call('GET', 'sys/mounts', {
      headers: { 'X-Vault-Namespace': 'team' },
    })
    expect(other.status).toBe(400)
  })

  it('ignores X-Vault-Request and refuses response wrapping clearly', async () => {
    const ok = await server.call('GET', 'sys/mounts', { headers: { 'X-Vault-Request': 'true' } })
    expect(ok.status).toBe(200)
    const wrap = await server.call('GET', 'sys/mounts', { headers: { 'X-Vault-Wrap-TTL': '5m' } })
    expect(wrap.status).toBe(400)
  })

  it('parses a form body when the content type says so', async () => {
    const res = await server.call('POST', 'auth/token/create', {
      body: 'display_name=form&ttl=1h',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    })
    expect(res.status).toBe(200)
    expect(res.body.auth.lease_duration).toBe(3600)
  })

  it('treats PUT and POST the same', async () => {
    const put = await server.call('PUT', 'secret/data/same', { body: { data: { m: 'put' } } })
    const post = await server.call('POST', 'secret/data/same', { body: { data: { m: 'post' } } })
    expect(put.status).toBe(200)
    expect(post.status).toBe(200)
    expect(post.body.data.version).toBe(2)
  })
})
