import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { composeServer, type ComposeOptions, type Stint } from '../../src/server/compose.js'
import { createRootToken } from '../../src/engines/sys/seal.js'
import { listen, type RunningServer } from '../../src/http/server.js'
import { callInProcess } from '../../src/http/in-process.js'
import type { Storage } from '../../src/storage/storage.js'
import type { Logger } from '../../src/core/logger.js'

export interface TestServer extends Stint {
  rootToken: string
  unsealKeys: string[]
  /**
   * Calls the /v1 handler production serves, in process (no socket):
   * `call('GET', 'sys/mounts', { token })`.
   */
  call(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>
  /** Opens a real listener on 127.0.0.1 (random port) for socket-level clients. */
  listen(): Promise<RunningServer>
  close(): Promise<void>
}

export interface TestServerOptions {
  /** Storage URL or opened storage; default: a fresh SQLite file in a temp dir. */
  storage?: string | Storage
  /** Leave the server uninitialised (to test sys/init). */
  uninitialized?: boolean
  shares?: number
  threshold?: number
  /** Mount KV v2 at secret/ like dev mode (default true). */
  devMounts?: boolean
  staticUnsealKey?: Uint8Array
  /** Logger for the server (e.g. one writing to a buffer, to check what gets logged). */
  logger?: Logger
  /** Extra engine types, lease settings, access options: as the composition root takes them. */
  compose?: Omit<ComposeOptions, 'storage' | 'staticUnsealKey' | 'logger'>
}

/** A fully built, initialised and unsealed Stint on its own storage. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const storage =
    options.storage ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'stint-test-')), 'stint.db')}`
  const stint = await composeServer({
    ...options.compose,
    storage,
    staticUnsealKey: options.staticUnsealKey,
    logger: options.logger,
  })
  const { seal, policies, mounts } = stint.services
  let rootToken = ''
  let unsealKeys: string[] = []
  if (!options.uninitialized) {
    const keys = await seal.initialize(
      options.shares ?? 1,
      options.threshold ?? 1,
      async () => {
        await policies.ensureBuiltins()
        rootToken = await createRootToken(stint.services)
      },
      true,
    )
    unsealKeys = keys.map((k) => Buffer.from(k).toString('base64'))
    if (options.devMounts ?? true) {
      await mounts.enable({
        path: 'secret/',
        kind: 'secret',
        type: 'kv',
        options: { version: '2' },
      })
    }
  }
  const servers: RunningServer[] = []
  const server: TestServer = {
    ...stint,
    rootToken,
    unsealKeys,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers }
      const token = opts.token === undefined ? rootToken : opts.token
      if (token) headers['X-Vault-Token'] = token
      let body: string | undefined
      if (opts.body !== undefined) {
        body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
        headers['Content-Type'] ??= 'application/json'
      }
      const res = await callInProcess(stint.api, { method, target: `/v1/${path}`, headers, body })
      const text = res.body ?? ''
      let parsed: unknown = null
      if (text) {
        try {
          parsed = JSON.parse(text)
        } catch {
          parsed = text
        }
      }
      return { status: res.status, body: parsed, headers: new Headers(res.headers) }
    },
    async listen() {
      const running = await listen(stint.api, { host: '127.0.0.1', port: 0 })
      servers.push(running)
      return running
    },
    async close() {
      for (const s of servers) await s.close()
      await stint.shutdown()
    },
  }
  return server
}

/**
 * `fetch`-style access to the /v1 handler production serves, in process: a WHATWG Response,
 * for tests that look at raw status, headers and body text.
 */
export async function request(
  api: Stint['api'],
  url: string,
  init: {
    method?: string
    headers?: Record<string, string>
    body?: string
    remoteAddress?: string
  } = {},
): Promise<Response> {
  const target = url.replace(/^https?:\/\/[^/]+/, '')
  const res = await callInProcess(api, {
    method: init.method ?? 'GET',
    target,
    headers: init.headers,
    body: init.body,
    remoteAddress: init.remoteAddress,
  })
  return new Response(res.body, { status: res.status, headers: res.headers })
}
