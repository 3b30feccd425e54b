import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

async function tokenFor(name: string, policy: string): Promise<string> {
  const put = await server.call('PUT', `sys/policies/acl/${name}`, { body: { policy } })
  expect(put.status, JSON.stringify(put.body)).toBe(204)
  const created = await server.call('POST', 'auth/token/create', { body: { policies: [name] } })
  expect(created.status).toBe(200)
  return created.body.auth.client_token as string
}

const write = (path: string, token: string, data: Record<string, unknown> = { v: '1' }) =>
  server.call('POST', `secret/data/${path}`, { token, body: { data } })
const read = (path: string, token: string) => server.call('GET', `secret/data/${path}`, { token })

describe('policy precedence through HTTP', () => {
  let token: string
  beforeAll(async () => {
    // Seed data as root so reads have something to find.
    for (const p of [
      'app/config',
      'app/db',
      'app/x/y',
      'team/a/creds',
      'team/b/creds',
      'open/one',
    ]) {
      expect((await write(p, server.rootToken)).status).toBe(200)
    }
    token = await tokenFor(
      'precedence',
      `
      path "secret/data/app/*"      { capabilities = ["read"] }
      path "secret/data/app/config" { capabilities = ["create", "update"] }
      path "secret/data/app/x/*"    { capabilities = ["read", "create", "update"] }
      path "secret/data/team/+/creds" { capabilities = ["read"] }
      path "secret/data/open/*"     { capabilities = ["read", "create", "update"] }
      path "secret/data/open/one"   { capabilities = ["deny"] }
      `,
    )
  })

  it('lets an exact rule override a glob that matches the same path', async () => {
    // app/config: exact rule gives create/update only, so the glob's read does not apply.
    expect((await read('app/config', token)).status).toBe(403)
    expect((await write('app/config', token)).status).toBe(200)
    // app/db: only the glob matches.
    expect((await read('app/db', token)).status).toBe(200)
    expect((await write('app/db', token)).status).toBe(403)
  })

  it('uses the longest glob when several match', async () => {
    expect((await write('app/x/y', token)).status).toBe(200)
    expect((await read('app/x/y', token)).status).toBe(200)
  })

  it('matches + as exactly one segment', async () => {
    expect((await read('team/a/creds', token)).status).toBe(200)
    expect((await read('team/b/creds', token)).status).toBe(200)
    expect((await read('team/a/b/creds', token)).status).toBe(403)
    expect((await read('team/creds', token)).status).toBe(403)
  })

  it('lets deny win over a grant from the same token', async () => {
    expect((await read('open/one', token)).status).toBe(403)
    expect((await write('open/two', token)).status).toBe(200)
  })

  it('lets deny in one policy win over a grant in another', async () => {
    await server.call('PUT', 'sys/policies/acl/grant-all', {
      body: { policy: 'path "secret/data/mix/*" { capabilities = ["read", "create", "update"] }' },
    })
    await server.call('PUT', 'sys/policies/acl/deny-one', {
      body: { policy: 'path "secret/data/mix/*" { capabilities = ["deny"] }' },
    })
    const both = await server.call('POST', 'auth/token/create', {
      body: { policies: ['grant-all', 'deny-one'] },
    })
    const t = both.body.auth.client_token as string
    expect((await write('mix/a', t)).status).toBe(403)
    const onlyGrant = await server.call('POST', 'auth/token/create', {
      body: { policies: ['grant-all'] },
    })
    expect((await write('mix/a', onlyGrant.body.auth.client_token)).status).toBe(200)
  })

  it('merges the capabilities of the same path across policies', async () => {
    await server.call('PUT', 'sys/policies/acl/m-read', {
      body: { policy: 'path "secret/data/merge/*" { capabilities = ["read"] }' },
    })
    await server.call('PUT', 'sys/policies/acl/m-write', {
      body: { policy: 'path "secret/data/merge/*" { capabilities = ["create"] }' },
    })
    const t = (
      await server.call('POST', 'auth/token/create', { body: { policies: ['m-read', 'm-write'] } })
    ).body.auth.client_token as string
    expect((await write('merge/a', t)).status).toBe(200)
    expect((await read('merge/a', t)).status).toBe(200)
  })

  it('tells create from update with the existence check', async () => {
    const t = await tokenFor('create-only', 'path "secret/data/co/*" { capabilities = ["create"] }')
    expect((await write('co/new', t)).status).toBe(200)
    // Same path again is an update: refused.
    expect((await write('co/new', t)).status).toBe(403)
  })
})

describe('sudo on root-protected paths', () => {
  it('refuses sys/auth/* and auth/token/accessors without sudo, allows them with it', async () => {
    const plain = await tokenFor(
      'no-sudo',
      `path "sys/auth/*" { capabilities = ["create", "update", "read", "delete"] }
       path "auth/token/accessors" { capabilities = ["list"] }
       path "auth/token/accessors/" { capabilities = ["list"] }`,
    )
    const body = { type: 'approle' }
    expect((await server.call('POST', 'sys/auth/approle-a', { token: plain, body })).status).toBe(
      403,
    )
    expect((await server.call('LIST', 'auth/token/accessors', { token: plain })).status).toBe(403)

    const sudo = await tokenFor(
      'with-sudo',
      `path "sys/auth/*" { capabilities = ["create", "update", "read", "delete", "sudo"] }
       path "auth/token/accessors" { capabilities = ["list", "sudo"] }
       path "auth/token/accessors/" { capabilities = ["list", "sudo"] }`,
    )
    expect((await server.call('POST', 'sys/auth/approle-a', { token: sudo, body })).status).toBe(
      204,
    )
    expect((await server.call('LIST', 'auth/token/accessors', { token: sudo })).status).toBe(200)
    expect((await server.call('DELETE', 'sys/auth/approle-a', { token: sudo })).status).toBe(204)
  })
})

describe('sys/policy and sys/policies/acl', () => {
  it('writes HCL and JSON policies, reads, lists and deletes them', async () => {
    const hcl = 'path "secret/data/hcl" { capabilities = ["read"] }'
    expect(
      (await server.call('PUT', 'sys/policy/legacy-hcl', { body: { policy: hcl } })).status,
    ).toBe(204)
    // The deprecated `rules` field still works, with a warning.
    const viaRules = await server.call('PUT', 'sys/policy/via-rules', { body: { rules: hcl } })
    expect(viaRules.status).toBe(200)
    expect(viaRules.body.warnings[0]).toMatch(/deprecated/)
    const json = JSON.stringify({ path: { 'secret/data/json': { capabilities: ['read'] } } })
    expect(
      (await server.call('PUT', 'sys/policies/acl/as-json', { body: { policy: json } })).status,
    ).toBe(204)
    const legacy = await server.call('GET', 'sys/policy/legacy-hcl')
    expect(legacy.status).toBe(200)
    expect(legacy.body.rules).toBe(hcl)
    const modern = await server.call('GET', 'sys/policies/acl/as-json')
    expect(modern.body.data.name).toBe('as-json')
    expect(modern.body.data.policy).toBe(json)
    const list = await server.call('LIST', 'sys/policies/acl')
    expect(list.body.data.keys).toEqual(
      expect.arrayContaining(['as-json', 'legacy-hcl', 'root', 'default']),
    )
    const legacyList = await server.call('GET', 'sys/policy')
    expect(legacyList.body.policies).toEqual(expect.arrayContaining(['legacy-hcl', 'root']))
    expect((await server.call('DELETE', 'sys/policies/acl/as-json')).status).toBe(204)
    expect((await server.call('GET', 'sys/policies/acl/as-json')).status).toBe(404)
  })

  it('refuses a policy that does not parse, and changes to root or deleting default', async () => {
    const bad = await server.call('PUT', 'sys/policies/acl/broken', {
      body: { policy: 'path "x" { capabilities = ["read"' },
    })
    expect(bad.status).toBe(400)
    expect((await server.call('GET', 'sys/policies/acl/broken')).status).toBe(404)
    const root = await server.call('PUT', 'sys/policies/acl/root', {
      body: { policy: 'path "*" { capabilities = ["read"] }' },
    })
    expect(root.status).toBe(400)
    expect((await server.call('DELETE', 'sys/policies/acl/default')).status).toBe(400)
  })
})

describe('sys/capabilities-self', () => {
  it('returns capabilities per path, with the single-path shortcut, and root for root', async () => {
    const t = await tokenFor(
      'caps',
      `path "secret/data/caps/*" { capabilities = ["read", "list"] }
       path "secret/data/caps/secret" { capabilities = ["deny"] }`,
    )
    const one = await server.call('POST', 'sys/capabilities-self', {
      token: t,
      body: { paths: ['secret/data/caps/a'] },
    })
    expect(one.status).toBe(200)
    expect(one.body.data['secret/data/caps/a']).toEqual(['list', 'read'])
    expect(one.body.data.capabilities).toEqual(['list', 'read'])
    expect(one.body.capabilities).toEqual(['list', 'read'])
    const many = await server.call('POST', 'sys/capabilities-self', {
      token: t,
      body: { paths: ['secret/data/caps/secret', 'sys/mounts'] },
    })
    expect(many.body.data['secret/data/caps/secret']).toEqual(['deny'])
    expect(many.body.data['sys/mounts']).toEqual(['deny'])
    const root = await server.call('POST', 'sys/capabilities-self', {
      body: { path: 'anything/at/all' },
    })
    expect(root.body.data.capabilities).toEqual(['root'])
    const none = await server.call('POST', 'sys/capabilities-self', { token: t, body: {} })
    expect(none.status).toBe(400)
  })
})

describe('sys/internal/ui/mounts/<path>', () => {
  it('returns the mount serving a path with its options and path', async () => {
    const t = await tokenFor('ui-reader', 'path "secret/data/ui/*" { capabilities = ["read"] }')
    const res = await server.call('GET', 'sys/internal/ui/mounts/secret/data/ui/x', { token: t })
    expect(res.status).toBe(200)
    expect(res.body.data.path).toBe('secret/')
    expect(res.body.data.type).toBe('kv')
    expect(res.body.data.options.version).toBe('2')
    const root = await server.call('GET', 'sys/internal/ui/mounts/secret')
    expect(root.body.data.path).toBe('secret/')
  })

  it('answers 403 with the preflight message when the token has nothing under the mount', async () => {
    const t = await tokenFor('ui-none', 'path "other/*" { capabilities = ["read"] }')
    const res = await server.call('GET', 'sys/internal/ui/mounts/secret/data/x', { token: t })
    expect(res.status).toBe(403)
    expect(res.body.errors[0]).toMatch(
      /^preflight capability check returned 403, please ensure client's policies grant access to path "secret\/data\/x"/,
    )
    const missing = await server.call('GET', 'sys/internal/ui/mounts/nomount/x')
    expect(missing.status).toBe(403)
    const noToken = await server.call('GET', 'sys/internal/ui/mounts/secret/x', { token: null })
    expect(noToken.status).toBe(403)
  })
})
