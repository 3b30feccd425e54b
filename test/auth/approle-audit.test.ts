import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer, type TestServer } from '../support/server.js'
import { githubClaims, startIssuer, type TestIssuer } from './jwt-issuer.js'

let server: TestServer
let issuer: TestIssuer
let auditFile: string

beforeAll(async () => {
  server = await startTestServer()
  issuer = await startIssuer()
  auditFile = join(mkdtempSync(join(tmpdir(), 'stint-audit-')), 'audit.log')
  const audit = await server.call('POST', 'sys/audit/file', {
    body: { type: 'file', options: { file_path: auditFile } },
  })
  expect(audit.status).toBe(204)
})

afterAll(async () => {
  await server?.close()
  await issuer?.close()
})

describe('machine logins and the audit log', () => {
  it('records JWT and AppRole logins without any JWT, role id, secret id or token in clear', async () => {
    await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } })
    await server.call('POST', 'auth/jwt/config', { body: { jwks_url: issuer.jwksUrl } })
    await server.call('POST', 'auth/jwt/role/r', {
      body: {
        role_type: 'jwt',
        user_claim: 'repository',
        bound_audiences: 'https://github.com/org',
      },
    })
    const jwt = await issuer.sign(githubClaims())
    const jwtLogin = await server.call('POST', 'auth/jwt/login', {
      token: null,
      body: { role: 'r', jwt },
    })
    expect(jwtLogin.status).toBe(200)
    const forged = `${jwt.slice(0, -4)}AAAA`
    expect(
      (
        await server.call('POST', 'auth/jwt/login', {
          token: null,
          body: { role: 'r', jwt: forged },
        })
      ).status,
    ).toBe(400)

    await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } })
    await server.call('POST', 'auth/approle/role/svc', { body: { token_policies: 'x' } })
    const roleId = (await server.call('GET', 'auth/approle/role/svc/role-id')).body.data.role_id
    const secretId = (await server.call('POST', 'auth/approle/role/svc/secret-id', { body: {} }))
      .body.data.secret_id
    const appLogin = await server.call('POST', 'auth/approle/login', {
      token: null,
      body: { role_id: roleId, secret_id: secretId },
    })
    expect(appLogin.status).toBe(200)
    const wrong = await server.call('POST', 'auth/approle/login', {
      token: null,
      body: { role_id: roleId, secret_id: `${secretId}x` },
    })
    expect(wrong.status).toBe(400)

    const log = readFileSync(auditFile, 'utf8')
    expect(log).toContain('auth/approle/login')
    expect(log).toContain('auth/jwt/login')
    for (const secret of [
      jwt.split('.')[2]!,
      forged.split('.')[2]!,
      roleId,
      secretId,
      jwtLogin.body.auth.client_token,
      appLogin.body.auth.client_token,
    ]) {
      expect(log).not.toContain(secret)
    }
  })
})
