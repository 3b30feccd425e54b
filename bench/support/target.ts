import { createHmac, randomBytes, randomUUID } from 'node:crypto'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { serve } from '@hono/node-server'
import Database from 'better-sqlite3'
import { Hono } from 'hono'
import { composeServer } from '../../src/server/compose.js'
import { createRootToken } from '../../src/engines/sys/seal.js'
import { listen } from '../../src/http/server.js'
import { callInProcess } from '../../src/http/in-process.js'
import { loadSodium } from '../../src/crypto/sodium.js'

/**
 * A benchmark target, run in its own process so the load generator does not share its event
 * loop: `hello` (a bare Hono app) or `stint` (a real Stint on a fresh SQLite file, KV v2 at
 * `secret/` holding one 256-byte value, and a token whose policy may read it). Prints one JSON
 * line with what the load generator needs, then serves until stdin closes; a `cpu` line on stdin
 * is answered with the process's CPU time so far.
 */
export interface TargetInfo {
  address: string
  token?: string
  secretPath?: string
}

async function startHello(): Promise<{ info: TargetInfo; stop(): Promise<void> }> {
  const app = new Hono()
  app.get('/', (c) => c.text('Hello Hono!'))
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return {
    info: { address: `http://127.0.0.1:${port}` },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/**
 * The floor: the least work an authenticated KV read can do on this stack, hand-written on
 * `node:http` with no framework at all: HMAC the token and find it in a Map, read one row from
 * SQLite (WAL, prepared statement), decrypt 256 bytes with XChaCha20-Poly1305 (libsodium), and
 * write a Vault-shaped JSON envelope. No ACL, no routing, no metrics: it shows how close to the
 * hardware Stint's KV read is, and what KV ÷ hello-world any server on this stack could reach.
 */
async function startFloor(): Promise<{ info: TargetInfo; stop(): Promise<void> }> {
  const sodium = await loadSodium()
  const dir = mkdtempSync(join(tmpdir(), 'stint-bench-floor-'))
  const db = new Database(join(dir, 'floor.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(
    'create table kv (mount_id text, path text, version int, created_at int, value text, primary key (mount_id, path))',
  )
  const key = sodium.crypto_aead_xchacha20poly1305_ietf_keygen()
  const nonce = randomBytes(24)
  const plaintext = JSON.stringify({ value: randomBytes(192).toString('base64') })
  const sealed = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    plaintext,
    'kv:app',
    null,
    nonce,
    key,
  )
  db.prepare('insert into kv values (?, ?, ?, ?, ?)').run(
    'm',
    'bench/app',
    1,
    Date.now(),
    Buffer.from(sealed).toString('base64'),
  )
  const read = db.prepare<[string, string], { version: number; created_at: number; value: string }>(
    'select version, created_at, value from kv where mount_id = ? and path = ?',
  )
  const hmacKey = randomBytes(32)
  const token = randomBytes(32).toString('base64url')
  const tokens = new Map([
    [createHmac('sha256', hmacKey).update(token).digest('hex'), { policies: ['bench'] }],
  ])
  const server = http.createServer((req, res) => {
    const given = req.headers['x-vault-token']
    const known =
      typeof given === 'string' &&
      tokens.get(createHmac('sha256', hmacKey).update(given).digest('hex'))
    const row = known ? read.get('m', (req.url ?? '').slice('/v1/secret/data/'.length)) : undefined
    if (!row) {
      res.writeHead(403, { 'Content-Type': 'application/json' })
      res.end('{"errors":["permission denied"]}')
      return
    }
    const data = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      Buffer.from(row.value, 'base64'),
      'kv:app',
      nonce,
      key,
      'text',
    )
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end(
      JSON.stringify({
        request_id: randomUUID(),
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: {
          data: JSON.parse(data),
          metadata: { created_time: new Date(row.created_at).toISOString(), version: row.version },
        },
        wrap_info: null,
        warnings: null,
        auth: null,
        mount_type: 'kv',
      }),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  return {
    info: { address: `http://127.0.0.1:${port}`, token, secretPath: 'secret/data/bench/app' },
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      db.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function startStint(): Promise<{ info: TargetInfo; stop(): Promise<void> }> {
  const experiments = new Set((process.env.BENCH_EXPERIMENTS ?? '').split(',').filter(Boolean))
  if (experiments.has('stmt-cache')) cacheSqliteStatements()
  const dir = mkdtempSync(join(tmpdir(), 'stint-bench-'))
  // Two routes that do nothing, one open and one behind a token: the pair isolates what
  // authentication and the ACL cost, with the same routing and the same response.
  const noop = async () => ({ data: { ok: true } })
  const stint = await composeServer({
    storage: `sqlite:${join(dir, 'stint.db')}`,
    engines: {
      'bench-noop': () => () => ({
        paths: [
          { pattern: /^open$/, unauthenticated: true, operations: { read: noop } },
          { pattern: /^closed$/, operations: { read: noop } },
        ],
      }),
    },
  })
  if (experiments.has('token-cache')) cacheTokenLookups(stint.services.tokens)
  let rootToken = ''
  await stint.services.seal.initialize(
    1,
    1,
    async () => {
      await stint.services.policies.ensureBuiltins()
      rootToken = await createRootToken(stint.services)
    },
    true,
  )
  await stint.services.mounts.enable({ path: 'noop/', kind: 'secret', type: 'bench-noop' })
  await stint.services.mounts.enable({
    path: 'secret/',
    kind: 'secret',
    type: 'kv',
    options: { version: '2' },
  })
  const call = async (method: string, path: string, body: unknown) => {
    const res = await callInProcess(stint.api, {
      method,
      target: `/v1/${path}`,
      headers: { 'X-Vault-Token': rootToken, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (res.status >= 300) throw new Error(`setup ${method} ${path}: ${res.status}`)
    return res.status === 204 || res.body === null
      ? undefined
      : (JSON.parse(res.body) as { auth?: { client_token: string } })
  }
  const secretPath = 'secret/data/bench/app'
  // 192 random bytes are 256 base64 characters.
  await call('POST', secretPath, { data: { value: randomBytes(192).toString('base64') } })
  await call('PUT', 'sys/policy/bench', {
    policy:
      'path "secret/data/bench/*" { capabilities = ["read"] }\n' +
      'path "noop/closed" { capabilities = ["read"] }',
  })
  const created = await call('POST', 'auth/token/create', { policies: ['bench'], ttl: '1h' })
  const running = await listen(stint.api, { host: '127.0.0.1', port: 0 })
  return {
    info: { address: running.address, token: created!.auth!.client_token, secretPath },
    stop: async () => {
      await running.close()
      await stint.shutdown()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/*
 * Experiments: they patch this benchmark process only, to measure what a change in the core
 * would buy before anyone makes it. Neither is how Stint runs.
 */

/** Reuses prepared statements per SQL text (Kysely's SQLite driver prepares on every query). */
function cacheSqliteStatements(): void {
  const proto = Database.prototype as unknown as { prepare(source: string): unknown }
  const prepare = proto.prepare
  const caches = new WeakMap<object, Map<string, unknown>>()
  proto.prepare = function cachedPrepare(this: object, source: string) {
    let cache = caches.get(this)
    if (!cache) caches.set(this, (cache = new Map()))
    let stmt = cache.get(source)
    if (!stmt) cache.set(source, (stmt = prepare.call(this, source)))
    return stmt
  }
}

/** Keeps resolved tokens in memory for 2 s (a real cache must also drop them on revoke). */
function cacheTokenLookups(tokens: { lookup(token: string): Promise<unknown> }): void {
  const lookup = tokens.lookup.bind(tokens)
  const cache = new Map<string, { at: number; entry: Promise<unknown> }>()
  tokens.lookup = (token: string) => {
    const hit = cache.get(token)
    if (hit && Date.now() - hit.at < 2000) return hit.entry
    const entry = lookup(token)
    cache.set(token, { at: Date.now(), entry })
    return entry
  }
}

/** Serves the app with plain `@hono/node-server` (no LIST rewriting hook on the sockets). */
const kind = process.argv[2]
const starters: Record<string, () => Promise<{ info: TargetInfo; stop(): Promise<void> }>> = {
  hello: startHello,
  floor: startFloor,
  stint: startStint,
}
const target = starters[kind ?? ''] ? await starters[kind!]!() : undefined
if (!target) {
  console.error('usage: target.ts hello|floor|stint')
  process.exit(2)
}
process.stdout.write(`${JSON.stringify(target.info)}\n`)
// Control lines on stdin: `cpu` answers with this process's CPU time (µs); EOF stops it.
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'cpu') return
  const usage = process.cpuUsage()
  process.stdout.write(`${JSON.stringify({ cpuUs: usage.user + usage.system })}\n`)
})
process.stdin.on('end', () => {
  void target.stop().finally(() => process.exit(0))
})
