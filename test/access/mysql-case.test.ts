import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sql } from 'kysely'
import { startTestServer, type TestServer } from '../support/server.js'
import { freshStorage, type FreshStorage } from '../support/databases.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import {
  mountDatabase,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from '../engines/database-fixtures.js'
import { ciIssuer, human } from './support.js'

/*
 * Issue 12, found again by the second adversarial pass: on MySQL/MariaDB storage, keys compared
 * under the server's case-insensitive default collation (`utf8mb4_general_ci`), while access rules
 * match paths case-sensitively.
 * - Repro A: `GET database/creds/PROD-RO` found the role `prod-ro`, which no rule guarded under
 *   that spelling: credentials without a grant (and an auto-approving lenient rule opened the
 *   strict `prod-ADMIN` the same way).
 * - Repro B: a JWT login with subject `…refs/heads/MAIN` was given the entity of the alias
 *   `…refs/heads/main`, with its admin-written metadata: auto-approval by `entity_metadata`.
 * Migration 0012 makes every key compare byte for byte, as on SQLite and PostgreSQL.
 */

const ok = <T extends { status: number; body: any }>(res: T): T => {
  if (res.status >= 300) throw new Error(`setup failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res
}

describe('JIT access on MySQL storage: case-variant paths and aliases', () => {
  let fresh: FreshStorage
  let server: TestServer
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>
  let mallory: { token: string }

  let issuer: Awaited<ReturnType<typeof ciIssuer>>
  const ciLogin = async (ref: string) =>
    (await issuer.login({ repository: 'acme/app', ref }, `repo:acme/app:ref:${ref}`)) as {
      client_token: string
      entity_id: string
    }

  beforeAll(async () => {
    await assertPgPasswordChecking()
    fresh = await freshStorage('mysql')
    server = await startTestServer({ storage: fresh.storage })
    fixture = await pgGroupFixture()
    await mountDatabase(server)
    ok(await server.call('POST', 'database/config/pg', { body: pgConfigBody() }))
    for (const role of ['prod-ro', 'prod-admin']) {
      ok(
        await server.call('POST', `database/roles/${role}`, {
          body: { db_name: 'pg', creation_statements: pgGroupCreation(fixture.group) },
        }),
      )
    }
    ok(
      await server.call('PUT', 'sys/policies/acl/requester', {
        body: {
          policy: `path "database/creds/*" { capabilities = ["read"] }
path "secret/data/prod/*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
        },
      }),
    )
    ok(await server.call('POST', 'secret/data/prod/db', { body: { data: { password: 'x' } } }))
    ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
    mallory = await human(server, 'mallory', ['requester'])

    ok(await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } }))
    issuer = await ciIssuer(server, {
      name: 'ci',
      user_claim: 'sub',
      bound_claims: { repository: 'acme/app' },
      claim_mappings: { repository: 'repository', ref: 'ref' },
      token_policies: ['requester'],
      token_ttl: '10m',
    })
    // Strict: prod-admin needs two DBAs. Lenient: the rest of prod-* auto-approves main's CI.
    ok(
      await server.call('POST', 'sys/access/rules/a-prod-admin', {
        body: {
          paths: ['database/creds/prod-admin'],
          approvals: [{ group: 'dba', count: 2 }],
          max_duration: '1h',
        },
      }),
    )
    ok(
      await server.call('POST', 'sys/access/rules/prod', {
        body: {
          paths: ['database/creds/prod-*'],
          approvals: [{ group: 'dba', count: 1 }],
          max_duration: '1h',
          auto_approve: [{ claims: { repository: 'acme/app' }, auth_mount: 'jwt' }],
        },
      }),
    )
    // The main branch's pipeline is an admin-made entity whose metadata auto-approves.
    const mounts = ok(await server.call('GET', 'sys/auth')).body.data
    const entity = ok(
      await server.call('POST', 'identity/entity', {
        body: { name: 'acme-main', metadata: { deploy: 'production' } },
      }),
    ).body.data.id as string
    ok(
      await server.call('POST', 'identity/entity-alias', {
        body: {
          name: 'repo:acme/app:ref:refs/heads/main',
          canonical_id: entity,
          mount_accessor: mounts['jwt/'].accessor,
        },
      }),
    )
    ok(
      await server.call('POST', 'sys/access/rules/prod-kv', {
        body: {
          paths: ['secret/data/prod/*'],
          approvals: [{ group: 'dba', count: 1 }],
          max_duration: '1h',
          auto_approve: [{ entity_metadata: { deploy: 'production' } }],
        },
      }),
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await fresh?.drop()
    await fixture?.drop()
  })

  it('repro A: GET database/creds/PROD-RO without a grant is not served by the role prod-ro', async () => {
    expect(
      (await server.call('GET', 'database/creds/prod-ro', { token: mallory.token })).status,
    ).toBe(403)
    for (const path of ['database/creds/PROD-RO', 'database/creds/Prod-admin']) {
      const res = await server.call('GET', path, { token: mallory.token })
      expect(res.status, path).toBe(400)
      expect(res.body.errors[0]).toMatch(/unknown role/)
    }
  })

  it('repro A: a lenient rule cannot open the strict prod-admin through prod-ADMIN', async () => {
    const ci = await ciLogin('refs/heads/main')
    const filed = await server.call('POST', 'sys/access/requests', {
      token: ci.client_token,
      body: { path: 'database/creds/prod-ADMIN', duration: '10m', justification: 'deploy' },
    })
    // Filed under the lenient rule (it matches the spelling), but it opens nothing real.
    if (filed.status === 200) expect(filed.body.data.rule).toBe('prod')
    const read = await server.call('GET', 'database/creds/prod-ADMIN', { token: ci.client_token })
    expect(read.status).toBe(400)
    expect(read.body.errors[0]).toMatch(/unknown role/)
    const strict = await server.call('GET', 'database/creds/prod-admin', {
      token: ci.client_token,
    })
    expect(strict.status).toBe(403)
  })

  it('repro B: a login whose subject differs only in case gets its own entity, not its metadata', async () => {
    const main = await ciLogin('refs/heads/main')
    const evil = await ciLogin('refs/heads/MAIN')
    expect(evil.entity_id).not.toBe(main.entity_id)
    const filed = ok(
      await server.call('POST', 'sys/access/requests', {
        token: evil.client_token,
        body: { path: 'secret/data/prod/db', duration: '10m', justification: 'deploy' },
      }),
    )
    expect(filed.body.data.state).toBe('pending')
    expect(filed.body.data.auto_approved).toBe(false)
    const read = await server.call('GET', 'secret/data/prod/db', { token: evil.client_token })
    expect(read.status).toBe(403)
  })

  it('stores every text column of every table with a binary collation', async () => {
    const { rows } = await sql<{ table_name: string; column_name: string; collation: string }>`
      select table_name, column_name, collation_name as collation from information_schema.columns
      where table_schema = database() and collation_name is not null
        and table_name not like 'stint\\_migrations%'`.execute(fresh.storage.db)
    expect(rows.length).toBeGreaterThan(50)
    expect(rows.filter((r) => r.collation !== 'utf8mb4_bin')).toEqual([])
  })
})
