import http from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer, request } from '../support/server.js'
import {
  createFuzzer,
  describeRequest,
  normalise,
  type FuzzRequest,
  type FuzzTokens,
} from '../support/fuzz.js'
import type { RunningServer } from '../../src/http/server.js'

const SEED = Number(process.env.STINT_FUZZ_SEED) || Math.floor(Math.random() * 2 ** 31)
const IN_PROCESS = Number(process.env.STINT_FUZZ_IN_PROCESS) || 800
const OVER_SOCKET = Number(process.env.STINT_FUZZ_SOCKET) || 300

let server: TestServer
let running: RunningServer
let tokens: FuzzTokens

beforeAll(async () => {
  console.log(`fuzz seed: ${SEED} (rerun with STINT_FUZZ_SEED=${SEED})`)
  server = await startTestServer()
  await server.call('POST', 'secret/data/a', { body: { data: { v: '1' } } })
  await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } })
  const plain = await server.call('POST', 'auth/token/create', { body: { policies: ['default'] } })
  const limited = await server.call('POST', 'auth/token/create', {
    body: { policies: ['default'], num_uses: 3 },
  })
  tokens = {
    root: server.rootToken,
    plain: plain.body.auth.client_token,
    limited: limited.body.auth.client_token,
  }
  running = await server.listen()
})
afterAll(async () => {
  await server?.close()
})

interface Outcome {
  status: number
  error?: string
}

async function inProcess(r: FuzzRequest): Promise<Outcome> {
  const res = await request(server.api, `http://127.0.0.1/v1/${r.path}`, {
    method: r.method,
    headers: r.headers,
    body: r.body,
  })
  await res.arrayBuffer()
  return { status: res.status }
}

/** Escapes what Node's HTTP client refuses in a request target; leaves percent garbage alone. */
const socketPath = (path: string) =>
  `/v1/${path}`.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c).replace(/%25/g, '%'))

function overSocket(r: FuzzRequest, agent: http.Agent): Promise<Outcome> {
  const { hostname, port } = new URL(running.address)
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...r.headers }
    if (r.body !== undefined) headers['Content-Length'] = Buffer.byteLength(r.body)
    let req: http.ClientRequest
    try {
      req = http.request(
        { host: hostname, port, method: r.method, path: socketPath(r.path), headers, agent },
        (res) => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0 }))
          res.on('error', () => resolve({ status: res.statusCode ?? 0 }))
        },
      )
    } catch (err) {
      // The client refused to send it (not the server's doing).
      resolve({ status: 0, error: `client: ${(err as Error).message}` })
      return
    }
    req.setTimeout(15_000, () => {
      req.destroy(new Error('timeout'))
    })
    req.on('error', (err) => resolve({ status: -1, error: err.message }))
    if (r.body !== undefined) req.write(r.body)
    req.end()
  })
}

describe('fuzzing the HTTP API', () => {
  it(
    `never answers 5xx to ${IN_PROCESS} in-process and ${OVER_SOCKET} socket requests, and keeps answering`,
    { timeout: 120_000 },
    async () => {
      const started = Date.now()
      const fuzz = createFuzzer(SEED, tokens)
      const failures: string[] = []
      const statuses = new Map<number, number>()
      const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1)

      for (let i = 0; i < IN_PROCESS; i++) {
        const r = fuzz.next(true)
        let outcome: Outcome
        try {
          outcome = await inProcess(r)
        } catch (err) {
          outcome = { status: -1, error: (err as Error).message }
        }
        count(outcome.status)
        if (outcome.status >= 500 || outcome.status < 0) {
          failures.push(`#${i} ${outcome.status} ${outcome.error ?? ''} ${describeRequest(r)}`)
        }
      }

      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      let sent = 0
      let resets = 0
      try {
        for (let i = 0; i < OVER_SOCKET; i++) {
          const r = fuzz.next(false)
          const outcome = await overSocket(r, agent)
          if (outcome.status === 0) continue
          sent++
          count(outcome.status)
          // The server may close the connection early (413, bad method): fine if it is alive.
          if (
            outcome.status === -1 &&
            /ECONNRESET|EPIPE|socket hang up/.test(outcome.error ?? '')
          ) {
            resets++
            const health = await overSocket(
              { method: 'GET', path: 'sys/health', headers: {}, tokenKind: 'none' },
              agent,
            )
            if (health.status !== 200)
              failures.push(`#s${i} server stopped answering after ${describeRequest(r)}`)
            continue
          }
          if (outcome.status >= 500 || outcome.status < 0) {
            failures.push(`#s${i} ${outcome.status} ${outcome.error ?? ''} ${describeRequest(r)}`)
          }
        }
      } finally {
        agent.destroy()
      }

      const summary = [...statuses.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}:${n}`)
      console.log(
        `fuzz seed ${SEED}: ${IN_PROCESS} in-process + ${sent} socket requests (${resets} resets) in ${Date.now() - started} ms; statuses ${summary.join(' ')}`,
      )
      expect(failures, `seed ${SEED}`).toEqual([])
      expect(sent).toBeGreaterThanOrEqual(Math.min(200, OVER_SOCKET))
      // A spread of answers shows the requests reached real handlers.
      expect(statuses.get(200) ?? 0).toBeGreaterThan(10)
      expect(statuses.get(400) ?? 0).toBeGreaterThan(10)
      expect(statuses.get(403) ?? 0).toBeGreaterThan(10)
      expect(statuses.get(404) ?? 0).toBeGreaterThan(10)

      // Still healthy and still serving the root token, in-process and over the socket.
      expect((await server.call('GET', 'sys/health', { token: null })).status).toBe(200)
      const self = await server.call('GET', 'auth/token/lookup-self')
      expect(self.status).toBe(200)
      expect(self.body.data.policies).toEqual(['root'])
      const res = await fetch(`${running.address}/v1/sys/mounts`, {
        headers: { 'X-Vault-Token': server.rootToken },
      })
      expect(res.status).toBe(200)
    },
  )
})

describe('fuzzing a sealed server', () => {
  it(
    'answers only 503 Vault is sealed among 5xx, and unseals afterwards',
    { timeout: 60_000 },
    async () => {
      const sealed = await startTestServer({ shares: 3, threshold: 2 })
      try {
        expect((await sealed.call('PUT', 'sys/seal')).status).toBe(204)
        const fuzz = createFuzzer(SEED + 1, {
          root: sealed.rootToken,
          plain: 'sts.not-a-token',
          limited: 'sts.not-a-token',
        })
        const failures: string[] = []
        for (let i = 0; i < 300; i++) {
          const r = fuzz.next(true)
          const res = await request(sealed.api, `http://127.0.0.1/v1/${r.path}`, {
            method: r.method,
            headers: r.headers,
            body: r.body,
          })
          const text = await res.text()
          // HEAD answers carry no body to read the message from.
          // sys/health answers 503 by design while sealed.
          const sealedAnswer =
            text.includes('Vault is sealed') ||
            r.method === 'HEAD' ||
            normalise(r.path).startsWith('sys/health')
          if (res.status >= 500 && !(res.status === 503 && sealedAnswer)) {
            failures.push(`#${i} ${res.status} ${describeRequest(r)}`)
          }
        }
        expect(failures, `seed ${SEED + 1}`).toEqual([])
        // Random keys may have been submitted: start a clean round with the real shares.
        await sealed.call('PUT', 'sys/unseal', { token: null, body: { reset: true } })
        for (const key of sealed.unsealKeys.slice(0, 2)) {
          await sealed.call('PUT', 'sys/unseal', { token: null, body: { key } })
        }
        expect((await sealed.call('GET', 'sys/health', { token: null })).status).toBe(200)
      } finally {
        await sealed.close()
      }
    },
  )
})
