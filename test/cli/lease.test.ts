import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { newRecorder, testEngine } from '../core/leases-fixture.js'
import { pgConfigBody, pgGroupFixture } from '../engines/database-fixtures.js'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, type CliOptions } from './harness.js'

describe('stint lease', () => {
  let server: TestServer
  let opts: CliOptions
  const recorder = newRecorder()

  beforeAll(async () => {
    server = await startTestServer({
      devMounts: false,
      compose: { engines: { 'test-leases': testEngine(recorder) } },
    })
    await server.services.mounts.enable({ path: 'leasetest/', kind: 'secret', type: 'test-leases' })
    opts = { address: (await server.listen()).address, env: { STINT_TOKEN: server.rootToken } }
  })
  afterAll(async () => {
    await server.close()
  })

  const issue = async (target: string, ttl = 600): Promise<string> => {
    const res = await cli(
      ['read', '-field=lease_id', `leasetest/creds/${target}`, `ttl=${ttl}`],
      opts,
    )
    expect(res.code, res.stderr).toBe(0)
    return res.stdout
  }

  test('read shows the lease id, duration and renewability before the data', async () => {
    const res = await cli(['read', 'leasetest/creds/alpha', 'ttl=600'], opts)
    expect(res.code).toBe(0)
    const lines = res.stdout.split('\n')
    expect(lines[2]).toMatch(/^lease_id\s+leasetest\/creds\/alpha\/\S+$/)
    expect(lines[3]).toMatch(/^lease_duration\s+10m$/)
    expect(lines[4]).toMatch(/^lease_renewable\s+true$/)
  })

  test('lease lookup shows the time left', async () => {
    const id = await issue('alpha', 3600)
    const res = await cli(['lease', 'lookup', '-format=json', id], opts)
    expect(res.code).toBe(0)
    const body = JSON.parse(res.stdout)
    expect(body.data.id).toBe(id)
    expect(body.data.ttl).toBeGreaterThan(3500)
  })

  test('lease renew with -increment sets a new TTL', async () => {
    const id = await issue('alpha', 60)
    const res = await cli(['lease', 'renew', '-increment=5m', id], opts)
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toMatch(/^lease_duration\s+5m$/m)
  })

  test('lease list prints a table of leases with their time left', async () => {
    const id = await issue('listed', 7200)
    const res = await cli(['lease', 'list', 'leasetest/creds/listed/'], opts)
    expect(res.code, res.stderr).toBe(0)
    const [header, rule, row] = res.stdout.split('\n')
    expect(header).toMatch(/^Lease ID\s+Time Left\s+Expires\s+Renewable\s+State$/)
    expect(rule).toMatch(/^-+\s+-+/)
    expect(row).toMatch(
      new RegExp(`^${id.replace(/[/.]/g, '\\$&')}\\s+(1h59m\\d*s?|2h)\\s+\\S+Z\\s+true\\s+active$`),
    )
    const folders = await cli(['lease', 'list', 'leasetest/creds'], opts)
    expect(folders.stdout).toMatch(/^leasetest\/creds\/listed\/\s+-/m)
  })

  test('lease list marks irrevocable, failing and expired leases', async () => {
    const [dead, failing, expired, live] = [
      await issue('states'),
      await issue('states'),
      await issue('states'),
      await issue('states'),
    ]
    const set = (id: string, values: Record<string, unknown>) =>
      server.storage.db.updateTable('leases').set(values).where('id', '=', id).execute()
    // Only expire_time moves: next_attempt_at stays ahead, so the expiry worker leaves them alone.
    const past = Date.now() - 60_000
    await set(dead!, {
      state: 'irrevocable',
      last_error: 'role "x" does not exist',
      expire_time: past,
    })
    await set(failing!, { last_error: 'connection refused', expire_time: past })
    await set(expired!, { expire_time: past })
    const res = await cli(['lease', 'list', 'leasetest/creds/states/'], opts)
    expect(res.code, res.stderr).toBe(0)
    const stateOf = (id: string) =>
      res.stdout
        .split('\n')
        .find((l) => l.startsWith(id))
        ?.split(/\s+/)
        .at(-1)
    expect(stateOf(dead!)).toBe('irrevocable')
    expect(stateOf(failing!)).toBe('failing')
    expect(stateOf(expired!)).toBe('expired')
    expect(stateOf(live!)).toBe('active')
    const json = JSON.parse(
      (await cli(['lease', 'list', '-format=json', 'leasetest/creds/states/'], opts)).stdout,
    ) as Array<{ id: string; state: string; revoke_error?: string }>
    expect(json.find((l) => l.id === dead)).toMatchObject({
      state: 'irrevocable',
      revoke_error: 'role "x" does not exist',
    })
    await cli(['lease', 'revoke', '-prefix', '-force', 'leasetest/creds/states/'], opts)
  })

  test('lease revoke -prefix -force prints the server warnings', async () => {
    recorder.failTargets.add('stuck')
    try {
      const id = await issue('stuck')
      const res = await cli(
        ['lease', 'revoke', '-prefix', '-force', 'leasetest/creds/stuck/'],
        opts,
      )
      expect(res).toMatchObject({
        code: 0,
        stdout: 'Success! Force revoked any leases with prefix: leasetest/creds/stuck/\n',
      })
      expect(res.stderr).toContain('WARNING!')
      expect(res.stderr).toContain('backend revocation failed')
      expect((await cli(['lease', 'lookup', id], opts)).code).toBe(1)
    } finally {
      recorder.failTargets.delete('stuck')
    }
  })

  test('lease revoke revokes one lease', async () => {
    const id = await issue('gone')
    const res = await cli(['lease', 'revoke', id], opts)
    expect(res).toMatchObject({ code: 0, stdout: `Success! Revoked lease: ${id}\n` })
    expect((await cli(['lease', 'lookup', id], opts)).code).toBe(1)
  })

  test('lease revoke -prefix revokes every lease under a prefix', async () => {
    const a = await issue('many')
    const b = await issue('many')
    const res = await cli(['lease', 'revoke', '-prefix', 'leasetest/creds/many/'], opts)
    expect(res.code, res.stderr).toBe(0)
    for (const id of [a, b]) expect((await cli(['lease', 'lookup', id], opts)).code).toBe(1)
    expect((await cli(['lease', 'list', 'leasetest/creds/many/'], opts)).code).toBe(2)
  })

  test('lease revoke -force without -prefix is a usage error', async () => {
    const res = await cli(['lease', 'revoke', '-force', 'leasetest/creds/x/y'], opts)
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('-force requires -prefix')
  })

  test('lease revoke -prefix -force removes leases', async () => {
    const id = await issue('forced')
    const res = await cli(['lease', 'revoke', '-prefix', '-force', 'leasetest/creds/forced/'], opts)
    expect(res.code, res.stderr).toBe(0)
    expect((await cli(['lease', 'lookup', id], opts)).code).toBe(1)
  })

  test('read database/creds issues a PostgreSQL user with a lease', async () => {
    const fixture = await pgGroupFixture()
    try {
      expect((await cli(['secrets', 'enable', 'database'], opts)).code).toBe(0)
      const config = await cli(['write', 'database/config/pg', '-'], {
        ...opts,
        stdin: JSON.stringify(pgConfigBody()),
      })
      expect(config.code, config.stderr).toBe(0)
      const creation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE "${fixture.group}";`
      const role = await cli(
        [
          'write',
          'database/roles/ro',
          'db_name=pg',
          `creation_statements=${creation}`,
          'default_ttl=1h',
        ],
        opts,
      )
      expect(role.code, role.stderr).toBe(0)
      const creds = await cli(['read', '-format=json', 'database/creds/ro'], opts)
      expect(creds.code, creds.stderr).toBe(0)
      const body = JSON.parse(creds.stdout)
      expect(body.lease_id).toMatch(/^database\/creds\/ro\//)
      expect(body.data.username).toBeTruthy()
      expect(body.data.password).toBeTruthy()
      const exists = async () =>
        (await fixture.sql`SELECT 1 FROM pg_roles WHERE rolname = ${body.data.username}`).length
      expect(await exists()).toBe(1)
      const revoked = await cli(['lease', 'revoke', body.lease_id], opts)
      expect(revoked.code, revoked.stderr).toBe(0)
      expect(await exists()).toBe(0)
    } finally {
      await fixture.drop()
    }
  })
})
