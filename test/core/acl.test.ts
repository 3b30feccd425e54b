import { describe, it, expect } from 'vitest'
import { compileAcl, type AclContext } from '../../src/core/policy/acl.js'
import { parsePolicy } from '../../src/core/policy/parse.js'
import { DEFAULT_POLICY_TEXT } from '../../src/core/policy/default-policy.js'

/** Compiles HCL texts, one policy per entry, named p0, p1, ... unless given as [name, text]. */
async function acl(texts: (string | [string, string])[], ctx?: AclContext) {
  const policies = await Promise.all(
    texts.map((t, i) => (Array.isArray(t) ? parsePolicy(t[0], t[1]) : parsePolicy(`p${i}`, t))),
  )
  return compileAcl(policies, ctx)
}

const rule = (path: string, ...caps: string[]) =>
  `path "${path}" { capabilities = [${caps.map((c) => `"${c}"`).join(', ')}] }\n`

describe('ACL matching precedence', () => {
  it('lets an exact rule win over a glob that grants more', async () => {
    const a = await acl([rule('secret/a', 'read') + rule('secret/*', 'read', 'update')])
    expect(a.check('secret/a', 'update').allowed).toBe(false)
    expect(a.check('secret/a', 'read').allowed).toBe(true)
    expect(a.check('secret/b', 'update').allowed).toBe(true)
  })

  it('uses only the most specific glob and does not add capabilities of shorter ones', async () => {
    const a = await acl([rule('secret/*', 'update'), rule('secret/data/*', 'read')])
    expect(a.check('secret/data/x', 'read').allowed).toBe(true)
    expect(a.check('secret/data/x', 'update').allowed).toBe(false)
    expect(a.check('secret/other', 'update').allowed).toBe(true)
  })

  it('treats a trailing "*" as a plain string prefix, not a segment boundary', async () => {
    const a = await acl([rule('secret/data/ci*', 'read')])
    expect(a.check('secret/data/ci', 'read').allowed).toBe(true)
    expect(a.check('secret/data/cicd/x', 'read').allowed).toBe(true)
    expect(a.check('secret/data/c', 'read').allowed).toBe(false)
  })

  it('matches "+" against exactly one segment', async () => {
    const a = await acl([rule('secret/+/config', 'read')])
    expect(a.check('secret/app/config', 'read').allowed).toBe(true)
    expect(a.check('secret/a/b/config', 'read').allowed).toBe(false)
    expect(a.check('secret/app/config/x', 'read').allowed).toBe(false)
  })

  it('prefers the rule whose first wildcard comes later', async () => {
    const a = await acl([rule('secret/+/config', 'read'), rule('secret/app/*', 'update')])
    expect(a.check('secret/app/config', 'update').allowed).toBe(true)
    expect(a.check('secret/app/config', 'read').allowed).toBe(false)
  })

  it('prefers a "+" rule over a "*" rule when both wildcards start at the same position', async () => {
    const a = await acl([rule('secret/*', 'update'), rule('secret/+/config', 'read')])
    expect(a.check('secret/app/config', 'read').allowed).toBe(true)
    expect(a.check('secret/app/config', 'update').allowed).toBe(false)
  })

  it('prefers a rule that does not end in "*" over one that does', async () => {
    const a = await acl([rule('a/+/bar*', 'update'), rule('a/+/bar', 'read')])
    expect(a.check('a/x/bar', 'read').allowed).toBe(true)
    expect(a.check('a/x/bar', 'update').allowed).toBe(false)
    expect(a.check('a/x/barn', 'update').allowed).toBe(true)
  })

  it('prefers fewer "+" segments', async () => {
    const a = await acl([rule('a/+/+/d', 'update'), rule('a/+/c/d', 'read')])
    expect(a.check('a/b/c/d', 'read').allowed).toBe(true)
    expect(a.check('a/b/c/d', 'update').allowed).toBe(false)
  })

  it('prefers the longer pattern', async () => {
    const a = await acl([rule('a/+/bar/b*', 'update'), rule('a/+/bar/ba*', 'read')])
    expect(a.check('a/x/bar/baz', 'read').allowed).toBe(true)
    expect(a.check('a/x/bar/baz', 'update').allowed).toBe(false)
  })

  it('breaks a full tie with the lexicographically larger pattern', async () => {
    const a = await acl([rule('a/+/+/y', 'update'), rule('a/+/x/+', 'read')])
    expect(a.check('a/1/x/y', 'read').allowed).toBe(true)
    expect(a.check('a/1/x/y', 'update').allowed).toBe(false)
  })

  it('denies when no rule matches', async () => {
    const a = await acl([rule('secret/a', 'read')])
    expect(a.check('secret/b', 'read')).toEqual({
      allowed: false,
      rootPrivs: false,
      grantingPolicies: [],
    })
  })

  it('strips leading slashes from the request path', async () => {
    const a = await acl([rule('secret/a', 'read')])
    expect(a.check('//secret/a', 'read').allowed).toBe(true)
  })
})

describe('ACL merging', () => {
  it('ORs the capabilities of identical paths across policies', async () => {
    const a = await acl([rule('secret/*', 'read'), rule('secret/*', 'update')])
    expect(a.check('secret/x', 'read').allowed).toBe(true)
    expect(a.check('secret/x', 'update').allowed).toBe(true)
    expect(a.capabilities('secret/x')).toEqual(['read', 'update'])
  })

  it('does not merge "secret/a" with the different pattern "secret/a*"', async () => {
    const a = await acl([rule('secret/a', 'read'), rule('secret/a*', 'update')])
    expect(a.check('secret/a', 'update').allowed).toBe(false)
    expect(a.check('secret/ab', 'update').allowed).toBe(true)
  })

  it('makes the merged rule deny-only when any policy denies, in either order', async () => {
    for (const texts of [
      [rule('secret/x', 'sudo', 'read'), rule('secret/x', 'deny')],
      [rule('secret/x', 'deny'), rule('secret/x', 'sudo', 'read')],
    ]) {
      const a = await acl(texts)
      expect(a.check('secret/x', 'read').allowed).toBe(false)
      expect(a.check('secret/x', 'read', { sudo: true })).toMatchObject({
        allowed: false,
        rootPrivs: false,
      })
      expect(a.capabilities('secret/x')).toEqual(['deny'])
    }
  })

  it('lets a more specific deny glob block a broader grant', async () => {
    const a = await acl([rule('secret/*', 'read', 'sudo'), rule('secret/private/*', 'deny')])
    expect(a.check('secret/private/key', 'read', { sudo: true }).allowed).toBe(false)
    expect(a.check('secret/public', 'read').allowed).toBe(true)
  })

  it('reports the policies that granted the capability used', async () => {
    const a = await acl([
      ['reader', rule('kv/*', 'read')],
      ['writer', rule('kv/*', 'update')],
      ['both', rule('kv/*', 'read', 'update')],
    ])
    expect(a.check('kv/x', 'read').grantingPolicies.sort()).toEqual(['both', 'reader'])
    expect(a.check('kv/x', 'update').grantingPolicies.sort()).toEqual(['both', 'writer'])
  })
})

describe('ACL sudo, list and root', () => {
  it('requires sudo on root-protected paths', async () => {
    const plain = await acl([rule('sys/audit/*', 'update')])
    expect(plain.check('sys/audit/file', 'update', { sudo: true })).toMatchObject({
      allowed: false,
      rootPrivs: false,
    })
    const withSudo = await acl([rule('sys/audit/*', 'update', 'sudo')])
    expect(withSudo.check('sys/audit/file', 'update', { sudo: true })).toMatchObject({
      allowed: true,
      rootPrivs: true,
    })
  })

  it('does not let sudo alone grant an operation', async () => {
    const a = await acl([rule('sys/seal', 'sudo')])
    expect(a.check('sys/seal', 'update', { sudo: true }).allowed).toBe(false)
  })

  it('matches LIST against an exact rule without the trailing slash', async () => {
    const a = await acl([rule('secret/metadata', 'list')])
    expect(a.check('secret/metadata/', 'list').allowed).toBe(true)
  })

  it('does not apply the trailing-slash fallback to other operations', async () => {
    const a = await acl([rule('secret/metadata', 'read', 'list')])
    expect(a.check('secret/metadata/', 'read').allowed).toBe(false)
  })

  it('matches LIST against "+" rules without the trailing slash', async () => {
    const a = await acl([rule('kv/metadata/+', 'list')])
    expect(a.check('kv/metadata/team/', 'list').allowed).toBe(true)
    expect(a.check('kv/metadata/team/x/', 'list').allowed).toBe(false)
  })

  it('lets the root policy do anything and report the root capability', async () => {
    const a = await acl([['root', '']])
    expect(a.root).toBe(true)
    expect(a.check('sys/raw/anything', 'delete', { sudo: true })).toEqual({
      allowed: true,
      rootPrivs: true,
      grantingPolicies: ['root'],
    })
    expect(a.capabilities('any/path')).toEqual(['root'])
  })

  it('reports deny for a path no policy covers', async () => {
    const a = await acl([])
    expect(a.capabilities('secret/x')).toEqual(['deny'])
  })

  it('reports capabilities sorted by name', async () => {
    const a = await acl([rule('kv/x', 'update', 'sudo', 'read', 'create', 'list')])
    expect(a.capabilities('kv/x')).toEqual(['create', 'list', 'read', 'sudo', 'update'])
  })
})

describe('the default policy', () => {
  const defaultAcl = (ctx?: AclContext) => acl([['default', DEFAULT_POLICY_TEXT]], ctx)

  it('allows a token to read its own lookup-self', async () => {
    expect((await defaultAcl()).check('auth/token/lookup-self', 'read').allowed).toBe(true)
  })

  it('allows renewing leases but not revoking them', async () => {
    const a = await defaultAcl()
    expect(a.check('sys/leases/renew', 'update').allowed).toBe(true)
    expect(a.check('sys/leases/revoke', 'update').allowed).toBe(false)
  })

  it('gives full use of the cubbyhole', async () => {
    const a = await defaultAcl()
    expect(a.capabilities('cubbyhole/x')).toEqual(['create', 'delete', 'list', 'read', 'update'])
  })

  it('lets a token read its own entity but no other', async () => {
    const a = await defaultAcl({ entityId: 'e-1', entityName: 'alice' })
    expect(a.check('identity/entity/id/e-1', 'read').allowed).toBe(true)
    expect(a.check('identity/entity/name/alice', 'read').allowed).toBe(true)
    expect(a.check('identity/entity/id/e-2', 'read').allowed).toBe(false)
  })

  it('drops the entity rules for a token without an entity', async () => {
    const a = await defaultAcl()
    expect(a.check('identity/entity/id/', 'read').allowed).toBe(false)
    expect(a.check('identity/entity/id/{{identity.entity.id}}', 'read').allowed).toBe(false)
  })
})

describe('ACL templating', () => {
  it('resolves entity metadata and group names', async () => {
    const a = await acl(
      [
        rule('kv/{{identity.entity.metadata.team}}/*', 'read') +
          rule('groups/{{identity.groups.ids.g1.name}}', 'update'),
      ],
      { entityId: 'e', metadata: { team: 'red' }, groups: [{ id: 'g1', name: 'ops' }] },
    )
    expect(a.check('kv/red/x', 'read').allowed).toBe(true)
    expect(a.check('kv/blue/x', 'read').allowed).toBe(false)
    expect(a.check('groups/ops', 'update').allowed).toBe(true)
  })

  it('drops a rule whose template value would inject a glob', async () => {
    const a = await acl([rule('kv/{{identity.entity.name}}', 'read')], { entityName: 'a*' })
    expect(a.check('kv/a*', 'read').allowed).toBe(false)
    expect(a.check('kv/abc', 'read').allowed).toBe(false)
  })
})

describe('ACL parameter constraints', () => {
  const params = `path "db/roles/*" {
    capabilities = ["create", "update", "read"]
    allowed_parameters = { "db_name" = ["ci-*", "prod"], "ttl" = [] }
    denied_parameters = { "ttl" = ["0"] }
    required_parameters = ["db_name"]
  }`

  it('allows data that satisfies allowed, denied and required parameters', async () => {
    const a = await acl([params])
    expect(a.check('db/roles/r', 'update', { data: { db_name: 'ci-1', ttl: '1h' } }).allowed).toBe(
      true,
    )
  })

  it('denies a request missing a required parameter', async () => {
    const a = await acl([params])
    expect(a.check('db/roles/r', 'update', { data: { ttl: '1h' } }).allowed).toBe(false)
  })

  it('denies a parameter outside the allowed list', async () => {
    const a = await acl([params])
    const check = (data: Record<string, unknown>) => a.check('db/roles/r', 'update', { data })
    expect(check({ db_name: 'dev' }).allowed).toBe(false)
    expect(check({ db_name: 'prod', other: 1 }).allowed).toBe(false)
    expect(check({ db_name: 'prod,dev' }).allowed).toBe(false)
    expect(check({ db_name: 'prod, ci-2' }).allowed).toBe(true)
    expect(check({ db_name: ['ci-1', 'prod'] }).allowed).toBe(true)
  })

  it('denies a denied parameter value', async () => {
    const a = await acl([params])
    expect(a.check('db/roles/r', 'update', { data: { db_name: 'prod', ttl: '0' } }).allowed).toBe(
      false,
    )
  })

  it('denies every parameter when "*" is denied, but allows empty data', async () => {
    const a = await acl([
      'path "x" {\n capabilities = ["update"]\n denied_parameters = { "*" = [] }\n}',
    ])
    expect(a.check('x', 'update', { data: { any: 1 } }).allowed).toBe(false)
    expect(a.check('x', 'update', { data: {} }).allowed).toBe(true)
  })

  it('allows any other parameter when "*" is allowed next to constrained ones', async () => {
    const a = await acl([
      'path "x" {\n capabilities = ["update"]\n allowed_parameters = { "*" = [], "mode" = ["a"] }\n}',
    ])
    expect(a.check('x', 'update', { data: { free: 'v', mode: 'a' } }).allowed).toBe(true)
    expect(a.check('x', 'update', { data: { mode: 'b' } }).allowed).toBe(false)
  })

  it('skips parameter checks when no data is given and for delete and list', async () => {
    const a = await acl([
      'path "x" {\n capabilities = ["update", "delete"]\n required_parameters = ["must"]\n}',
    ])
    expect(a.check('x', 'update').allowed).toBe(true)
    expect(a.check('x', 'delete', { data: {} }).allowed).toBe(true)
    expect(a.check('x', 'update', { data: {} }).allowed).toBe(false)
  })
})

describe('ACL mount access (hasAnyUnder)', () => {
  it('finds grants below a mount through exact, prefix and "+" rules', async () => {
    expect((await acl([rule('secret/data/a', 'read')])).hasAnyUnder('secret/')).toBe(true)
    expect((await acl([rule('secret/data/*', 'read')])).hasAnyUnder('secret/')).toBe(true)
    expect((await acl([rule('+/data/x', 'read')])).hasAnyUnder('secret/')).toBe(true)
    expect((await acl([rule('*', 'read')])).hasAnyUnder('secret/')).toBe(true)
  })

  it('finds nothing when the only rules are elsewhere or deny', async () => {
    expect((await acl([rule('kv/data/a', 'read')])).hasAnyUnder('secret/')).toBe(false)
    expect((await acl([rule('secret/data/*', 'deny')])).hasAnyUnder('secret/')).toBe(false)
  })
})

describe('ACL compile speed', () => {
  it('compiles 2,000 rules and answers checks correctly at that size', async () => {
    let text = ''
    for (let i = 0; i < 1000; i++)
      text += rule(`kv/team-${i}/*`, 'read') + rule(`kv/+/app-${i}`, 'update')
    const policy = await parsePolicy('big', text)
    // Speed is measured in bench/, never here: this checks the answers a big ACL gives.
    const a = compileAcl([policy])
    let updates = 0
    let shadowed = 0
    for (let i = 0; i < 2_000; i++) {
      if (a.check(`kv/other/app-${i % 1000}`, 'update').allowed) updates++
      // `kv/team-N/*` (read) outranks `kv/+/app-M` (its wildcard comes later), as in Vault.
      if (a.check(`kv/team-${i % 1000}/app-${i % 997}`, 'update').allowed) shadowed++
    }
    expect(updates).toBe(2_000)
    expect(shadowed).toBe(0)
    expect(a.check('kv/team-5/app-5', 'read').allowed).toBe(true)
    expect(a.check('kv/team-5/app-5', 'update').allowed).toBe(false)
    expect(a.check('kv/other/app-5', 'update').allowed).toBe(true)
  })
})
