import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import type { RunningServer } from '../../src/http/server.js'

/**
 * Issue 12, item 11: a JSON body nested 100,000 deep answered 500 (sys/policy, auth/token/create:
 * code after the parser recursed into it). It is refused as a 400 before anything walks it.
 */

let server: TestServer
let running: RunningServer

beforeAll(async () => {
  server = await startTestServer()
  running = await server.listen()
})
afterAll(async () => {
  await server?.close()
})

async function post(path: string, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${running.address}/v1/${path}`, {
    method: 'POST',
    headers: { 'X-Vault-Token': server.rootToken, 'Content-Type': 'application/json' },
    body,
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const N = 100_000
const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n)
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)

describe('JSON nesting over a real socket', () => {
  it('answers 400 in Vault shape to array and object bodies nested 100,000 deep (were 500)', async () => {
    const bodies = [
      `{"policy":${deepArray(N)}}`,
      `{"policy":${deepObject(N)}}`,
      `{"type":${deepArray(N)}}`,
      deepObject(N),
      deepArray(N),
    ]
    for (const path of ['sys/policy/deep', 'sys/policies/acl/deep', 'auth/token/create']) {
      for (const body of bodies) {
        const res = await post(path, body)
        expect(res.status, `${path} ${body.slice(0, 12)}`).toBe(400)
        expect(res.body).toEqual({ errors: ['JSON input is nested deeper than 128 levels'] })
      }
    }
    // The server keeps serving.
    expect((await fetch(`${running.address}/v1/sys/health`)).status).toBe(200)
    const ok = await post('sys/policy/after', JSON.stringify({ policy: 'path "x" {}' }))
    expect(ok.status).toBe(204)
  })

  it('accepts nesting up to the limit, and brackets inside strings do not count', async () => {
    // The body's object plus 127 arrays: 128 levels, accepted (metadata ignores unknown fields).
    const atLimit = `{"custom_metadata":{},"x":${deepArray(127)}}`
    expect((await post('secret/metadata/limit', atLimit)).status).toBe(204)
    const overLimit = `{"custom_metadata":{},"x":${deepArray(128)}}`
    expect(await post('secret/metadata/limit', overLimit)).toEqual({
      status: 400,
      body: { errors: ['JSON input is nested deeper than 128 levels'] },
    })
    const inString = JSON.stringify({ data: { v: '['.repeat(N) + '{"a":'.repeat(N) } })
    expect((await post('secret/data/brackets', inString)).status).toBe(200)
    const read = await server.call('GET', 'secret/data/brackets')
    expect(read.body.data.data.v).toBe('['.repeat(N) + '{"a":'.repeat(N))
  })
})
