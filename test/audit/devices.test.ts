import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyAuditLog, toLogFile } from '../../src/audit/verify.js'
import { enableFileAudit, type AuditLine } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

describe('sys/audit', () => {
  it('lists an enabled file device with its type, options and path, also at the top level', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const res = await server.call('GET', 'sys/audit')
    expect(res.status).toBe(200)
    const info = {
      type: 'file',
      description: '',
      options: { file_path: audit.filePath },
      local: false,
      path: 'file/',
    }
    expect(res.body.data['file/']).toEqual(info)
    expect(res.body['file/']).toEqual(info)
  })

  it('needs sudo: a token with a policy granting only read/update on sys/audit is denied', async () => {
    server = await startTestServer()
    await server.call('PUT', 'sys/policies/acl/auditor', {
      body: { policy: 'path "sys/audit*" { capabilities = ["read", "update", "list"] }' },
    })
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['auditor'] },
    })
    const token = created.body.auth.client_token
    expect((await server.call('GET', 'sys/audit', { token })).status).toBe(403)
    expect(
      (
        await server.call('PUT', 'sys/audit/file', {
          token,
          body: { type: 'file', options: { file_path: 'discard' } },
        })
      ).status,
    ).toBe(403)
  })

  it('rejects an unknown type, a missing file_path and an unwritable file with a 400', async () => {
    server = await startTestServer()
    const put = (body: unknown) => server.call('PUT', 'sys/audit/x', { body })
    expect((await put({ type: 'syslog' })).status).toBe(400)
    expect((await put({ type: 'file', options: {} })).status).toBe(400)
    const notADir = join(mkdtempSync(join(tmpdir(), 'stint-audit-')), 'file')
    writeFileSync(notADir, 'x')
    const bad = await put({ type: 'file', options: { file_path: join(notADir, 'audit.log') } })
    expect(bad.status).toBe(400)
    // Node's recursive mkdir never settles under /proc; enabling must still answer.
    expect(
      (await put({ type: 'file', options: { file_path: '/proc/nope/audit.log' } })).status,
    ).toBe(400)
    expect((await server.call('GET', 'sys/audit')).body.data).toEqual({})
  })

  it('refuses a second device at the same path', async () => {
    server = await startTestServer()
    await enableFileAudit(server)
    const again = await server.call('PUT', 'sys/audit/file', {
      body: { type: 'file', options: { file_path: 'discard' } },
    })
    expect(again.status).toBe(400)
  })

  it('disables a device: the file gets a close checkpoint and no further entries', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    expect((await server.call('DELETE', 'sys/audit/file')).status).toBe(204)
    const before = audit.lines().length
    await server.call('GET', 'sys/mounts')
    expect(audit.lines().length).toBe(before)
    expect(audit.lines().at(-1)).toMatchObject({ type: 'checkpoint', reason: 'close' })
    expect((await server.call('GET', 'sys/audit')).body.data).toEqual({})
  })

  it('keeps devices across seal and unseal, and the chain still verifies', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    await server.call('GET', 'sys/mounts')
    await server.services.seal.seal()
    await server.call('PUT', 'sys/unseal', { token: null, body: { key: server.unsealKeys[0] } })
    expect(server.services.seal.sealed).toBe(false)
    await server.call('POST', 'secret/data/after-unseal', { body: { data: { a: 'b' } } })
    const res = await server.call('GET', 'sys/audit')
    expect(Object.keys(res.body.data)).toEqual(['file/'])
    const result = verifyAuditLog(
      [toLogFile('audit.log', readFileSync(audit.filePath, 'utf8'))],
      audit.publicKey,
    )
    expect(result.problem).toBeUndefined()
    expect(audit.entries().some((e) => e.request?.path === 'secret/data/after-unseal')).toBe(true)
  })
})

describe('audit entries', () => {
  it('writes a request and a response entry per call, in Vault shape, with every secret hashed', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const put = await server.call('POST', 'secret/data/app', {
      body: { data: { password: 'hunter2-kv' } },
    })
    expect(put.status).toBe(200)
    const got = await server.call('GET', 'secret/data/app')
    expect(got.body.data.data.password).toBe('hunter2-kv')

    const text = readFileSync(audit.filePath, 'utf8')
    expect(text).not.toContain('hunter2-kv')
    expect(text).not.toContain(server.rootToken)

    const pair = audit.entries().filter((e) => e.request.path === 'secret/data/app')
    expect(pair.map((e) => `${e.type}:${e.request.operation}`)).toEqual([
      'request:create',
      'response:create',
      'request:read',
      'response:read',
    ])
    const [req, , , res] = pair as [AuditLine, unknown, unknown, AuditLine]
    const hash = await server.call('POST', 'sys/audit-hash/file', { body: { input: 'hunter2-kv' } })
    expect(hash.body.data.hash).toMatch(/^hmac-sha256:[0-9a-f]{64}$/)
    expect(req.request.data.data.password).toBe(hash.body.data.hash)
    expect(res.response.data.data.password).toBe(hash.body.data.hash)
    expect(req.request).toMatchObject({
      mount_point: 'secret/',
      mount_type: 'kv',
      namespace: { id: 'root' },
      remote_address: expect.any(String),
      client_token: expect.stringMatching(/^hmac-sha256:/),
      client_token_accessor: expect.stringMatching(/^hmac-sha256:/),
    })
    expect(req.auth).toMatchObject({ policies: ['root'], token_type: 'service' })
    expect(req.auth.client_token).toBe(req.request.client_token)
    const tokenHash = await server.call('POST', 'sys/audit-hash/file', {
      body: { input: server.rootToken },
    })
    expect(req.request.client_token).toBe(tokenHash.body.data.hash)
    // RFC 3339 timestamps stay readable.
    expect(res.response.data.metadata.created_time).toBe(got.body.data.metadata.created_time)
  })

  it('hashes the new token and accessor in a token create response but keeps policies in clear', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
    })
    const { client_token: token, accessor } = created.body.auth
    const text = readFileSync(audit.filePath, 'utf8')
    expect(text).not.toContain(token)
    expect(text).not.toContain(accessor)
    const res = audit
      .entries()
      .find((e) => e.type === 'response' && e.request.path === 'auth/token/create')!
    const h = await server.call('POST', 'sys/audit-hash/file', { body: { input: token } })
    expect(res.response.auth.client_token).toBe(h.body.data.hash)
    expect(res.response.auth.accessor).toMatch(/^hmac-sha256:/)
    expect(res.response.auth.policies).toEqual(['default'])
  })

  it('writes accessors in clear with hmac_accessor=false, and everything in clear with log_raw', async () => {
    server = await startTestServer()
    const clear = await enableFileAudit(server, { path: 'acc', extra: { hmac_accessor: 'false' } })
    const raw = await enableFileAudit(server, { path: 'raw', extra: { log_raw: 'true' } })
    await server.call('POST', 'secret/data/raw', { body: { data: { v: 'clear-value' } } })
    const rootAccessor = (await server.call('GET', 'auth/token/lookup-self')).body.data.accessor
    const a = clear.entries().find((e) => e.request.path === 'secret/data/raw')!
    expect(a.request.client_token_accessor).toBe(rootAccessor)
    expect(a.request.client_token).toMatch(/^hmac-sha256:/)
    expect(a.request.data.data.v).toMatch(/^hmac-sha256:/)
    const r = raw.entries().find((e) => e.request.path === 'secret/data/raw')!
    expect(r.request.data.data.v).toBe('clear-value')
  })

  it('records the error of a failed request in its response entry', async () => {
    server = await startTestServer()
    const audit = await enableFileAudit(server)
    const res = await server.call('GET', 'secret/data/missing')
    expect(res.status).toBe(404)
    const entry = audit
      .entries()
      .find((e) => e.type === 'response' && e.request.path === 'secret/data/missing')!
    expect(entry.error).toBeDefined()
  })

  it('gives each device its own salt', async () => {
    server = await startTestServer()
    await enableFileAudit(server, { path: 'a' })
    await enableFileAudit(server, { path: 'b' })
    const ha = await server.call('POST', 'sys/audit-hash/a', { body: { input: 'x' } })
    const hb = await server.call('POST', 'sys/audit-hash/b', { body: { input: 'x' } })
    expect(ha.body.data.hash).not.toBe(hb.body.data.hash)
    expect(
      (await server.call('POST', 'sys/audit-hash/none', { body: { input: 'x' } })).status,
    ).toBe(400)
  })

  it('stores the salt and signing key sealed, never in clear', async () => {
    server = await startTestServer()
    await enableFileAudit(server)
    const row = await server.storage.db
      .selectFrom('audit_devices')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(row.salt).toMatch(/^\d+:/)
    expect(row.signing_key).toMatch(/^\d+:/)
    expect(row.public_key).toMatch(/^ed25519:/)
  })
})
