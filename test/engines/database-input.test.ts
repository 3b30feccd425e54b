import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { mountDatabase, must, pgConfigBody, pgTarget } from './database-fixtures.js'

/** Bad input gets a clear 4xx, changes nothing, and no secret shows up in any message. */
describe('database engine input checks', () => {
  let server: TestServer
  // The test admin's password equals its name; only look for it when it is distinct.
  const adminPassword =
    pgTarget().password !== pgTarget().username ? decodeURIComponent(pgTarget().password) : '\u0000'

  beforeAll(async () => {
    server = await startTestServer()
    await mountDatabase(server)
    must(
      await server.call('POST', 'database/config/pg', {
        body: pgConfigBody({ allowed_roles: ['ro', 'app-*'] }),
      }),
      204,
    )
    must(
      await server.call('POST', 'database/roles/ro', {
        body: {
          db_name: 'pg',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
          ],
        },
      }),
      204,
    )
  })

  afterAll(async () => {
    await server?.call('PUT', 'sys/leases/revoke-prefix/database/')
    await server?.close()
  })

  const expect400 = async (res: { status: number; body: any }, pattern: RegExp) => {
    expect(res.status).toBe(400)
    expect(res.body.errors.join(' ')).toMatch(pattern)
    expect(JSON.stringify(res.body)).not.toContain(adminPassword)
  }

  it('stores the connection sealed: the admin password is not in the storage row', async () => {
    const rows = await server.storage.db.selectFrom('database_configs').selectAll().execute()
    expect(rows.length).toBeGreaterThan(0)
    expect(JSON.stringify(rows)).not.toContain(adminPassword)
    expect(JSON.stringify(rows)).not.toContain('connection_url')
  })

  it('never returns the admin password on read', async () => {
    const body = must(await server.call('GET', 'database/config/pg'))
    expect(body.data.plugin_name).toBe('postgresql-database-plugin')
    expect(body.data.connection_details.username).toBe(decodeURIComponent(pgTarget().username))
    expect(body.data.connection_details.password).toBeUndefined()
    expect(JSON.stringify(body)).not.toContain(adminPassword)
  })

  it('redacts a literal password in the connection URL on read', async () => {
    const url = pgTarget()
    must(
      await server.call('POST', 'database/config/literal', {
        body: {
          plugin_name: 'postgresql-database-plugin',
          connection_url: url.toString(),
          allowed_roles: '*',
        },
      }),
      200,
    )
    const body = must(await server.call('GET', 'database/config/literal'))
    expect(body.data.connection_details.connection_url).toContain(':***@')
    expect(JSON.stringify(body)).not.toContain(adminPassword)
    must(await server.call('DELETE', 'database/config/literal'), 204)
  })

  it('rejects unknown plugin names and stores nothing', async () => {
    await expect400(
      await server.call('POST', 'database/config/bad', {
        body: pgConfigBody({ plugin_name: 'oracle-database-plugin' }),
      }),
      /unknown plugin_name/,
    )
    expect((await server.call('GET', 'database/config/bad')).status).toBe(404)
  })

  it('fails fast on an unreachable connection URL without leaking the password', async () => {
    const started = Date.now()
    await expect400(
      await server.call('POST', 'database/config/down', {
        body: pgConfigBody({
          connection_url: 'postgres://{{username}}:{{password}}@127.0.0.1:1/x',
        }),
      }),
      /^error creating database object: /,
    )
    await expect400(
      await server.call('POST', 'database/config/down', {
        body: pgConfigBody({
          connection_url: 'postgres://{{username}}:{{password}}@10.255.255.1:5432/x',
          connect_timeout: 1,
        }),
      }),
      /^error creating database object: /,
    )
    expect(Date.now() - started).toBeLessThan(8_000)
    expect((await server.call('GET', 'database/config/down')).status).toBe(404)
  })

  it('reports a wrong admin password without echoing any password', async () => {
    const res = await server.call('POST', 'database/config/wrong', {
      body: pgConfigBody({ password: 'Sekrit-wrong-pass-42' }),
    })
    await expect400(res, /error creating database object/)
    expect(JSON.stringify(res.body)).not.toContain('Sekrit-wrong-pass-42')
    expect((await server.call('GET', 'database/config/wrong')).status).toBe(404)
  })

  it('rejects SQL injection in role and connection names', async () => {
    for (const name of [`x";DROP ROLE stint_admin;--`, "x' OR '1'='1", 'a b', 'a`b']) {
      const res = await server.call('POST', `database/roles/${encodeURIComponent(name)}`, {
        body: { db_name: 'pg', creation_statements: [`CREATE ROLE "{{name}}"`] },
      })
      expect(res.status).toBe(400)
      expect(res.body.errors[0]).toMatch(/invalid role name/)
    }
    await expect400(
      await server.call('POST', `database/config/${encodeURIComponent('p"g')}`, {
        body: pgConfigBody(),
      }),
      /invalid connection name/,
    )
    expect(must(await server.call('LIST', 'database/roles')).data.keys).toEqual(['ro'])
  })

  it('rejects statements with unknown placeholders or values outside quotes', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[`CREATE ROLE "{{name}}" PASSWORD '{{secret}}'`], /unknown placeholder \{\{secret\}\}/],
      [[`CREATE ROLE {{name}} LOGIN`], /must be inside quotes/],
      [[`CREATE ROLE "{{password}}" LOGIN`], /may only appear inside '\.\.\.'/],
      [[`CREATE ROLE "{{name}}" PASSWORD '{{password}}`], /unterminated quote/],
      [[`CREATE ROLE "{{ name }" LOGIN`], /malformed placeholder/],
      [[], /missing creation_statements/],
    ]
    for (const [statements, pattern] of cases) {
      await expect400(
        await server.call('POST', 'database/roles/evil', {
          body: { db_name: 'pg', creation_statements: statements },
        }),
        pattern,
      )
    }
    await expect400(
      await server.call('POST', 'database/roles/evil', {
        body: {
          db_name: 'pg',
          creation_statements: [`CREATE ROLE "{{name}}"`],
          revocation_statements: ['DROP ROLE {{name}}'],
        },
      }),
      /revocation_statements: \{\{name\}\} must be inside quotes/,
    )
    expect((await server.call('GET', 'database/roles/evil')).status).toBe(404)
  })

  it('rejects TTL nonsense', async () => {
    const base = { db_name: 'pg', creation_statements: [`CREATE ROLE "{{name}}"`] }
    await expect400(
      await server.call('POST', 'database/roles/ttl', { body: { ...base, default_ttl: -5 } }),
      /default_ttl must not be negative/,
    )
    await expect400(
      await server.call('POST', 'database/roles/ttl', { body: { ...base, default_ttl: 'soon' } }),
      /invalid duration for default_ttl/,
    )
    await expect400(
      await server.call('POST', 'database/roles/ttl', {
        body: { ...base, default_ttl: '2h', max_ttl: '1h' },
      }),
      /default_ttl cannot be greater than max_ttl/,
    )
    await expect400(
      await server.call('POST', 'database/roles/ttl', { body: { ...base, max_ttl: '-1h' } }),
      /invalid duration for max_ttl/,
    )
    expect((await server.call('GET', 'database/roles/ttl')).status).toBe(404)
  })

  it('rejects roles on a connection that does not exist', async () => {
    await expect400(
      await server.call('POST', 'database/roles/orphan', {
        body: { db_name: 'nope', creation_statements: [`CREATE ROLE "{{name}}"`] },
      }),
      /connection "nope" does not exist/,
    )
  })

  it('rejects username templates with unknown functions or unsafe output', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{{ exec "rm -rf /" }}', /unknown function "exec"/],
      [`{{ printf "x'; DROP ROLE stint_admin; --%s" .RoleName }}`, /outside \[A-Za-z0-9._-\]/],
      ['{{ .Password }}', /unsupported term/],
      ['{{ random 80 }}', /longer than 63/],
      ['{{ printf "v-%s" (.RoleName | truncate 8) ', /unclosed/],
    ]
    for (const [template, pattern] of cases) {
      await expect400(
        await server.call('POST', 'database/config/tpl', {
          body: pgConfigBody({ username_template: template }),
        }),
        pattern,
      )
    }
    expect((await server.call('GET', 'database/config/tpl')).status).toBe(404)
  })

  it('uses a custom username template', async () => {
    must(
      await server.call('POST', 'database/config/tpl', {
        body: pgConfigBody({
          username_template:
            '{{ printf "v_%s_%s" (.RoleName | uppercase) (random 8) | lowercase }}',
        }),
      }),
      204,
    )
    must(
      await server.call('POST', 'database/roles/app-tpl', {
        body: {
          db_name: 'tpl',
          creation_statements: [
            `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
          ],
        },
      }),
      204,
    )
    const creds = must(await server.call('GET', 'database/creds/app-tpl'))
    expect(creds.data.username).toMatch(/^v_app-tpl_[a-z0-9]{8}$/)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }), 204)
  })

  it('refuses a password_policy that does not exist', async () => {
    await expect400(
      await server.call('POST', 'database/config/pp', {
        body: pgConfigBody({ password_policy: 'strong' }),
      }),
      /^password policy "strong" does not exist$/,
    )
    expect((await server.call('GET', 'database/config/pp')).status).toBe(404)
  })

  it('issues credentials on read only: POST/PUT on creds is a 405 and mints nothing', async () => {
    for (const method of ['POST', 'PUT']) {
      const res = await server.call(method, 'database/creds/ro')
      expect(res.status).toBe(405)
      expect(res.body).toEqual({ errors: ['unsupported operation'] })
    }
    expect((await server.call('LIST', 'sys/leases/lookup/database/creds/ro/')).status).toBe(404)
  })

  it('refuses unknown roles and roles the connection does not allow', async () => {
    await expect400(await server.call('GET', 'database/creds/nope'), /^unknown role: nope$/)
    must(
      await server.call('POST', 'database/roles/other', {
        body: { db_name: 'pg', creation_statements: [`CREATE ROLE "{{name}}"`] },
      }),
      204,
    )
    await expect400(
      await server.call('GET', 'database/creds/other'),
      /^"other" is not an allowed role$/,
    )
    expect((await server.call('LIST', 'sys/leases/lookup/database/creds/other/')).status).toBe(404)
  })

  it('caps the TTL at the role max_ttl', async () => {
    must(
      await server
        .call('POST', 'database/roles/ro', { body: { default_ttl: '10m', max_ttl: '5m' } })
        .then((r) => r),
      400,
    )
    must(
      await server.call('POST', 'database/roles/ro', {
        body: { default_ttl: '5m', max_ttl: '10m' },
      }),
      204,
    )
    const creds = must(await server.call('GET', 'database/creds/ro'))
    expect(creds.lease_duration).toBe(300)
    must(await server.call('PUT', 'sys/leases/revoke', { body: { lease_id: creds.lease_id } }), 204)
  })
})
