import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT, exportSPKI, generateKeyPair } from 'jose'
import { startTestServer, type TestServer } from '../support/server.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import { group, human } from './support.js'

/*
 * Issue 12: attacks on JIT access found by adversarial testing, each carried out against the
 * real server and a real PostgreSQL target. Every test here failed on the code before the fix.
 */

const ISSUER = 'https://token.actions.githubusercontent.com'
const AUDIENCE = 'https://github.com/acme'
let server: TestServer
let privateKey: CryptoKey
const people: Record<string, { token: string; entityId: string }> = {}

const ok = <T extends { status: number; body: any }>(res: T): T => {
  if (res.status >= 300) throw new Error(`setup failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res
}
const call = (method: string, path: string, token: string, body?: Record<string, unknown>) =>
  server.call(method, path, { token, body })
const fileRequest = (token: string, path: string, extra: Record<string, unknown> = {}) =>
  call('POST', 'sys/access/requests', token, {
    path,
    duration: '10m',
    justification: 'investigate the incident',
    ...extra,
  })
const approve = (token: string, id: string) =>
  call('POST', `sys/access/requests/${id}/approve`, token, { comment: 'ok' })
const childOf = async (token: string, body: Record<string, unknown> = {}) =>
  (await call('POST', 'auth/token/create', token, body)).body.auth.client_token as string

async function ciLogin(claims: Record<string, unknown>): Promise<string> {
  const jwt = await new SignJWT({ repository: 'acme/app', actor: 'octocat', ...claims })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(`repo:acme/app:ref:${String(claims.ref)}`)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey)
  const res = ok(
    await server.call('POST', 'auth/jwt/login', { token: null, body: { role: 'ci', jwt } }),
  )
  return res.body.auth.client_token
}

/** A person's login through the jwt mount (an OIDC-style login, alias on their entity). */
async function personJwtLogin(email: string): Promise<{ token: string; entityId: string }> {
  const jwt = await new SignJWT({ email })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(email)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey)
  const res = ok(
    await server.call('POST', 'auth/jwt/login', { token: null, body: { role: 'people', jwt } }),
  )
  return { token: res.body.auth.client_token, entityId: res.body.auth.entity_id }
}

beforeAll(async () => {
  await assertPgPasswordChecking()
  server = await startTestServer()
  ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
  ok(await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } }))
  ok(await server.call('POST', 'sys/mounts/database', { body: { type: 'database' } }))
  ok(
    await server.call('PUT', 'sys/policies/acl/requester', {
      body: {
        policy: `
path "database/creds/*" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
      },
    }),
  )
  ok(
    await server.call('PUT', 'sys/policies/acl/auditor', {
      body: {
        policy: `
path "sys/access/requests" { capabilities = ["list", "sudo"] }
path "sys/access/requests/*" { capabilities = ["read"] }`,
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
  for (const role of ['prod-ro', 'prod-admin', 'stage-ro', 'mfa-ro']) {
    ok(
      await server.call('POST', `database/roles/${role}`, {
        body: {
          db_name: 'pg',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
          ],
          default_ttl: '1h',
          max_ttl: '2h',
        },
      }),
    )
  }
  for (const name of ['mallory', 'alice', 'bob', 'carol', 'abe', 'frank', 'sam']) {
    people[name] = await human(server, name, ['requester'])
  }
  people.audra = await human(server, 'audra', ['auditor'])
  await group(server, 'dba', [people.bob!.entityId, people.carol!.entityId, people.alice!.entityId])
  await group(server, 'keyholders', [people.abe!.entityId])
  // Entity metadata is written by identity administrators only.
  ok(
    await server.call('POST', `identity/entity/id/${people.sam!.entityId}`, {
      body: { metadata: { team: 'sre' } },
    }),
  )

  // `prod-admin` is strict and sorts first, so it guards prod-admin; `prod` is lenient.
  ok(
    await server.call('POST', 'sys/access/rules/a-prod-admin', {
      body: {
        paths: ['database/creds/prod-admin'],
        approvals: [{ group: 'dba', count: 2 }],
        require_ticket: true,
        max_duration: '1h',
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/prod', {
      body: {
        paths: ['database/creds/prod-*'],
        approvals: [{ group: 'dba', count: 2 }],
        max_duration: '1h',
        auto_approve: [
          {
            claims: { repository: 'acme/app', ref: 'refs/heads/main', environment: 'production' },
            auth_mount: 'jwt',
            max_duration: '15m',
          },
        ],
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/stage', {
      body: {
        paths: ['database/creds/stage-*'],
        approvals: [{ group: 'dba', count: 1 }],
        max_duration: '1h',
        auto_approve: [
          // The former key name: it matches verified login claims too, never token meta.
          { metadata: { repository: 'acme/app', environment: 'staging' } },
          { entity_metadata: { team: 'sre' } },
        ],
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/mfa', {
      body: {
        paths: ['database/creds/mfa-ro'],
        approvals: [{ group: 'keyholders', count: 1 }],
        approver_mfa: true,
        max_duration: '1h',
      },
    }),
  )

  const keys = await generateKeyPair('RS256')
  privateKey = keys.privateKey
  ok(
    await server.call('POST', 'auth/jwt/config', {
      body: { jwt_validation_pubkeys: [await exportSPKI(keys.publicKey)], bound_issuer: ISSUER },
    }),
  )
  ok(
    await server.call('POST', 'auth/jwt/role/ci', {
      body: {
        role_type: 'jwt',
        user_claim: 'repository',
        bound_audiences: [AUDIENCE],
        bound_claims: { repository: 'acme/app' },
        claim_mappings: { repository: 'repository', ref: 'ref', environment: 'environment' },
        token_policies: ['requester'],
        token_ttl: '10m',
      },
    }),
  )
  ok(
    await server.call('POST', 'auth/jwt/role/people', {
      body: {
        role_type: 'jwt',
        user_claim: 'email',
        bound_audiences: [AUDIENCE],
        token_policies: ['requester'],
        token_ttl: '10m',
      },
    }),
  )
  // alice and bob also log in through the jwt mount: a second alias on the same entity.
  const mounts = ok(await server.call('GET', 'sys/auth')).body.data
  for (const name of ['alice', 'bob']) {
    ok(
      await server.call('POST', 'identity/entity-alias', {
        body: {
          name: `${name}@acme.example`,
          canonical_id: people[name]!.entityId,
          mount_accessor: mounts['jwt/'].accessor,
        },
      }),
    )
  }
}, 60_000)

afterAll(async () => {
  await server?.call('PUT', 'sys/leases/revoke-prefix/database/', {})
  await server?.close()
})

describe('item 1: auto-approval and approver MFA rest only on verified facts', () => {
  it('repro: a child token whose meta claims acme/app main production is not auto-approved, and the parent cannot read prod', async () => {
    const forged = await childOf(people.mallory!.token, {
      meta: { repository: 'acme/app', ref: 'refs/heads/main', environment: 'production' },
    })
    const res = await fileRequest(forged, 'database/creds/prod-ro')
    expect(res.status).toBe(200)
    expect(res.body.data.state).toBe('pending')
    expect(res.body.data.auto_approved).toBe(false)
    // Token meta is not shown as verified requester metadata either.
    expect(res.body.data.requester.metadata.repository).toBeUndefined()
    for (const token of [forged, people.mallory!.token]) {
      expect((await call('GET', 'database/creds/prod-ro', token)).status).toBe(403)
    }
  })

  it('repro: the former `metadata` condition key no longer matches caller-written meta', async () => {
    const forged = await childOf(people.mallory!.token, {
      meta: { repository: 'acme/app', environment: 'staging' },
    })
    const res = await fileRequest(forged, 'database/creds/stage-ro')
    expect(res.body.data.state).toBe('pending')
  })

  it('auto-approves a CI login whose verified claims match, through the named auth mount', async () => {
    const run = await ciLogin({ ref: 'refs/heads/main', environment: 'production' })
    const res = await fileRequest(run, 'database/creds/prod-ro')
    expect(res.body.data.state).toBe('active')
    expect(res.body.data.auto_approved).toBe(true)
    expect(res.body.data.requester.metadata).toMatchObject({
      repository: 'acme/app',
      ref: 'refs/heads/main',
    })
    expect((await call('GET', 'database/creds/prod-ro', run)).status).toBe(200)
    const staging = await ciLogin({ ref: 'refs/heads/main', environment: 'staging' })
    expect((await fileRequest(staging, 'database/creds/stage-ro')).body.data.state).toBe('active')
  })

  it('auto-approves on entity metadata that administrators wrote, not on the same key in token meta', async () => {
    const sam = await fileRequest(people.sam!.token, 'database/creds/stage-ro')
    expect(sam.body.data.state).toBe('active')
    const forged = await childOf(people.mallory!.token, { meta: { team: 'sre' } })
    expect((await fileRequest(forged, 'database/creds/stage-ro')).body.data.state).toBe('pending')
  })

  it('repro: an approver without a second factor cannot pass approver_mfa with a child token whose meta says mfa=totp', async () => {
    const req = await fileRequest(people.frank!.token, 'database/creds/mfa-ro')
    const forged = await childOf(people.abe!.token, { meta: { mfa: 'totp' } })
    const res = await approve(forged, req.body.data.id)
    expect(res.status).toBe(403)
    expect(res.body.errors[0]).toContain('second factor')
    const view = await call('GET', `sys/access/requests/${req.body.data.id}`, people.frank!.token)
    expect(view.body.data.state).toBe('pending')
    expect(view.body.data.decisions).toHaveLength(0)
  })
})

describe('item 2: a grant opens the one path it was asked for, under the rule that guards it', () => {
  it('repro: a glob request is refused, so a lenient rule cannot open prod-admin', async () => {
    const run = await ciLogin({ ref: 'refs/heads/main', environment: 'production' })
    expect((await call('GET', 'database/creds/prod-admin', run)).status).toBe(403)
    const glob = await fileRequest(run, 'database/creds/prod-*')
    expect(glob.status).toBe(400)
    expect(glob.body.errors[0]).toContain('concrete')
    expect((await fileRequest(run, 'database/creds/+')).status).toBe(400)
    expect((await call('GET', 'database/creds/prod-admin', run)).status).toBe(403)
    // Asked concretely, prod-admin falls under its strict rule: no auto-approval.
    const concrete = await fileRequest(run, 'database/creds/prod-admin', { ticket: 'INC-1' })
    expect(concrete.body.data.rule).toBe('a-prod-admin')
    expect(concrete.body.data.state).toBe('pending')
    expect((await call('GET', 'database/creds/prod-admin', run)).status).toBe(403)
  })

  it('repro: a grant for prod-ro does not open prod-admin, and stops opening prod-ro once a stricter rule guards it', async () => {
    const run = await ciLogin({ ref: 'refs/heads/main', environment: 'production' })
    const grant = await fileRequest(run, 'database/creds/prod-ro')
    expect(grant.body.data.state).toBe('active')
    expect((await call('GET', 'database/creds/prod-ro', run)).status).toBe(200)
    expect((await call('GET', 'database/creds/prod-admin', run)).status).toBe(403)
    ok(
      await server.call('POST', 'sys/access/rules/0-prod-ro-strict', {
        body: { paths: ['database/creds/prod-ro'], approvals: [{ group: 'dba', count: 2 }] },
      }),
    )
    try {
      const res = await call('GET', 'database/creds/prod-ro', run)
      expect(res.status).toBe(403)
      expect(res.body.errors[0]).toContain('0-prod-ro-strict')
    } finally {
      ok(await server.call('DELETE', 'sys/access/rules/0-prod-ro-strict'))
    }
  })

  it('shows the approver the concrete role that will be created', async () => {
    const req = await fileRequest(people.frank!.token, 'database/creds/prod-ro')
    const view = await call('GET', `sys/access/requests/${req.body.data.id}`, people.bob!.token)
    expect(view.body.data.path).toBe('database/creds/prod-ro')
    expect(JSON.stringify(view.body.data.target)).toContain('CREATE ROLE')
    expect(JSON.stringify(view.body.data.target)).not.toContain('unknown role')
  })
})

describe('item 4: one person is one entity, across every alias', () => {
  it('repro: a requester cannot approve their own request through a jwt alias of the same entity', async () => {
    const req = await fileRequest(people.alice!.token, 'database/creds/prod-ro')
    const viaJwt = await personJwtLogin('alice@acme.example')
    expect(viaJwt.entityId).toBe(people.alice!.entityId)
    const res = await approve(viaJwt.token, req.body.data.id)
    expect(res.status).toBe(403)
    expect(res.body.errors[0]).toContain('your own request')
  })

  it('repro: an approver who approves again through a second alias counts once', async () => {
    const req = await fileRequest(people.frank!.token, 'database/creds/prod-ro')
    const id = req.body.data.id
    expect((await approve(people.bob!.token, id)).body.data.state).toBe('pending')
    const bobJwt = await personJwtLogin('bob@acme.example')
    const again = await approve(bobJwt.token, id)
    expect(again.status).toBe(400)
    const view = await call('GET', `sys/access/requests/${id}`, people.frank!.token)
    expect(view.body.data.state).toBe('pending')
    expect((await call('GET', 'database/creds/prod-ro', people.frank!.token)).status).toBe(403)
    // A second, different person completes it.
    expect((await approve(people.carol!.token, id)).body.data.state).toBe('active')
  })
})

describe("item 5: a CI run's grant serves that run and its children only", () => {
  it("repro: run 22 on another branch cannot ride on run 11's grant through a child token", async () => {
    const run11 = await ciLogin({ ref: 'refs/heads/main', environment: 'production' })
    expect((await fileRequest(run11, 'database/creds/prod-ro')).body.data.state).toBe('active')
    const run22 = await ciLogin({ ref: 'refs/heads/evil-pr', environment: 'production' })
    const child22 = await childOf(run22)
    const orphan22 = (await call('POST', 'auth/token/create-orphan', run22, {})).body.auth
      .client_token as string
    for (const token of [run22, child22, orphan22]) {
      expect((await call('GET', 'database/creds/prod-ro', token)).status).toBe(403)
    }
    // Run 11's own child tokens (and their children) use run 11's grant.
    const child11 = await childOf(run11)
    const grandchild11 = await childOf(child11)
    for (const token of [child11, grandchild11]) {
      expect((await call('GET', 'database/creds/prod-ro', token)).status).toBe(200)
    }
  })
})

describe('item 12: a token sees its own requests and those it may decide', () => {
  it('repro: a plain requester can neither list everything nor read a stranger’s request', async () => {
    const mine = await fileRequest(people.frank!.token, 'database/creds/prod-ro', {
      justification: 'frank needs to look at invoices',
    })
    const theirs = await fileRequest(people.mallory!.token, 'database/creds/prod-ro', {
      justification: 'mallory: secret project codename',
    })
    const all = await call('LIST', 'sys/access/requests?filter=all', people.frank!.token)
    expect(all.status).toBe(403)
    const listed = await call('LIST', 'sys/access/requests', people.frank!.token)
    expect(listed.status).toBe(200)
    expect(listed.body.data.keys).toContain(mine.body.data.id)
    expect(listed.body.data.keys).not.toContain(theirs.body.data.id)
    const read = await call(
      'GET',
      `sys/access/requests/${theirs.body.data.id}`,
      people.frank!.token,
    )
    expect(read.status).toBe(403)
    expect(JSON.stringify(read.body)).not.toContain('codename')

    // An approver of the rule sees it; an auditor with sudo on sys/access/requests sees all.
    const bob = await call('GET', `sys/access/requests/${theirs.body.data.id}`, people.bob!.token)
    expect(bob.status).toBe(200)
    const audra = await call('LIST', 'sys/access/requests?filter=all', people.audra!.token)
    expect(audra.status).toBe(200)
    expect(audra.body.data.keys).toEqual(
      expect.arrayContaining([mine.body.data.id, theirs.body.data.id]),
    )
  })
})
