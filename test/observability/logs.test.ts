import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/core/logger.js'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

/** A pino logger whose JSON lines land in `text()`. */
function captureLogs() {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(chunk.toString())
      done()
    },
  })
  return { logger: createLogger('debug', stream), text: () => chunks.join('') }
}

const servers: TestServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

describe('logs', () => {
  it('write one structured debug line per request with its id, method, mount, operation, status and duration', async () => {
    const logs = captureLogs()
    const server = await startTestServer({ logger: logs.logger })
    servers.push(server)
    const res = await server.call('POST', 'secret/data/app', { body: { data: { v: '1' } } })
    const lines = logs
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const line = lines.find((l) => l.request_id === res.headers.get('x-request-id'))
    expect(line).toMatchObject({
      level: 20,
      msg: 'request',
      method: 'POST',
      mount_type: 'kv',
      mount_point: 'secret/',
      operation: 'create',
      status: 200,
      duration_ms: expect.any(Number),
    })
  })

  it('never contain a token, password, secret-id, root credential, JWT, key share or KV value', async () => {
    const logs = captureLogs()
    const secrets: string[] = []
    const secret = (label: string) => {
      const value = `${label}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`
      secrets.push(value)
      return value
    }

    // sys/init returns the unseal keys and the root token.
    const fresh = await startTestServer({ logger: logs.logger, uninitialized: true })
    servers.push(fresh)
    const init = await fresh.call('PUT', 'sys/init', {
      token: null,
      body: { secret_shares: 1, secret_threshold: 1 },
    })
    expect(init.status).toBe(200)
    secrets.push(init.body.root_token, ...init.body.keys, ...init.body.keys_base64)

    const server = await startTestServer({ logger: logs.logger })
    servers.push(server)
    secrets.push(server.rootToken, ...server.unsealKeys)
    const audit = await enableFileAudit(server)

    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
    })
    secrets.push(created.body.auth.client_token, created.body.auth.accessor)
    const kvValue = secret('kv')
    await server.call('POST', 'secret/data/app', { body: { data: { password: kvValue } } })
    await server.call('GET', 'secret/data/app')
    await server.call('GET', 'secret/data/app', { token: created.body.auth.client_token })

    const jwt = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(secret('jwt-claims')).toString('base64url')}.c2ln`
    secrets.push(jwt)
    const attempts: Array<[string, string, unknown, Record<string, string>?]> = [
      ['POST', 'auth/approle/login', { role_id: secret('role'), secret_id: secret('secret-id') }],
      ['POST', 'auth/userpass/login/alice', { password: secret('password') }],
      ['POST', 'auth/jwt/login', { role: 'ci', jwt }],
      [
        'POST',
        'database/config/pg',
        {
          connection_url: `postgres://admin:${secret('rootpw')}@db/x`,
          password: secret('rootpw2'),
        },
      ],
      ['POST', 'secret/data/bad-json', `{"data": {"password": "${secret('badjson')}"`],
      ['GET', `secret/data/app?token=${secret('query')}`, undefined],
      ['POST', 'sys/audit-hash/file', { input: secret('hash-input') }],
      ['GET', 'secret/data/app', undefined, { 'X-Vault-Token': secret('sts.bogus') }],
      ['GET', 'sys/mounts', undefined, { Authorization: `Bearer ${secret('bearer')}` }],
      ['POST', 'auth/token/create', { id: secret('custom-token-id'), policies: ['default'] }],
      ['POST', 'sys/unseal', { key: secret('share') }],
    ]
    for (const [method, path, body, headers] of attempts) {
      await server.call(method, path, { body, headers, token: headers ? null : undefined })
    }
    // Failing audit device: its error is logged, never the entry.
    await audit.breakDevice()
    await server.call('POST', 'secret/data/app', {
      body: { data: { password: secret('during-failure') } },
    })
    audit.fixDevice()

    const text = logs.text()
    expect(text.split('\n').filter(Boolean).length).toBeGreaterThan(attempts.length)
    expect(text).toContain('audit device failed to record request')
    for (const s of secrets)
      expect(text, `log contains a secret (${s.slice(0, 6)}...)`).not.toContain(s)
    expect(text).not.toContain('hmac-sha256:')
  })
})
