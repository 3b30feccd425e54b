import { existsSync, readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { passwordStats } from '../../src/auth/userpass/password.js'
import { secretFromUrl, startUserpassServer, type UserpassServer } from './userpass-helpers.js'

let t: UserpassServer
beforeEach(async () => {
  t = await startUserpassServer()
})
afterEach(async () => {
  await t.server.close()
})

const PASSWORD = 'correct horse battery staple 42'

async function createUser(name = 'alice', extra: Record<string, unknown> = {}) {
  const res = await t.server.call('POST', `auth/userpass/users/${name}`, {
    body: { password: PASSWORD, token_policies: 'dev', ...extra },
  })
  expect(res.status).toBe(204)
}

async function enrolTotp(name = 'alice'): Promise<string> {
  const res = await t.server.call('POST', `auth/userpass/users/${name}/totp`)
  expect(res.status).toBe(200)
  expect(res.body.data.url).toMatch(
    new RegExp(`^otpauth://totp/Stint:${name}\\?secret=[A-Z2-7]+&issuer=Stint`),
  )
  return secretFromUrl(res.body.data.url)
}

describe('userpass users', () => {
  it('reads a user back with its token fields and never its password or hash', async () => {
    await createUser('alice', { token_ttl: '1h' })
    const res = await t.server.call('GET', 'auth/userpass/users/alice')
    expect(res.status).toBe(200)
    expect(res.body.data.token_policies).toEqual(['dev'])
    expect(res.body.data.token_ttl).toBe(3600)
    const text = JSON.stringify(res.body)
    expect(text).not.toContain(PASSWORD)
    expect(text).not.toContain('argon2')
  })

  it('stores the password only as an argon2id hash', async () => {
    await createUser()
    const row = await t.server.storage.db
      .selectFrom('userpass_users')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(row.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  })

  it('lists users and treats usernames case-insensitively', async () => {
    await createUser('Bob')
    await createUser('alice')
    const list = await t.server.call('LIST', 'auth/userpass/users')
    expect(list.body.data.keys).toEqual(['alice', 'bob'])
    expect((await t.login('BOB', { password: PASSWORD })).status).toBe(200)
  })

  it('refuses to create a user without a password', async () => {
    const res = await t.server.call('POST', 'auth/userpass/users/carol', {
      body: { token_policies: 'dev' },
    })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['missing password'])
    expect((await t.server.call('GET', 'auth/userpass/users/carol')).status).toBe(404)
  })

  it('refuses the root policy for a user', async () => {
    const res = await t.server.call('POST', 'auth/userpass/users/eve', {
      body: { password: 'x', token_policies: 'root' },
    })
    expect(res.status).toBe(400)
  })

  it('deletes a user, after which logins fail', async () => {
    await createUser()
    expect((await t.server.call('DELETE', 'auth/userpass/users/alice')).status).toBe(204)
    expect((await t.login('alice', { password: PASSWORD })).status).toBe(400)
  })
  it('forgets its users when the mount is disabled', async () => {
    await createUser()
    expect((await t.server.call('DELETE', 'sys/auth/userpass')).status).toBe(204)
    await t.server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
    expect((await t.server.call('LIST', 'auth/userpass/users')).status).toBe(404)
    const rows = await t.server.storage.db.selectFrom('userpass_users').select('id').execute()
    expect(rows).toEqual([])
  })
})

describe('userpass login', () => {
  it('returns a token with the user policies, metadata and a display name', async () => {
    await createUser()
    const res = await t.login('alice', { password: PASSWORD })
    expect(res.status).toBe(200)
    expect(res.body.auth.policies).toEqual(['default', 'dev'])
    expect(res.body.auth.metadata).toEqual({ username: 'alice' })
    expect(res.body.auth.entity_id).toMatch(/^[0-9a-f-]{36}$/)
    const self = await t.server.call('GET', 'auth/token/lookup-self', {
      token: res.body.auth.client_token,
    })
    expect(self.body.data.display_name).toBe('userpass-alice')
    expect(self.body.data.path).toBe('auth/userpass/login/alice')
  })

  it('gives the same answer for a wrong password and an unknown user', async () => {
    await createUser()
    const wrong = await t.login('alice', { password: 'nope' })
    const unknown = await t.login('mallory', { password: 'nope' })
    expect(wrong.status).toBe(400)
    expect(unknown.status).toBe(400)
    expect(wrong.body.errors).toEqual(['invalid username or password'])
    expect(unknown.body).toEqual(wrong.body)
  })

  it('runs one argon2 verification for an unknown user too, so timing does not reveal it', async () => {
    const before = passwordStats.verifications
    expect((await t.login('nobody', { password: 'guess' })).status).toBe(400)
    expect(passwordStats.verifications - before).toBe(1)
  })

  it('requires a password', async () => {
    await createUser()
    const res = await t.login('alice', {})
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['missing password'])
  })

  it('accepts only the new password after a password change', async () => {
    await createUser()
    const change = await t.server.call('POST', 'auth/userpass/users/alice/password', {
      body: { password: 'new-secret-1' },
    })
    expect(change.status).toBe(204)
    expect((await t.login('alice', { password: PASSWORD })).status).toBe(400)
    expect((await t.login('alice', { password: 'new-secret-1' })).status).toBe(200)
  })

  it('updates the policies of later logins through users/<name>/policies', async () => {
    await createUser()
    await t.server.call('POST', 'auth/userpass/users/alice/policies', {
      body: { policies: 'ops,dev' },
    })
    const res = await t.login('alice', { password: PASSWORD })
    expect(res.body.auth.policies).toEqual(['default', 'dev', 'ops'])
  })
})

describe('userpass TOTP', () => {
  it('requires a code after enrolment and says so, so the CLI can prompt', async () => {
    await createUser()
    await enrolTotp()
    const res = await t.login('alice', { password: PASSWORD })
    expect(res.status).toBe(400)
    expect(res.body.errors).toEqual(['TOTP code required'])
  })

  it('accepts a fresh code and refuses a wrong one', async () => {
    await createUser()
    const secret = await enrolTotp()
    const code = await t.totpCode(secret)
    const wrong = code === '000000' ? '111111' : '000000'
    expect((await t.login('alice', { password: PASSWORD, totp: wrong })).status).toBe(400)
    const ok = await t.login('alice', { password: PASSWORD, totp: code })
    expect(ok.status).toBe(200)
  })

  it('refuses a code that was already used, and older codes, but accepts the next step', async () => {
    await createUser()
    const secret = await enrolTotp()
    const first = await t.totpCode(secret)
    const previousStep = await t.totpCode(secret, t.clock.now - 30_000)
    expect((await t.login('alice', { password: PASSWORD, totp: first })).status).toBe(200)
    const replay = await t.login('alice', { password: PASSWORD, totp: first })
    expect(replay.status).toBe(400)
    expect(replay.body.errors).toEqual(['invalid or already used TOTP code'])
    if (previousStep !== first) {
      expect((await t.login('alice', { password: PASSWORD, totp: previousStep })).status).toBe(400)
    }
    t.clock.now += 30_000
    const next = await t.totpCode(secret)
    expect((await t.login('alice', { password: PASSWORD, totp: next })).status).toBe(200)
  })

  it('refuses the same code sent by two concurrent logins except once', async () => {
    await createUser()
    const secret = await enrolTotp()
    const code = await t.totpCode(secret)
    const results = await Promise.all(
      [1, 2, 3].map((i) => t.login('alice', { password: PASSWORD, totp: code }, `10.9.0.${i}`)),
    )
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400])
  })

  it('no longer asks for a code once TOTP is removed', async () => {
    await createUser()
    await enrolTotp()
    expect((await t.server.call('DELETE', 'auth/userpass/users/alice/totp')).status).toBe(204)
    expect((await t.login('alice', { password: PASSWORD })).status).toBe(200)
  })
})

describe('userpass secrets at rest and in responses', () => {
  it('keeps the password and TOTP seed out of storage, in clear, and out of later responses', async () => {
    await createUser()
    const secret = await enrolTotp()
    const login = await t.login('alice', { password: PASSWORD, totp: await t.totpCode(secret) })
    expect(login.status).toBe(200)
    const responses = [
      await t.server.call('GET', 'auth/userpass/users/alice'),
      await t.server.call('GET', 'auth/userpass/users/alice/totp'),
      await t.server.call('LIST', 'auth/userpass/users'),
      await t.server.call('GET', `identity/entity/id/${login.body.auth.entity_id}`),
      login,
    ]
    for (const res of responses) {
      const text = JSON.stringify(res.body)
      expect(text).not.toContain(PASSWORD)
      expect(text).not.toContain(secret)
    }
    const row = await t.server.storage.db
      .selectFrom('userpass_users')
      .selectAll()
      .executeTakeFirstOrThrow()
    expect(row.totp_seed).toMatch(/^\d+:[A-Za-z0-9+/=]+$/)
    const file = t.server.storage.file!
    const wal = `${file}-wal`
    const bytes = Buffer.concat([
      readFileSync(file),
      existsSync(wal) ? readFileSync(wal) : Buffer.alloc(0),
    ])
    expect(bytes.includes(Buffer.from(PASSWORD))).toBe(false)
    expect(bytes.includes(Buffer.from(secret))).toBe(false)
    expect(bytes.includes(Buffer.from('$argon2id$'))).toBe(true)
  })
})
