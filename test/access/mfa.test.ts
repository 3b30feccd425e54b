import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generate } from 'otplib'
import { startTestServer, type TestServer } from '../support/server.js'
import { secretFromUrl } from '../auth/userpass-helpers.js'
import { group } from './support.js'

/** Rules that ask for a second factor: at activation (requester) and at login (approvers). */
describe('access rules with a second factor', () => {
  let server: TestServer
  const tokens: Record<string, string> = {}
  const seeds: Record<string, string> = {}
  const code = async (who: string, offsetSteps = 0): Promise<string> =>
    generate({ secret: seeds[who]!, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 })

  async function login(name: string, withTotp: boolean, step = 0) {
    const body: Record<string, unknown> = { password: `pw-${name}-long-enough` }
    if (withTotp) body.totp = await code(name, step)
    const res = await server.call('POST', `auth/userpass/login/${name}`, { token: null, body })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    return res.body.auth
  }

  beforeAll(async () => {
    server = await startTestServer()
    await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
    await server.call('PUT', 'sys/policies/acl/people', {
      body: {
        policy: `path "secret/data/vault/*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
      },
    })
    await server.call('POST', 'secret/data/vault/key', { body: { data: { k: 'v' } } })
    const entities: Record<string, string> = {}
    for (const name of ['rita', 'abe', 'nia']) {
      await server.call('POST', `auth/userpass/users/${name}`, {
        body: { password: `pw-${name}-long-enough`, token_policies: ['people'] },
      })
    }
    for (const name of ['rita', 'abe']) {
      const enrol = await server.call('POST', `auth/userpass/users/${name}/totp`)
      seeds[name] = secretFromUrl(enrol.body.data.url)
    }
    const rita = await login('rita', true)
    const abe = await login('abe', true)
    const nia = await login('nia', false)
    tokens.rita = rita.client_token
    tokens.abe = abe.client_token
    tokens.nia = nia.client_token
    entities.abe = abe.entity_id
    entities.nia = nia.entity_id
    // The second factor is a token field no caller can write, not metadata (issue 12, item 1).
    expect(abe.metadata.mfa).toBeUndefined()
    expect(nia.metadata.mfa).toBeUndefined()
    await group(server, 'keyholders', [entities.abe!, entities.nia!])
    const rule = await server.call('POST', 'sys/access/rules/vault', {
      body: {
        paths: ['secret/data/vault/*'],
        approvals: [{ group: 'keyholders', count: 1 }],
        requester_mfa: true,
        approver_mfa: true,
        max_duration: '1h',
      },
    })
    expect(rule.status).toBe(204)
  })
  afterAll(async () => {
    await server.close()
  })

  it('refuses an approver without a second factor and waits for the requester to activate with TOTP', async () => {
    const created = await server.call('POST', 'sys/access/requests', {
      token: tokens.rita,
      body: {
        path: 'secret/data/vault/key',
        duration: '10m',
        justification: 'rotate the root key',
      },
    })
    const id = created.body.data.id
    const noMfa = await server.call('POST', `sys/access/requests/${id}/approve`, {
      token: tokens.nia,
    })
    expect(noMfa.status).toBe(403)
    const approved = await server.call('POST', `sys/access/requests/${id}/approve`, {
      token: tokens.abe,
    })
    expect(approved.body.data.state).toBe('approved')

    const beforeActivation = await server.call('GET', 'secret/data/vault/key', {
      token: tokens.rita,
    })
    expect(beforeActivation.status).toBe(403)
    expect(beforeActivation.body.errors[0]).toContain('activate')
    const wrong = await server.call('POST', `sys/access/requests/${id}/activate`, {
      token: tokens.rita,
      body: { totp: '000000' },
    })
    expect(wrong.status).toBe(400)
    // The login already used this step's code: a replay must fail, the next step's code works.
    const replay = await server.call('POST', `sys/access/requests/${id}/activate`, {
      token: tokens.rita,
      body: { totp: await code('rita') },
    })
    expect(replay.status).toBe(400)
    const ok = await server.call('POST', `sys/access/requests/${id}/activate`, {
      token: tokens.rita,
      body: { totp: await code('rita', 1) },
    })
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.body.data.state).toBe('active')
    expect((await server.call('GET', 'secret/data/vault/key', { token: tokens.rita })).status).toBe(
      200,
    )
  })

  it('repro: a grant approved for a later start_time cannot be activated early with the second factor (was active at once)', async () => {
    const startTime = new Date(Date.now() + 6 * 3600_000).toISOString()
    const created = await server.call('POST', 'sys/access/requests', {
      token: tokens.rita,
      body: {
        path: 'secret/data/vault/later',
        duration: '10m',
        justification: 'planned key ceremony',
        start_time: startTime,
      },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    const id = created.body.data.id
    const approved = await server.call('POST', `sys/access/requests/${id}/approve`, {
      token: tokens.abe,
    })
    expect(approved.body.data.state).toBe('approved')
    const early = await server.call('POST', `sys/access/requests/${id}/activate`, {
      token: tokens.rita,
      body: { totp: await code('rita', 2) },
    })
    expect(early.status).toBe(400)
    expect(early.body.errors[0]).toContain('cannot be activated before')
    const read = await server.call('GET', `sys/access/requests/${id}`, { token: tokens.rita })
    expect(read.body.data.state).toBe('approved')
    expect(
      (await server.call('GET', 'secret/data/vault/later', { token: tokens.rita })).status,
    ).toBe(403)
  })
})
