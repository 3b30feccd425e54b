import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { request } from '../support/server.js'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { generate } from 'otplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { composeServer, type Stint } from '../../src/server/compose.js'
import { createRootToken } from '../../src/engines/sys/seal.js'
import { createLogger } from '../../src/core/logger.js'

const PASSWORD = 'hunter2-but-longer-and-unique-93817'
const dir = mkdtempSync(join(tmpdir(), 'stint-userpass-logs-'))
const lines: string[] = []
let stint: Stint
let root = ''

async function call(method: string, path: string, body?: unknown, token: string | null = root) {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' }
  if (token) headers['X-Vault-Token'] = token
  const res = await request(stint.api, `/v1/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

beforeAll(async () => {
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk))
      done()
    },
  })
  stint = await composeServer({
    storage: `sqlite:${join(dir, 'stint.db')}`,
    logger: createLogger('debug', stream),
  })
  await stint.services.seal.initialize(
    1,
    1,
    async () => {
      await stint.services.policies.ensureBuiltins()
      root = await createRootToken(stint.services)
    },
    true,
  )
})
afterAll(async () => {
  await stint.shutdown()
})

describe('userpass secrets in logs and audit', () => {
  it('writes neither the password nor the TOTP seed to the log or the audit log', async () => {
    const audit = await call('POST', 'sys/audit/file', {
      type: 'file',
      options: { file_path: join(dir, 'audit.log') },
    })
    expect(audit.status).toBe(204)
    expect((await call('POST', 'sys/auth/userpass', { type: 'userpass' })).status).toBe(204)
    expect((await call('POST', 'auth/userpass/users/alice', { password: PASSWORD })).status).toBe(
      204,
    )
    const enrol = await call('POST', 'auth/userpass/users/alice/totp')
    const seed = new URL(enrol.body.data.url).searchParams.get('secret')!
    expect(seed).toMatch(/^[A-Z2-7]{16,}$/)
    expect(
      (await call('POST', 'auth/userpass/login/alice', { password: 'wrong' }, null)).status,
    ).toBe(400)
    const code = await generate({ secret: seed })
    const login = await call(
      'POST',
      'auth/userpass/login/alice',
      { password: PASSWORD, totp: code },
      null,
    )
    expect(login.status).toBe(200)
    await call('POST', 'auth/userpass/users/alice/password', { password: `${PASSWORD}-2` })

    const logText = lines.join('')
    expect(logText).toContain('"mount_type":"userpass"')
    const auditText = readFileSync(join(dir, 'audit.log'), 'utf8')
    expect(auditText).toContain('auth/userpass/login/alice')
    for (const text of [logText, auditText]) {
      expect(text).not.toContain(PASSWORD)
      expect(text).not.toContain(seed)
      expect(text).not.toContain(login.body.auth.client_token)
    }
  })
})
