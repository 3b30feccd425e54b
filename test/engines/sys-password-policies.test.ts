import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/core/logger.js'
import { enableFileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

const POLICY = `length = 30
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 2
}
rule "charset" {
  charset = "0123456789"
  min-chars = 3
}
rule "charset" {
  charset = "!#%*+-_"
  min-chars = 1
}
`
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789!#%*+-_'

describe('sys/policies/password', () => {
  let server: TestServer
  const logLines: string[] = []

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk))
        done()
      },
    })
    server = await startTestServer({ logger: createLogger('debug', stream) })
  })

  afterAll(async () => {
    await server?.close()
  })

  const put = (name: string, policy: unknown) =>
    server.call('PUT', `sys/policies/password/${name}`, { body: { policy } })

  const expect400 = (res: { status: number; body: any }, pattern: RegExp) => {
    expect(res.status, JSON.stringify(res.body)).toBe(400)
    expect(Object.keys(res.body)).toEqual(['errors'])
    expect(res.body.errors.join(' ')).toMatch(pattern)
  }

  it('answers LIST with a 404 while there is no policy', async () => {
    expect((await server.call('LIST', 'sys/policies/password')).status).toBe(404)
  })

  it('writes a policy, reads back its text and lists it', async () => {
    expect((await put('app', POLICY)).status).toBe(204)
    const read = await server.call('GET', 'sys/policies/password/app')
    expect(read.status).toBe(200)
    expect(read.body.data).toEqual({ policy: POLICY })
    expect(
      (await server.call('POST', 'sys/policies/password/Zeta', { body: { policy: POLICY } }))
        .status,
    ).toBe(204)
    const list = await server.call('LIST', 'sys/policies/password')
    expect(list.status).toBe(200)
    expect(list.body.data.keys).toEqual(['Zeta', 'app'])
  })

  it('keeps names case-sensitive, as Vault does', async () => {
    expect((await server.call('GET', 'sys/policies/password/zeta')).status).toBe(404)
    expect((await server.call('GET', 'sys/policies/password/Zeta')).status).toBe(200)
  })

  it('accepts base64 policy text and stores it decoded', async () => {
    const json = JSON.stringify({ length: 12, rule: { charset: { charset: 'abc123' } } })
    expect((await put('b64', Buffer.from(json).toString('base64'))).status).toBe(204)
    const read = await server.call('GET', 'sys/policies/password/b64')
    expect(read.body.data.policy).toBe(json)
    const generated = await server.call('GET', 'sys/policies/password/b64/generate')
    expect(generated.body.data.password).toMatch(/^[abc123]{12}$/)
  })

  it('generates passwords that follow the policy', async () => {
    for (let i = 0; i < 100; i++) {
      const res = await server.call('GET', 'sys/policies/password/app/generate')
      expect(res.status).toBe(200)
      const password = res.body.data.password as string
      expect(password).toHaveLength(30)
      expect([...password].every((c) => ALPHABET.includes(c))).toBe(true)
      expect(password.replace(/[^a-z]/g, '').length).toBeGreaterThanOrEqual(2)
      expect(password.replace(/[^0-9]/g, '').length).toBeGreaterThanOrEqual(3)
      expect(password.replace(/[^!#%*+\-_]/g, '').length).toBeGreaterThanOrEqual(1)
    }
  })

  it('answers 404 for reading or generating from a missing policy', async () => {
    expect((await server.call('GET', 'sys/policies/password/nope')).status).toBe(404)
    const generated = await server.call('GET', 'sys/policies/password/nope/generate')
    expect(generated.status).toBe(404)
    expect(generated.body.errors).toEqual(['password policy "nope" does not exist'])
  })

  it('refuses bad policies with a 400 and writes nothing', async () => {
    expect400(
      await put('bad', 'length = 3\nrule "charset" {\n  charset = "ab"\n}'),
      /length must be/,
    )
    expect400(await put('bad', 'length = 20'), /at least one rule/)
    expect400(await put('bad', 'length = 20\nrule "charset" {\n  charset = ""\n}'), /non-empty/)
    expect400(
      await put(
        'bad',
        'length = 20\nrule "charset" {\n  charset = "ab"\n}\nrule "other" {\n  x = 1\n}',
      ),
      /unknown rule type "other"/,
    )
    expect400(
      await put('bad', 'length = 20\nrule "charset" {\n  charset = "a b"\n}'),
      /printable ASCII/,
    )
    expect400(
      await put(
        'bad',
        'length = 10\nrule "charset" {\n  charset = "abcdefghijklmnopqrstuvwxyz"\n}\nrule "charset" {\n  charset = "#"\n  min-chars = 9\n}',
      ),
      /rules are too tight: fewer than 1% of 2000 random candidates met every rule/,
    )
    expect400(await put('bad', ''), /'policy' parameter not supplied or empty/)
    expect400(await server.call('PUT', 'sys/policies/password/bad', { body: {} }), /not supplied/)
    expect400(await put('bad', { length: 20 }), /not supplied/)
    expect((await server.call('GET', 'sys/policies/password/bad')).status).toBe(404)
  })

  it('keeps the old policy when an update is refused', async () => {
    expect400(await put('app', 'length = 2'), /length must be/)
    expect((await server.call('GET', 'sys/policies/password/app')).body.data.policy).toBe(POLICY)
  })

  it('refuses invalid names and path tricks', async () => {
    for (const name of ['has%20space', 'semi%3Bcolon', 'x'.repeat(129), '..', '.']) {
      const res = await put(name, POLICY)
      expect(res.status, name).toBeGreaterThanOrEqual(400)
      expect(res.status, name).toBeLessThan(500)
    }
    expect400(await put('has%20space', POLICY), /invalid password policy name/)
    expect400(await put('x'.repeat(129), POLICY), /invalid password policy name/)
    // Dot segments are resolved before routing: they never reach a policy name.
    for (const path of ['%2E%2E', '%2E%2E/generate', '.', './generate']) {
      const res = await server.call('GET', `sys/policies/password/${path}`)
      expect(res.status, path).toBeGreaterThanOrEqual(400)
      expect(res.status, path).toBeLessThan(500)
    }
    expect((await put('x'.repeat(128), POLICY)).status).toBe(204)
    expect((await server.call('LIST', 'sys/policies/password')).body.data.keys).not.toContain('..')
  })

  it('deletes a policy; deleting a missing one also answers 204', async () => {
    expect((await put('gone', POLICY)).status).toBe(204)
    expect((await server.call('DELETE', 'sys/policies/password/gone')).status).toBe(204)
    expect((await server.call('GET', 'sys/policies/password/gone')).status).toBe(404)
    expect((await server.call('DELETE', 'sys/policies/password/gone')).status).toBe(204)
  })

  it('is not granted by the default policy', async () => {
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
    })
    const token = created.body.auth.client_token as string
    expect((await server.call('GET', 'sys/policies/password/app', { token })).status).toBe(403)
    expect((await server.call('GET', 'sys/policies/password/app/generate', { token })).status).toBe(
      403,
    )
    expect((await server.call('LIST', 'sys/policies/password', { token })).status).toBe(403)
    const write = await server.call('PUT', 'sys/policies/password/mine', {
      token,
      body: { policy: POLICY },
    })
    expect(write.status).toBe(403)
    expect((await server.call('DELETE', 'sys/policies/password/app', { token })).status).toBe(403)
  })

  it('is granted by an ACL policy on its paths', async () => {
    const acl = 'path "sys/policies/password/app/generate" { capabilities = ["read"] }'
    expect(
      (await server.call('PUT', 'sys/policies/acl/gen', { body: { policy: acl } })).status,
    ).toBe(204)
    const created = await server.call('POST', 'auth/token/create', { body: { policies: ['gen'] } })
    const token = created.body.auth.client_token as string
    expect((await server.call('GET', 'sys/policies/password/app/generate', { token })).status).toBe(
      200,
    )
    expect((await server.call('GET', 'sys/policies/password/app', { token })).status).toBe(403)
  })

  it('HMACs the generated password in the audit log, and never logs it', async () => {
    const audit = await enableFileAudit(server)
    const res = await server.call('GET', 'sys/policies/password/app/generate')
    const password = res.body.data.password as string
    const entry = audit
      .entries()
      .find(
        (e) => e.type === 'response' && e.request?.path === 'sys/policies/password/app/generate',
      )
    expect(entry?.response?.data?.password).toMatch(/^hmac-sha256:[0-9a-f]{64}$/)
    expect(readFileSync(audit.filePath, 'utf8')).not.toContain(password)
    expect(logLines.join('')).not.toContain(password)
  })
})
