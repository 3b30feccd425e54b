import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { generate } from 'otplib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, fakeTerminal, tempHome } from './harness.js'

describe('stint login', () => {
  let server: TestServer
  let address: string

  beforeAll(async () => {
    server = await startTestServer()
    address = (await server.listen()).address
    const ok = (r: { status: number; body: unknown }) => {
      if (r.status >= 300) throw new Error(`setup failed: ${r.status} ${JSON.stringify(r.body)}`)
    }
    ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
    ok(await server.call('POST', 'sys/auth/people', { body: { type: 'userpass' } }))
    ok(
      await server.call('POST', 'auth/userpass/users/alice', {
        body: { password: 'correct horse', token_policies: ['default'] },
      }),
    )
    ok(await server.call('POST', 'auth/people/users/bob', { body: { password: 'battery staple' } }))
    ok(await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } }))
    ok(
      await server.call('POST', 'auth/approle/role/svc', { body: { token_policies: ['default'] } }),
    )
  })
  afterAll(async () => {
    await server.close()
  })

  test('a token typed at a terminal prompt is not echoed and is stored', async () => {
    const home = tempHome()
    const stdin = fakeTerminal([server.rootToken])
    const res = await cli(['login'], { address, home, stdin })
    expect(res.code).toBe(0)
    expect(res.stderr).toContain('Token (will be hidden): ')
    expect(res.stderr + res.stdout).not.toContain(server.rootToken)
    expect(stdin.rawModes).toEqual([true, false])
    expect(readFileSync(join(home, '.stint-token'), 'utf8')).toBe(server.rootToken)
  })

  test('the stored token is used by later commands', async () => {
    const home = tempHome()
    await cli(['login', server.rootToken], { address, home })
    const res = await cli(['token', 'lookup', '-field=display_name'], { address, home })
    expect(res).toMatchObject({ code: 0, stdout: 'root' })
  })

  test('-format=json output of a stored login leaves the token out', async () => {
    const res = await cli(['login', '-format=json', server.rootToken], { address })
    expect(res.code).toBe(0)
    const body = JSON.parse(res.stdout)
    expect(body.auth.policies).toEqual(['root'])
    expect(res.stdout).not.toContain(server.rootToken)
  })

  test('-no-store prints the token instead of storing it', async () => {
    const home = tempHome()
    const res = await cli(['login', '-no-store', '-field=token', server.rootToken], {
      address,
      home,
    })
    expect(res).toMatchObject({ code: 0, stdout: server.rootToken })
    const later = await cli(['token', 'lookup'], { address, home })
    expect(later.code).toBe(1)
  })

  test('userpass login prompts for the password without echo', async () => {
    const home = tempHome()
    const stdin = fakeTerminal(['correct horse'])
    const res = await cli(['login', '-method=userpass', 'username=alice'], { address, home, stdin })
    expect(res.code).toBe(0)
    expect(res.stderr).toContain('Password (will be hidden): ')
    expect(res.stderr + res.stdout).not.toContain('correct horse')
    expect(res.stdout).toMatch(/^token_meta_username\s+alice$/m)
    const token = readFileSync(join(home, '.stint-token'), 'utf8')
    const who = await cli(['token', 'lookup', '-field=path'], { address, home })
    expect(who.stdout).toBe('auth/userpass/login/alice')
    expect(token).not.toBe(server.rootToken)
  })

  test('userpass login with -path uses another mount and reads the password from stdin', async () => {
    const res = await cli(['login', '-method=userpass', '-path=people', 'username=bob'], {
      address,
      stdin: 'battery staple\n',
    })
    expect(res.code).toBe(0)
  })

  test('a wrong userpass password exits 1 with the server error and stores nothing', async () => {
    const home = tempHome()
    const res = await cli(['login', '-method=userpass', 'username=alice', 'password=nope'], {
      address,
      home,
    })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('Code: 400')
    expect(res.stderr).not.toContain('nope')
    expect(() => readFileSync(join(home, '.stint-token'))).toThrow()
  })

  test('userpass login asks for a TOTP code when the user has enrolled one', async () => {
    await server.call('POST', 'auth/userpass/users/carol', { body: { password: 'pw-carol' } })
    const enrolled = await server.call('POST', 'auth/userpass/users/carol/totp')
    const seed = new URL(enrolled.body.data.url).searchParams.get('secret')!
    const code = await generate({ secret: seed })
    const stdin = fakeTerminal(['pw-carol', code])
    const res = await cli(['login', '-method=userpass', 'username=carol'], { address, stdin })
    expect(res.code).toBe(0)
    expect(res.stderr).toContain('TOTP code (will be hidden): ')
    expect(res.stderr + res.stdout).not.toContain(code)
    expect(stdin.rawModes).toEqual([true, false, true, false])
  })

  test('approle login reads the secret id from a file', async () => {
    const roleId = (await server.call('GET', 'auth/approle/role/svc/role-id')).body.data.role_id
    const secretId = (await server.call('POST', 'auth/approle/role/svc/secret-id')).body.data
      .secret_id
    const home = tempHome()
    const file = join(home, 'secret-id')
    writeFileSync(file, `${secretId}\n`)
    const res = await cli(['login', '-method=approle', `role_id=${roleId}`, `secret_id=@${file}`], {
      address,
      home,
    })
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^token_meta_role_name\s+svc$/m)
    expect(res.stdout).not.toContain(secretId)
  })

  test('jwt login sends the role and a JWT read from a file', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } })
    const cfg = await server.call('POST', 'auth/jwt/config', {
      body: {
        jwt_validation_pubkeys: [await exportSPKI(publicKey)],
        bound_issuer: 'https://ci.test',
      },
    })
    expect(cfg.status).toBeLessThan(300)
    const role = await server.call('POST', 'auth/jwt/role/ci', {
      body: {
        role_type: 'jwt',
        bound_audiences: ['stint'],
        user_claim: 'sub',
        token_policies: ['default'],
      },
    })
    expect(role.status).toBeLessThan(300)
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('https://ci.test')
      .setAudience('stint')
      .setSubject('repo:acme/app')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
    const home = tempHome()
    const file = join(home, 'token.jwt')
    writeFileSync(file, jwt)
    const res = await cli(['login', '-method=jwt', 'role=ci', `jwt=@${file}`], { address, home })
    expect(res.code).toBe(0)
    expect(res.stdout).not.toContain(jwt)
    expect(res.stdout).toMatch(/^policies\s+\[default\]$/m)
  })

  test('an unknown method is a usage error', async () => {
    const res = await cli(['login', '-method=ldap'], { address })
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('Unknown auth method "ldap"')
  })
})
