import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, type CliOptions } from './harness.js'

describe('stint token -accessor', () => {
  let server: TestServer
  let opts: CliOptions

  beforeAll(async () => {
    server = await startTestServer()
    opts = { address: (await server.listen()).address, env: { STINT_TOKEN: server.rootToken } }
  })
  afterAll(async () => {
    await server.close()
  })

  const newToken = async () => {
    const res = await cli(['token', 'create', '-policy=default', '-format=json'], opts)
    expect(res.code, res.stderr).toBe(0)
    const auth = JSON.parse(res.stdout).auth as { client_token: string; accessor: string }
    return { token: auth.client_token, accessor: auth.accessor }
  }

  test('lookup -accessor shows the token without its id', async () => {
    const { token, accessor } = await newToken()
    const res = await cli(['token', 'lookup', '-accessor', accessor], opts)
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(new RegExp(`^accessor\\s+${accessor}$`, 'm'))
    expect(res.stdout).not.toContain(token)
  })

  test('lookup -accessor without an accessor is a usage error, not a lookup-self', async () => {
    const res = await cli(['token', 'lookup', '-accessor'], opts)
    expect(res).toMatchObject({ code: 2, stdout: '' })
    expect(res.stderr).toContain('-accessor needs the accessor')
  })

  test('revoke -accessor revokes the token', async () => {
    const { token, accessor } = await newToken()
    const res = await cli(['token', 'revoke', '-accessor', accessor], opts)
    expect(res).toMatchObject({ code: 0, stdout: 'Success! Revoked token (if it existed)\n' })
    const after = await cli(['token', 'lookup'], { ...opts, env: { STINT_TOKEN: token } })
    expect(after.code).toBe(1)
  })

  test('revoke -accessor refuses -self and -mode=orphan', async () => {
    const { accessor } = await newToken()
    const self = await cli(['token', 'revoke', '-self', '-accessor'], opts)
    expect(self.code).toBe(2)
    const orphan = await cli(['token', 'revoke', '-accessor', '-mode=orphan', accessor], opts)
    expect(orphan.code).toBe(2)
    expect(orphan.stderr).toContain('-mode=orphan cannot be used with -accessor')
    expect((await cli(['token', 'lookup', '-accessor', accessor], opts)).code).toBe(0)
  })

  test('renew -accessor says why it is not available instead of an unknown flag', async () => {
    const { accessor } = await newToken()
    const res = await cli(['token', 'renew', '-accessor', accessor], opts)
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('auth/token/renew-accessor')
    expect(res.stderr).not.toContain('flag provided but not defined')
  })
})
