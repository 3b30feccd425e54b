import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildStint, type Stint } from '../../src/server/build.js'
import { createRootToken } from '../../src/engines/sys/seal.js'
import { listen, type RunningServer } from '../../src/http/server.js'
import type { Storage } from '../../src/storage/storage.js'
import type { Logger } from '../../src/core/logger.js'

export interface TestServer extends Stint {
  rootToken: string
  unsealKeys: string[]
  /** Calls the API in-process (no socket): `call('GET', 'sys/mounts', { token })`. */
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
}

/** A fully built, initialised and unsealed Stint on its own storage. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const storage =
    options.storage ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'stint-test-')), 'stint.db')}`
  const stint = await buildStint({
    storage,
    staticUnsealKey: options.staticUnsealKey,
    logger: options.logger,
  })
  let rootToken = ''
  let unsealKeys: string[] = []
  if (!options.uninitialized) {
    const keys = await stint.core.seal.initialize(
      options.shares ?? 1,
      options.threshold ?? 1,
      async () => {
        await stint.core.policies.ensureBuiltins()
        rootToken = await createRootToken(stint.core)
      },
      true,
    )
    unsealKeys = keys.map((k) => Buffer.from(k).toString('base64'))
    if ((options.devMounts ?? true) && stint.core.factories.has('secret:kv')) {
      await stint.core.mounts.enable({
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
      const res = await stint.app.request(`/v1/${path}`, { method, headers, body })
      const text = await res.text()
      let parsed: unknown = null
      if (text) {
        try {
          parsed = JSON.parse(text)
        } catch {
          parsed = text
        }
      }
      return { status: res.status, body: parsed, headers: res.headers }
    },
    async listen() {
      const running = await listen(stint.app, { host: '127.0.0.1', port: 0 })
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
