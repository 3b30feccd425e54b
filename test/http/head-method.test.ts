import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningServer } from '../../src/http/server.js'
import { startTestServer, type TestServer } from '../support/server.js'
import { assertPgPasswordChecking } from '../support/pg-password-auth.js'
import {
  mountDatabase,
  must,
  pgConfigBody,
  pgGroupCreation,
  pgGroupFixture,
} from '../engines/database-fixtures.js'

/**
 * Issue 12, item 9. Repro: `curl -I -H "X-Vault-Token: …" …/v1/database/creds/ro` ran the read,
 * created a PostgreSQL user and a lease, and threw the answer away (false "used" evidence on a
 * grant too). HEAD now runs only the reads that declare themselves free of side effects (the
 * status endpoints); everywhere else it is a 405 and nothing runs.
 */
describe('HEAD over a real socket (issue 12 item 9)', () => {
  let server: TestServer
  let running: RunningServer
  let fixture: Awaited<ReturnType<typeof pgGroupFixture>>

  beforeAll(async () => {
    await assertPgPasswordChecking()
    fixture = await pgGroupFixture()
    server = await startTestServer()
    running = await server.listen()
    await mountDatabase(server)
    must(await server.call('POST', 'database/config/pg', { body: pgConfigBody() }), 204)
    must(
      await server.call('POST', 'database/roles/head-ro', {
        body: { db_name: 'pg', creation_statements: pgGroupCreation(fixture.group) },
      }),
      204,
    )
  })
  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
    await fixture?.drop()
  })

  const head = (path: string) =>
    fetch(`${running.address}/v1/${path}`, {
      method: 'HEAD',
      headers: { 'X-Vault-Token': server.rootToken },
    })

  const pgUsers = async () =>
    Number(
      (
        await fixture.sql`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 'v-%-head-ro-%'`
      )[0]!.n,
    )

  it('HEAD database/creds/<role> is a 405 and mints no user and no lease', async () => {
    const usersBefore = await pgUsers()
    for (let i = 0; i < 3; i++) {
      const res = await head('database/creds/head-ro')
      expect(res.status).toBe(405)
      expect(await res.text()).toBe('')
    }
    const leases = await server.call('LIST', 'sys/leases/lookup/database/creds/head-ro/')
    expect(leases.status).toBe(404)
    expect(await pgUsers()).toBe(usersBefore)

    // The same token's GET still issues: HEAD was refused for what it is, not for the token.
    const got = must(await server.call('GET', 'database/creds/head-ro'))
    expect(got.data.username).toMatch(/^v-/)
    expect(await pgUsers()).toBe(usersBefore + 1)
  })

  it('HEAD on other reads (KV, token lookup-self) runs nothing and is a 405', async () => {
    must(await server.call('POST', 'secret/data/h', { body: { data: { a: 1 } } }))
    expect((await head('secret/data/h')).status).toBe(405)
    expect((await head('auth/token/lookup-self')).status).toBe(405)
  })

  it('HEAD on the status endpoints still answers their status with no body', async () => {
    for (const path of ['sys/health', 'sys/seal-status', 'sys/leader']) {
      const res = await head(path)
      expect(res.status, path).toBe(200)
      expect(await res.text()).toBe('')
    }
    const standby = await fetch(`${running.address}/v1/sys/health?activecode=204`, {
      method: 'HEAD',
    })
    expect(standby.status).toBe(204)
  })
})
