import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { SignJWT, exportSPKI, generateKeyPair } from 'jose'
import { startTestServer, type TestServer } from '../support/server.js'
import { targetUrls } from '../support/databases.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import { group, human, startWebhookReceiver } from './support.js'

/*
 * Scenario tests for JIT access requests against the real server and a real PostgreSQL target
 * (password checking enforced for generated roles, see .ci/prepare-services).
 */

const ISSUER = 'https://token.actions.githubusercontent.com'
let server: TestServer
let hook: Awaited<ReturnType<typeof startWebhookReceiver>>
let hookKey = ''
let admin: ReturnType<typeof postgres>
let signCi: (claims: Record<string, unknown>) => Promise<string>
const people: Record<string, { token: string; entityId: string }> = {}

const tick = () => server.access.tick()
const as = (who: string) => people[who]!.token

async function request(who: string, body: Record<string, unknown>) {
  return server.call('POST', 'sys/access/requests', { token: as(who), body })
}
async function act(who: string, id: string, action: string, body: Record<string, unknown> = {}) {
  return server.call('POST', `sys/access/requests/${id}/${action}`, { token: as(who), body })
}
async function readRequest(id: string) {
  return (await server.call('GET', `sys/access/requests/${id}`)).body.data
}
async function roleExists(username: string) {
  const rows = await admin`SELECT 1 FROM pg_roles WHERE rolname = ${username}`
  return rows.length > 0
}
async function waitFor(check: () => Promise<boolean>, ms = 8000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

beforeAll(async () => {
  await assertPgPasswordChecking()
  server = await startTestServer()
  admin = postgres(targetUrls().postgres, { max: 2, onnotice: () => {} })
  hook = await startWebhookReceiver(() => hookKey)

  const ok = (res: { status: number; body: unknown }) => {
    if (res.status >= 300)
      throw new Error(`setup failed: ${res.status} ${JSON.stringify(res.body)}`)
  }
  ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
  ok(await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } }))
  ok(await server.call('POST', 'sys/mounts/database', { body: { type: 'database' } }))
  ok(
    await server.call('PUT', 'sys/policies/acl/requester', {
      body: {
        policy: `
path "database/creds/prod-*" { capabilities = ["read"] }
path "database/creds/short-*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }
path "sys/access/break-glass" { capabilities = ["update"] }
path "sys/access/report/unused" { capabilities = ["read"] }`,
      },
    }),
  )
  ok(
    await server.call('POST', 'database/config/pg', {
      body: {
        plugin_name: 'postgresql-database-plugin',
        connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:5432/stint_target',
        username: 'stint_admin',
        password: 'stint_admin',
        allowed_roles: '*',
      },
    }),
  )
  for (const role of ['prod-ro', 'short-ro']) {
    ok(
      await server.call('POST', `database/roles/${role}`, {
        body: {
          db_name: 'pg',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
          ],
          default_ttl: '2h',
          max_ttl: '4h',
        },
      }),
    )
  }

  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) {
    people[name] = await human(server, name, ['requester'])
  }
  await group(server, 'dba', [people.bob!.entityId, people.carol!.entityId, people.alice!.entityId])
  await group(server, 'security', [people.dave!.entityId, people.carol!.entityId])
  await group(server, 'oncall', [people.erin!.entityId])

  const notifier = await server.call('POST', 'sys/access/notifiers/hook', {
    body: { url: hook.url, format: 'json' },
  })
  ok(notifier)
  hookKey = notifier.body.data.secret

  ok(
    await server.call('POST', 'sys/access/rules/prod', {
      body: {
        paths: ['database/creds/prod-*'],
        approvals: [
          { group: 'dba', count: 2 },
          { group: 'security', count: 1 },
        ],
        max_duration: '1h',
        pending_ttl: '1h',
        justification_pattern: '^.{10,}$',
        auto_approve: [
          {
            metadata: { repository: 'acme/app', ref: 'refs/heads/main', environment: 'production' },
            max_duration: '15m',
          },
        ],
        break_glass: { groups: ['oncall'], max_duration: '30m' },
        notifiers: ['hook'],
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/short', {
      body: {
        paths: ['database/creds/short-*'],
        approvals: [{ group: 'security', count: 1 }],
        pending_ttl: '1s',
        max_duration: '1h',
      },
    }),
  )

  // A GitHub-shaped OIDC setup for the pipeline scenario.
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  ok(
    await server.call('POST', 'auth/jwt/config', {
      body: { jwt_validation_pubkeys: [await exportSPKI(publicKey)], bound_issuer: ISSUER },
    }),
  )
  ok(
    await server.call('POST', 'auth/jwt/role/deploy', {
      body: {
        role_type: 'jwt',
        user_claim: 'repository',
        bound_audiences: ['https://github.com/acme'],
        bound_claims: { repository: 'acme/app' },
        claim_mappings: {
          repository: 'repository',
          ref: 'ref',
          environment: 'environment',
          run_id: 'run_id',
          actor: 'actor',
        },
        token_policies: ['requester'],
        token_ttl: '10m',
      },
    }),
  )
  signCi = async (claims) =>
    new SignJWT({ repository: 'acme/app', actor: 'octocat', run_id: '4242', ...claims })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(ISSUER)
      .setAudience('https://github.com/acme')
      .setSubject(`repo:acme/app:ref:${String(claims.ref)}`)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey)
}, 60_000)

afterAll(async () => {
  await server?.call('PUT', 'sys/leases/revoke-prefix/database/', {})
  await hook?.close()
  await admin?.end()
  await server?.close()
})

describe('access requests with two approval factors', () => {
  it('opens access only after two dba approvals and one security approval, never on a self-approval', async () => {
    const created = await request('alice', {
      path: 'database/creds/prod-ro',
      duration: '30m',
      justification: 'rotate the billing index',
    })
    expect(created.status).toBe(200)
    const id = created.body.data.id
    expect(created.body.data.state).toBe('pending')

    expect(
      (await server.call('GET', 'database/creds/prod-ro', { token: as('alice') })).status,
    ).toBe(403)
    const self = await act('alice', id, 'approve')
    expect(self.status).toBe(403)

    expect((await act('bob', id, 'approve', { comment: 'ok' })).body.data.state).toBe('pending')
    expect((await act('bob', id, 'approve')).status).toBe(400)
    // carol is in dba and security: she may count once, for one factor only.
    expect((await act('carol', id, 'approve')).body.data.state).toBe('pending')
    expect(
      (await server.call('GET', 'database/creds/prod-ro', { token: as('alice') })).status,
    ).toBe(403)
    const last = await act('dave', id, 'approve')
    expect(last.body.data.state).toBe('active')

    const creds = await server.call('GET', 'database/creds/prod-ro', { token: as('alice') })
    expect(creds.status).toBe(200)
    expect(creds.body.lease_duration).toBeLessThanOrEqual(30 * 60)
    const view = await readRequest(id)
    expect(view.usage.credentials_issued).toBe(1)
    expect(view.decisions.map((d: { by_id: string }) => d.by_id).sort()).toEqual(
      [people.bob!.entityId, people.carol!.entityId, people.dave!.entityId].sort(),
    )
    // The lease is capped at the grant's end.
    const lease = await server.call('PUT', 'sys/leases/lookup', {
      body: { lease_id: creds.body.lease_id },
    })
    expect(Date.parse(lease.body.data.expire_time)).toBeLessThanOrEqual(
      Date.parse(view.ends_at) + 1000,
    )
  })

  it('shows the approver the target, the role and its rendered statements, and the requester', async () => {
    const created = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '10m',
      justification: 'look at slow queries',
    })
    const view = await readRequest(created.body.data.id)
    expect(view.requester.entity_id).toBe(people.frank!.entityId)
    expect(view.duration).toBe(600)
    expect(JSON.stringify(view.target)).toContain('CREATE ROLE')
    expect(view.requester_recent).toBeInstanceOf(Array)
    await act('frank', created.body.data.id, 'cancel')
  })
})

describe('pending limits and denials', () => {
  it('expires a request that stays pending past its limit', async () => {
    const created = await request('frank', {
      path: 'database/creds/short-ro',
      duration: '5m',
      justification: 'quick check of data',
    })
    expect(created.body.data.state).toBe('pending')
    await new Promise((r) => setTimeout(r, 1100))
    await tick()
    expect((await readRequest(created.body.data.id)).state).toBe('expired')
    expect((await act('dave', created.body.data.id, 'approve')).status).toBe(400)
  })

  it('records the reason of a denial and keeps it readable', async () => {
    const created = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '5m',
      justification: 'i just want to look',
    })
    const denied = await act('dave', created.body.data.id, 'deny', {
      reason: 'use the read replica',
    })
    expect(denied.status).toBe(200)
    const view = await readRequest(created.body.data.id)
    expect(view.state).toBe('denied')
    expect(view.deny_reason).toBe('use the read replica')
    expect(
      (await server.call('GET', 'database/creds/prod-ro', { token: as('frank') })).status,
    ).toBe(403)
  })

  it('lets a pipeline wait on its request with a long poll', async () => {
    const created = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '5m',
      justification: 'long poll while waiting',
    })
    const id = created.body.data.id
    const waiting = server.call('GET', `sys/access/requests/${id}?wait=10s`, { token: as('frank') })
    await new Promise((r) => setTimeout(r, 300))
    await act('dave', id, 'deny', { reason: 'not today' })
    const answered = await waiting
    expect(answered.body.data.state).toBe('denied')
  })
})

describe('CI pipelines as requesters', () => {
  async function pipeline(claims: Record<string, unknown>) {
    const jwt = await signCi(claims)
    const res = await server.call('POST', 'auth/jwt/login', {
      token: null,
      body: { role: 'deploy', jwt },
    })
    expect(res.status).toBe(200)
    return res.body.auth.client_token as string
  }

  it('auto-approves main in production for 15 minutes, with the run metadata shown', async () => {
    const token = await pipeline({ ref: 'refs/heads/main', environment: 'production' })
    const created = await server.call('POST', 'sys/access/requests', {
      token,
      body: {
        path: 'database/creds/prod-ro',
        duration: '15m',
        justification: 'deploy run 4242 migration',
      },
    })
    expect(created.status).toBe(200)
    expect(created.body.data.state).toBe('active')
    expect(created.body.data.auto_approved).toBe(true)
    expect(created.body.data.requester.metadata).toMatchObject({
      repository: 'acme/app',
      ref: 'refs/heads/main',
      run_id: '4242',
      actor: 'octocat',
    })
    const creds = await server.call('GET', 'database/creds/prod-ro', { token })
    expect(creds.status).toBe(200)
  })

  it('makes the same pipeline on another branch wait for a human', async () => {
    const token = await pipeline({ ref: 'refs/heads/feature-x', environment: 'production' })
    const created = await server.call('POST', 'sys/access/requests', {
      token,
      body: {
        path: 'database/creds/prod-ro',
        duration: '15m',
        justification: 'deploy from a feature branch',
      },
    })
    expect(created.body.data.state).toBe('pending')
    expect((await server.call('GET', 'database/creds/prod-ro', { token })).status).toBe(403)
  })
})

describe('ending and extending grants', () => {
  async function grantFor(who: string, duration: string) {
    const created = await request(who, {
      path: 'database/creds/prod-ro',
      duration,
      justification: 'incident 123 follow-up',
    })
    const id = created.body.data.id
    await act('bob', id, 'approve')
    await act('carol', id, 'approve')
    const last = await act('dave', id, 'approve')
    expect(last.body.data.state).toBe('active')
    return id as string
  }

  it('revokes the credentials and kills an open session when a grant is ended early', async () => {
    const id = await grantFor('frank', '30m')
    const creds = await server.call('GET', 'database/creds/prod-ro', { token: as('frank') })
    expect(creds.status).toBe(200)
    const { username, password } = creds.body.data
    const session = postgres({
      host: '127.0.0.1',
      port: 5432,
      database: 'stint_target',
      username,
      password,
      max: 1,
      onnotice: () => {},
    })
    expect((await session`SELECT current_user AS u`)[0]!.u).toBe(username)
    await tick()
    expect((await readRequest(id)).usage.sessions_seen).toBe(true)

    const ended = await act('frank', id, 'end')
    expect(ended.body.data.state).toBe('ended')
    const killed = await waitFor(async () => {
      try {
        await session`SELECT 1`
        return false
      } catch {
        return true
      }
    })
    expect(killed).toBe(true)
    expect(await roleExists(username)).toBe(false)
    await session.end({ timeout: 1 }).catch(() => {})
    expect(
      (await server.call('GET', 'database/creds/prod-ro', { token: as('frank') })).status,
    ).toBe(403)
  })

  it('refuses an extension beyond the rule maximum and approves only the extra time within it', async () => {
    const id = await grantFor('frank', '30m')
    const before = await readRequest(id)
    const tooLong = await act('frank', id, 'extend', { duration: '45m' })
    expect(tooLong.status).toBe(400)
    const ext = await act('frank', id, 'extend', { duration: '20m' })
    expect(ext.status).toBe(200)
    expect(ext.body.data.kind).toBe('extension')
    expect(ext.body.data.duration).toBe(1200)
    expect(ext.body.data.state).toBe('pending')
    await act('bob', ext.body.data.id, 'approve')
    await act('carol', ext.body.data.id, 'approve')
    expect((await act('dave', ext.body.data.id, 'approve')).body.data.state).toBe('approved')
    const after = await readRequest(id)
    expect(Date.parse(after.ends_at) - Date.parse(before.ends_at)).toBe(20 * 60 * 1000)
    expect(after.duration).toBe(50 * 60)
    await act('frank', id, 'end')
  })
})

describe('break-glass', () => {
  it('opens access without approval, notifies the webhook with a valid signature, and stays flagged until reviewed', async () => {
    const before = hook.received.length
    const res = await server.call('POST', 'sys/access/break-glass', {
      token: as('erin'),
      body: { path: 'database/creds/prod-ro', justification: 'primary is down, SEV1' },
    })
    expect(res.status).toBe(200)
    const id = res.body.data.id
    expect(res.body.data.state).toBe('active')
    expect(res.body.data.break_glass).toBe(true)
    expect(res.body.data.review.required).toBe(true)
    expect((await server.call('GET', 'database/creds/prod-ro', { token: as('erin') })).status).toBe(
      200,
    )

    await tick()
    const got = hook.received.slice(before).filter((r) => r.event === 'break_glass')
    expect(got).toHaveLength(1)
    expect(got[0]!.signatureValid).toBe(true)
    expect(got[0]!.body.request.id).toBe(id)
    expect(got[0]!.body.approver_groups).toEqual(['dba', 'security'])

    expect((await act('erin', id, 'review', { note: 'self review' })).status).toBe(403)
    expect((await readRequest(id)).review.required).toBe(true)
    const reviewed = await act('bob', id, 'review', { note: 'justified: primary failover' })
    expect(reviewed.status).toBe(200)
    expect(reviewed.body.data.review).toMatchObject({
      required: false,
      note: 'justified: primary failover',
    })
    await act('erin', id, 'end')
  })

  it('refuses break-glass to someone outside the allowed groups', async () => {
    const res = await server.call('POST', 'sys/access/break-glass', {
      token: as('frank'),
      body: { path: 'database/creds/prod-ro', justification: 'i want in' },
    })
    expect(res.status).toBe(403)
  })

  it('retries a webhook delivery that failed', async () => {
    await tick() // deliver anything queued by earlier tests first
    hook.failNextDeliveries(1)
    const before = hook.received.length
    const created = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '5m',
      justification: 'retry the hook please',
    })
    await tick()
    expect(hook.received.length).toBe(before)
    const queued = await server.storage.db
      .selectFrom('access_deliveries')
      .selectAll()
      .where('request_id', '=', created.body.data.id)
      .execute()
    expect(queued.map((d) => [d.state, d.attempts])).toEqual([['queued', 1]])
    // Make the retry due now instead of waiting for the backoff.
    await server.storage.db
      .updateTable('access_deliveries')
      .set({ next_attempt_at: 0 })
      .where('request_id', '=', created.body.data.id)
      .execute()
    await tick()
    expect(
      hook.received
        .slice(before)
        .some((r) => r.event === 'created' && r.body.request.id === created.body.data.id),
    ).toBe(true)
    await act('frank', created.body.data.id, 'cancel')
  })
})

describe('evidence of use', () => {
  it('reports a grant with no credentials issued as unused and a used one as used', async () => {
    const unusedReq = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '5m',
      justification: 'might need it later',
    })
    const unusedId = unusedReq.body.data.id
    await act('bob', unusedId, 'approve')
    await act('carol', unusedId, 'approve')
    await act('dave', unusedId, 'approve')
    await act('frank', unusedId, 'end')
    const report = await server.call('GET', 'sys/access/report/unused', { token: as('frank') })
    expect(report.status).toBe(200)
    const unusedIds = report.body.data.unused.map((r: { id: string }) => r.id)
    expect(unusedIds).toContain(unusedId)
    const used = (
      await server.call('LIST', 'sys/access/requests?state=ended', { token: as('frank') })
    ).body.data
    const usedIds = Object.entries(used.key_info as Record<string, { requester: string }>).map(
      ([k]) => k,
    )
    const withCreds = []
    for (const id of usedIds) {
      const v = await readRequest(id)
      if (v.usage.credentials_issued > 0) withCreds.push(v)
    }
    expect(withCreds.length).toBeGreaterThan(0)
    for (const v of withCreds) expect(unusedIds).not.toContain(v.id)
    expect(withCreds.some((v) => v.usage.sessions_seen === true)).toBe(true)
  })
})

describe('bad input', () => {
  async function count() {
    const rows = await server.storage.db.selectFrom('access_requests').select('id').execute()
    return rows.length
  }

  it('answers clear 4xx errors and changes nothing', async () => {
    const before = await count()
    const cases: Array<Record<string, unknown>> = [
      { path: 'secret/data/unguarded', duration: '5m', justification: 'not guarded by any rule' },
      { path: 'database/creds/prod-ro', duration: '-5m', justification: 'negative duration here' },
      {
        path: 'database/creds/prod-ro',
        duration: '100000h',
        justification: 'absurd duration here',
      },
      {
        path: 'database/creds/prod-ro',
        duration: 'banana',
        justification: 'not a duration at all',
      },
      { path: 'database/creds/prod-ro', duration: '5m', justification: 'short' },
      { path: 'database/creds/prod-ro', justification: 'no duration given at all' },
      { duration: '5m', justification: 'no path given at all' },
    ]
    for (const body of cases) {
      const res = await request('frank', body)
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.body.errors[0]).toBeTypeOf('string')
    }
    expect(await count()).toBe(before)
    expect(
      (await server.call('GET', 'sys/access/requests/does-not-exist', { token: as('frank') }))
        .status,
    ).toBe(404)
    expect((await act('dave', 'does-not-exist', 'approve')).status).toBe(404)
    expect(
      (await server.call('POST', 'sys/access/rules/bad', { body: { paths: [] } })).status,
    ).toBe(400)
    expect(
      (
        await server.call('POST', 'sys/access/rules/bad', {
          body: { paths: ['x/*y'], approvals: [{ group: 'a', count: 1 }] },
        })
      ).status,
    ).toBe(400)
  })

  it('refuses to approve an ended request or to approve twice', async () => {
    const created = await request('frank', {
      path: 'database/creds/prod-ro',
      duration: '5m',
      justification: 'approve twice test',
    })
    const id = created.body.data.id
    expect((await act('bob', id, 'approve')).status).toBe(200)
    expect((await act('bob', id, 'approve')).status).toBe(400)
    await act('frank', id, 'cancel')
    expect((await act('carol', id, 'approve')).status).toBe(400)
    expect((await readRequest(id)).state).toBe('cancelled')
  })
})
