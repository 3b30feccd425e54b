import { describe, expect, it } from 'vitest'
import { eachDialect, freshStorage } from '../support/databases.js'
import { startTestServer } from '../support/server.js'

describe.each(eachDialect)('AppRole and JWT roles on %s storage', (dialect) => {
  it('spends a num_uses=1 secret id exactly once under 10 concurrent logins', async () => {
    const db = await freshStorage(dialect)
    const server = await startTestServer({ storage: db.storage })
    try {
      await server.call('POST', 'sys/auth/approle', { body: { type: 'approle' } })
      expect(
        (
          await server.call('POST', 'auth/approle/role/svc', {
            body: { token_policies: 'x', secret_id_ttl: '1h' },
          })
        ).status,
      ).toBe(204)
      const roleId = (await server.call('GET', 'auth/approle/role/svc/role-id')).body.data.role_id
      const sid = (
        await server.call('POST', 'auth/approle/role/svc/secret-id', { body: { num_uses: 1 } })
      ).body.data
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          server.call('POST', 'auth/approle/login', {
            token: null,
            body: { role_id: roleId, secret_id: sid.secret_id },
          }),
        ),
      )
      expect(results.filter((r) => r.status === 200)).toHaveLength(1)
      expect(results.filter((r) => r.status === 400)).toHaveLength(9)
      const rows = await db.storage.db.selectFrom('approle_secret_ids').selectAll().execute()
      expect(rows).toHaveLength(0)

      const many = (
        await server.call('POST', 'auth/approle/role/svc/secret-id', { body: { num_uses: 4 } })
      ).body.data
      const burst = await Promise.all(
        Array.from({ length: 10 }, () =>
          server.call('POST', 'auth/approle/login', {
            token: null,
            body: { role_id: roleId, secret_id: many.secret_id },
          }),
        ),
      )
      expect(burst.filter((r) => r.status === 200)).toHaveLength(4)

      await server.call('POST', 'sys/auth/jwt', { body: { type: 'jwt' } })
      const role = await server.call('POST', 'auth/jwt/role/ci', {
        body: {
          role_type: 'jwt',
          user_claim: 'repository',
          bound_audiences: ['https://github.com/org'],
          bound_claims: { repository: 'org/repo', run_attempt: 1 },
          claim_mappings: { ref: 'ref' },
          token_policies: ['ci'],
        },
      })
      expect(role.status).toBe(204)
      const read = await server.call('GET', 'auth/jwt/role/ci')
      expect(read.body.data.bound_claims).toEqual({ repository: 'org/repo', run_attempt: 1 })
      expect(read.body.data.claim_mappings).toEqual({ ref: 'ref' })

      // Disabling the mounts deletes their roles and secret ids.
      await server.call('DELETE', 'sys/auth/approle')
      await server.call('DELETE', 'sys/auth/jwt')
      expect(await db.storage.db.selectFrom('approle_roles').selectAll().execute()).toHaveLength(0)
      expect(
        await db.storage.db.selectFrom('approle_secret_ids').selectAll().execute(),
      ).toHaveLength(0)
      expect(await db.storage.db.selectFrom('jwt_roles').selectAll().execute()).toHaveLength(0)
    } finally {
      await server.close()
      await db.drop().catch(() => {})
    }
  })
})
