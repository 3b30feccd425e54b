import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { group, human } from '../access/support.js'
import { cli, type CliOptions } from './harness.js'

describe('stint access', () => {
  let server: TestServer
  let address: string
  const as: Record<string, CliOptions> = {}

  beforeAll(async () => {
    server = await startTestServer()
    address = (await server.listen()).address
    const ok = (r: { status: number; body: unknown }) => {
      if (r.status >= 300) throw new Error(JSON.stringify(r.body))
    }
    ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
    ok(
      await server.call('PUT', 'sys/policies/acl/people', {
        body: {
          policy: `path "secret/data/prod/*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }
path "sys/access/break-glass" { capabilities = ["update"] }`,
        },
      }),
    )
    ok(
      await server.call('POST', 'secret/data/prod/db', { body: { data: { password: 'prod-pw' } } }),
    )
    const alice = await human(server, 'alice', ['people'])
    const bob = await human(server, 'bob', ['people'])
    const erin = await human(server, 'erin', ['people'])
    await group(server, 'leads', [bob.entityId])
    await group(server, 'oncall', [erin.entityId])
    ok(
      await server.call('POST', 'sys/access/rules/prod', {
        body: {
          paths: ['secret/data/prod/*'],
          approvals: [{ group: 'leads', count: 1 }],
          max_duration: '1h',
          break_glass: { groups: ['oncall'], max_duration: '15m' },
        },
      }),
    )
    for (const p of [alice, bob, erin]) as[p.name] = { address, env: { STINT_TOKEN: p.token } }
  })
  afterAll(async () => {
    await server.close()
  })

  test('a request waits with -wait until an approver approves it, then the secret reads', async () => {
    expect((await cli(['kv', 'get', 'secret/prod/db'], as.alice)).code).toBe(1)
    const waiting = cli(
      [
        'access',
        'request',
        '-ttl=20m',
        '-justification=fix the nightly job',
        '-wait',
        '-format=json',
        'secret/data/prod/db',
      ],
      as.alice,
    )
    let id = ''
    for (let i = 0; i < 50 && !id; i++) {
      await new Promise((r) => setTimeout(r, 100))
      const listed = await cli(['access', 'list', '-filter=approvable', '-format=json'], as.bob)
      if (listed.code === 0) id = Object.keys(JSON.parse(listed.stdout).data.key_info)[0] ?? ''
    }
    expect(id).not.toBe('')
    const shown = await cli(['access', 'show', id], as.bob)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/justification\s+fix the nightly job/)
    expect((await cli(['access', 'approve', '-comment=ok', id], as.bob)).code).toBe(0)
    const done = await waiting
    expect(done.code, done.stderr).toBe(0)
    expect(JSON.parse(done.stdout).data.state).toBe('active')
    const read = await cli(['kv', 'get', '-field=password', 'secret/prod/db'], as.alice)
    expect(read.stdout).toBe('prod-pw')
    expect((await cli(['access', 'end', id], as.alice)).code).toBe(0)
    expect((await cli(['kv', 'get', 'secret/prod/db'], as.alice)).code).toBe(1)
  })

  test('deny needs a reason, and the reason is shown', async () => {
    const created = await cli(
      [
        'access',
        'request',
        '-ttl=5m',
        '-justification=curious',
        '-format=json',
        'secret/data/prod/db',
      ],
      as.alice,
    )
    const id = JSON.parse(created.stdout).data.id
    expect((await cli(['access', 'deny', id], as.bob)).code).toBe(2)
    expect((await cli(['access', 'deny', '-reason=not needed', id], as.bob)).code).toBe(0)
    const shown = await cli(['access', 'show', id], as.alice)
    expect(shown.stdout).toMatch(/state\s+denied/)
    expect(shown.stdout).toMatch(/deny_reason\s+not needed/)
  })

  test('break-glass opens access at once and says so loudly', async () => {
    const res = await cli(
      ['access', 'break-glass', '-justification=SEV1 outage', 'secret/data/prod/db'],
      as.erin,
    )
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toContain('BREAK-GLASS')
    expect(res.stdout).toMatch(/state\s+active/)
    expect((await cli(['kv', 'get', '-field=password', 'secret/prod/db'], as.erin)).stdout).toBe(
      'prod-pw',
    )
    expect((await cli(['access', 'break-glass', 'secret/data/prod/db'], as.erin)).code).toBe(2)
  })
})
