import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toLogFile, verifyAuditLog } from '../../src/audit/verify.js'
import {
  mountDatabase,
  must,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from '../engines/database-fixtures.js'
import { enableFileAudit, type FileAudit } from '../support/audit.js'
import { startTestServer, type TestServer } from '../support/server.js'

/*
 * The acceptance run: logins, KV reads and writes, database credential issuance and
 * revocation with a file device; then the same credential request with the device broken.
 */
describe('an audited session end to end', () => {
  let server: TestServer
  let audit: FileAudit
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>
  const secrets: string[] = []

  beforeAll(async () => {
    fixture = await pgGroupFixture()
    server = await startTestServer()
    audit = await enableFileAudit(server)
    await mountDatabase(server)
    must(await server.call('POST', 'database/config/pg', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/ro', {
        body: {
          db_name: 'pg',
          creation_statements: pgGroupCreation(fixture.group),
          default_ttl: '1h',
        },
      }),
      204,
    )
    must(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }), 204)
    must(await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } }), 204)
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await fixture?.drop()
  })

  const pairsFor = (path: string) => {
    const entries = audit.entries().filter((e) => e.request.path === path)
    return {
      requests: entries.filter((e) => e.type === 'request'),
      responses: entries.filter((e) => e.type === 'response'),
    }
  }
  const auditHash = async (input: string) =>
    must(await server.call('POST', 'sys/audit-hash/file', { body: { input } })).data.hash as string

  it('records a pair of entries for each step with every secret hashed, and the log verifies', async () => {
    const password = `pw-${Math.random().toString(36).slice(2)}`
    secrets.push(password)
    must(
      await server.call('POST', 'auth/userpass/users/alice', {
        body: { password, policies: 'default' },
      }),
      204,
    )
    const login = must(
      await server.call('POST', 'auth/userpass/login/alice', { token: null, body: { password } }),
    )
    secrets.push(login.auth.client_token, login.auth.accessor)

    must(
      await server.call('POST', 'auth/approle/role/svc', { body: { token_policies: 'default' } }),
      204,
    )
    const roleId = must(await server.call('GET', 'auth/approle/role/svc/role-id')).data.role_id
    const secretId = must(
      await server.call('POST', 'auth/approle/role/svc/secret-id', { body: {} }),
    ).data.secret_id
    secrets.push(secretId)
    const appLogin = must(
      await server.call('POST', 'auth/approle/login', {
        token: null,
        body: { role_id: roleId, secret_id: secretId },
      }),
    )
    secrets.push(appLogin.auth.client_token)

    const kvValue = `kv-${Math.random().toString(36).slice(2)}`
    secrets.push(kvValue)
    must(await server.call('POST', 'secret/data/app', { body: { data: { api_key: kvValue } } }))
    must(await server.call('GET', 'secret/data/app'))

    const creds = must(await server.call('GET', 'database/creds/ro'))
    secrets.push(creds.data.password)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }), 204)

    for (const path of [
      'auth/userpass/login/alice',
      'auth/approle/login',
      'secret/data/app',
      'database/creds/ro',
      'sys/leases/revoke',
    ]) {
      const { requests, responses } = pairsFor(path)
      expect(requests.length, path).toBeGreaterThan(0)
      expect(responses.length, path).toBe(requests.length)
    }
    const text = readFileSync(audit.filePath, 'utf8')
    for (const s of secrets) expect(text).not.toContain(s)

    const issued = pairsFor('database/creds/ro').responses[0]!
    expect(issued.response.data.password).toBe(await auditHash(creds.data.password))
    expect(issued.response.secret.lease_id).toBe(creds.lease_id)
    const userLogin = pairsFor('auth/userpass/login/alice')
    expect(userLogin.requests[0]!.request.data.password).toBe(await auditHash(password))
    expect(userLogin.responses[0]!.response.auth.client_token).toBe(
      await auditHash(login.auth.client_token),
    )
    expect(pairsFor('auth/approle/login').requests[0]!.request.data.secret_id).toBe(
      await auditHash(secretId),
    )

    const result = verifyAuditLog(
      [toLogFile('audit.log', readFileSync(audit.filePath, 'utf8'))],
      audit.publicKey,
    )
    expect(result.problem).toBeUndefined()
  })

  it('refuses database credentials when the audit file is unwritable, and creates no database user', async () => {
    const users = async () =>
      (
        await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE pg_has_role(rolname, ${fixture.group}, 'member') AND rolname <> ${fixture.group}`
      )[0]!.n as number
    const before = await users()
    await audit.breakDevice()
    const res = await server.call('GET', 'database/creds/ro')
    expect(res.status).toBe(500)
    expect(res.body.errors).toEqual(['failed to audit request'])
    expect(res.body.data).toBeUndefined()
    expect(await users()).toBe(before)
    audit.fixDevice()
    // The same request with the device fixed does create one (so the count above can move).
    const creds = must(await server.call('GET', 'database/creds/ro'))
    expect(await users()).toBe(before + 1)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }), 204)
    const leases = await server.call('LIST', 'sys/leases/lookup/database/creds/ro/')
    expect(leases.status === 404 || leases.body.data.keys.length === 0).toBe(true)
    expect(await users()).toBe(before)
  })
})
