import vault from 'node-vault'
import { generate } from 'otplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

/* node-vault, unchanged, logging in with userpass over a real socket. */

let server: TestServer
let endpoint: string

beforeAll(async () => {
  server = await startTestServer()
  endpoint = (await server.listen()).address
  await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
  await server.call('POST', 'auth/userpass/users/alice', {
    body: { password: 'pw-for-alice', policies: 'dev' },
  })
})
afterAll(async () => {
  await server?.close()
})

describe('node-vault userpass login', () => {
  it('logs in with userpassLogin and uses the token it got', async () => {
    const vc = vault({ endpoint })
    const res = await vc.userpassLogin({ username: 'alice', password: 'pw-for-alice' })
    expect(res.auth.policies).toEqual(['default', 'dev'])
    expect(vc.token).toBe(res.auth.client_token)
    const self = await vc.tokenLookupSelf()
    expect(self.data.entity_id).toBe(res.auth.entity_id)
    expect(self.data.meta).toEqual({ username: 'alice' })
  })

  it('gets a 400 for a wrong password and, after TOTP enrolment, logs in with the code', async () => {
    const vc = vault({ endpoint })
    await expect(vc.userpassLogin({ username: 'alice', password: 'nope' })).rejects.toMatchObject({
      response: { statusCode: 400 },
    })
    const enrol = await server.call('POST', 'auth/userpass/users/alice/totp')
    const secret = new URL(enrol.body.data.url).searchParams.get('secret')!
    await expect(
      vc.userpassLogin({ username: 'alice', password: 'pw-for-alice' }),
    ).rejects.toMatchObject({
      response: { statusCode: 400, body: { errors: ['TOTP code required'] } },
    })
    // userpassLogin sends only `password`; the generic write carries the code.
    const res = await vc.write('auth/userpass/login/alice', {
      password: 'pw-for-alice',
      totp: await generate({ secret }),
    })
    const self = await vault({ endpoint, token: res.auth.client_token }).tokenLookupSelf()
    expect(self.data.path).toBe('auth/userpass/login/alice')
  })
})
