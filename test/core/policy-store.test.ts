import { describe, it, expect, beforeEach, afterEach, beforeAll, afterAll } from 'vitest'
import { openStorage, type Storage } from '../../src/storage/storage.js'
import { migrate } from '../../src/storage/migrate.js'
import { createPolicyStore, type PolicyStore } from '../../src/core/policy/store.js'
import { DEFAULT_POLICY_TEXT } from '../../src/core/policy/default-policy.js'
import { policyPaths } from '../../src/engines/sys/policies.js'
import { ApiError } from '../../src/core/errors.js'
import type { LogicalRequest, PathDef } from '../../src/core/request.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

let storage: Storage
let store: PolicyStore

beforeEach(async () => {
  storage = openStorage('sqlite::memory:')
  await migrate(storage)
  store = createPolicyStore({ storage })
})

afterEach(async () => {
  await storage.close()
})

const READ_KV = 'path "kv/*" { capabilities = ["read"] }'

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise
  } catch (err) {
    return err as ApiError
  }
  throw new Error('expected a rejection')
}

describe('policy store', () => {
  it('writes a policy and reads back its text at version 1', async () => {
    await store.write('ci', READ_KV)
    expect(await store.get('ci')).toMatchObject({ name: 'ci', text: READ_KV, version: 1 })
  })

  it('bumps the version on every write', async () => {
    await store.write('ci', READ_KV)
    await store.write('ci', 'path "kv/*" { capabilities = ["list"] }')
    const policy = await store.get('ci')
    expect(policy?.version).toBe(2)
    expect(policy?.text).toContain('list')
  })

  it('stores base64 input decoded', async () => {
    await store.write('b64', Buffer.from(READ_KV).toString('base64'))
    expect((await store.get('b64'))?.text).toBe(READ_KV)
  })

  it('writes nothing when the policy does not parse', async () => {
    await store.write('ci', READ_KV)
    const err = await rejection(store.write('ci', 'path "kv/*" { capabilities = [ }'))
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(400)
    expect(await store.get('ci')).toMatchObject({ text: READ_KV, version: 1 })
    expect(await rejection(store.write('new', 'nonsense {'))).toBeInstanceOf(ApiError)
    expect(await store.get('new')).toBeUndefined()
  })

  it('rejects empty policy text', async () => {
    expect((await rejection(store.write('e', '  '))).status).toBe(400)
  })

  it('lower-cases names and rejects invalid or overlong ones', async () => {
    await store.write('MixedCase', READ_KV)
    expect((await store.get('mixedcase'))?.name).toBe('mixedcase')
    expect((await rejection(store.write('bad/name', READ_KV))).status).toBe(400)
    expect((await rejection(store.write('x'.repeat(129), READ_KV))).status).toBe(400)
  })

  it('refuses to write root or response-wrapping', async () => {
    for (const name of ['root', 'response-wrapping']) {
      const err = await rejection(store.write(name, READ_KV))
      expect(err.status).toBe(400)
      expect(err.message).toBe(`cannot update "${name}" policy`)
    }
  })

  it('refuses to delete default and root', async () => {
    await store.ensureBuiltins()
    expect((await rejection(store.delete('default'))).message).toBe(
      'cannot delete "default" policy',
    )
    expect((await rejection(store.delete('root'))).status).toBe(400)
    expect(await store.get('default')).toBeDefined()
  })

  it('deletes a policy and succeeds when it is already gone', async () => {
    await store.write('ci', READ_KV)
    await store.delete('ci')
    await store.delete('ci')
    expect(await store.get('ci')).toBeUndefined()
  })

  it('lists stored names sorted', async () => {
    await store.write('b', READ_KV)
    await store.write('a', READ_KV)
    expect(await store.list()).toEqual(['a', 'b'])
  })

  it('creates the default policy once and keeps an edited one', async () => {
    await store.ensureBuiltins()
    expect((await store.get('default'))?.text).toBe(DEFAULT_POLICY_TEXT)
    await store.write('default', READ_KV)
    await store.ensureBuiltins()
    expect((await store.get('default'))?.text).toBe(READ_KV)
  })

  it('returns root with empty text without storing it', async () => {
    expect(await store.get('root')).toMatchObject({ name: 'root', text: '' })
    expect(await store.list()).toEqual([])
  })
})

describe('policy store ACLs', () => {
  it('compiles the ACL of the named policies and ignores missing ones', async () => {
    await store.write('ci', READ_KV)
    const acl = await store.acl(['ci', 'missing'])
    expect(acl.check('kv/x', 'read').allowed).toBe(true)
    expect(acl.check('kv/x', 'update').allowed).toBe(false)
  })

  it('gives the root policy every permission', async () => {
    expect((await store.acl(['root'])).check('sys/raw/x', 'delete', { sudo: true }).allowed).toBe(
      true,
    )
  })

  it('returns the cached ACL for the same names in any order', async () => {
    await store.write('a', READ_KV)
    await store.write('b', 'path "x" { capabilities = ["read"] }')
    expect(await store.acl(['b', 'a'])).toBe(await store.acl(['a', 'b', 'a']))
  })

  it('sees a write made on this node immediately', async () => {
    await store.write('ci', READ_KV)
    expect((await store.acl(['ci'])).check('kv/x', 'update').allowed).toBe(false)
    await store.write('ci', 'path "kv/*" { capabilities = ["update"] }')
    expect((await store.acl(['ci'])).check('kv/x', 'update').allowed).toBe(true)
  })

  it('stops granting a deleted policy', async () => {
    await store.write('ci', READ_KV)
    expect((await store.acl(['ci'])).check('kv/x', 'read').allowed).toBe(true)
    await store.delete('ci')
    expect((await store.acl(['ci'])).check('kv/x', 'read').allowed).toBe(false)
  })

  it('picks up another node’s write after invalidate()', async () => {
    const other = createPolicyStore({ storage })
    expect((await store.acl(['shared'])).check('kv/x', 'read').allowed).toBe(false)
    await other.write('shared', READ_KV)
    expect((await store.acl(['shared'])).check('kv/x', 'read').allowed).toBe(false)
    store.invalidate('shared')
    expect((await store.acl(['shared'])).check('kv/x', 'read').allowed).toBe(true)
  })

  it('re-reads storage once the cache TTL has passed', async () => {
    const shortLived = createPolicyStore({ storage, cacheTtlMs: 0 })
    const other = createPolicyStore({ storage })
    expect((await shortLived.acl(['shared'])).check('kv/x', 'read').allowed).toBe(false)
    await other.write('shared', READ_KV)
    expect((await shortLived.acl(['shared'])).check('kv/x', 'read').allowed).toBe(true)
  })

  it('compiles templated policies per identity', async () => {
    await store.write('own', 'path "kv/{{identity.entity.id}}" { capabilities = ["read"] }')
    const alice = await store.acl(['own'], { entityId: 'alice' })
    const bob = await store.acl(['own'], { entityId: 'bob' })
    expect(alice.check('kv/alice', 'read').allowed).toBe(true)
    expect(alice.check('kv/bob', 'read').allowed).toBe(false)
    expect(bob.check('kv/bob', 'read').allowed).toBe(true)
  })

  it('keeps at most maxCachedAcls compiled ACLs', async () => {
    const small = createPolicyStore({ storage, maxCachedAcls: 2 })
    const first = await small.acl(['a'])
    await small.acl(['b'])
    await small.acl(['c'])
    expect(await small.acl(['a'])).not.toBe(first)
  })

  it('grants the default policy lookup-self but not lease revocation', async () => {
    await store.ensureBuiltins()
    const acl = await store.acl(['default'])
    expect(acl.check('auth/token/lookup-self', 'read').allowed).toBe(true)
    expect(acl.check('sys/leases/revoke', 'update').allowed).toBe(false)
  })

  it('knows the built-in response-wrapping policy', async () => {
    const acl = await store.acl(['response-wrapping'])
    expect(acl.check('sys/wrapping/unwrap', 'update').allowed).toBe(true)
    expect(acl.check('cubbyhole/response', 'read').allowed).toBe(true)
    expect(acl.check('cubbyhole/other', 'read').allowed).toBe(false)
  })
})

describe('sys policy endpoints', () => {
  const request = (data: Record<string, unknown> = {}) =>
    ({
      id: 'r',
      operation: 'read',
      path: '',
      data,
      query: {},
      headers: {},
      remoteAddress: '',
    }) as LogicalRequest

  function route(paths: PathDef[], path: string, op: 'read' | 'list' | 'update' | 'delete') {
    for (const def of paths) {
      const m = def.pattern.exec(path)
      if (m) {
        const handler = def.operations[op]
        if (!handler) throw new Error(`no ${op} on ${path}`)
        return (data?: Record<string, unknown>) => handler(request(data), { ...m.groups })
      }
    }
    throw new Error(`no route for ${path}`)
  }

  it('lists policies with root under keys and policies, injected at the top level', async () => {
    await store.write('ci', READ_KV)
    const res = await route(policyPaths({ policies: store }), 'policy', 'read')()
    expect(res).toEqual({
      data: { keys: ['ci', 'root'], policies: ['ci', 'root'] },
      injectTopLevel: true,
    })
  })

  it('lists ACL policies on sys/policies/acl', async () => {
    await store.write('ci', READ_KV)
    const res = await route(policyPaths({ policies: store }), 'policies/acl', 'list')()
    expect(res?.data?.keys).toEqual(['ci', 'root'])
  })

  it('writes with policy on sys/policies/acl and returns nothing', async () => {
    const paths = policyPaths({ policies: store })
    expect(await route(paths, 'policies/acl/ci', 'update')({ policy: READ_KV })).toBeNull()
    const res = await route(paths, 'policies/acl/ci', 'read')()
    expect(res?.data).toEqual({ name: 'ci', policy: READ_KV })
  })

  it('accepts legacy rules on sys/policy with a deprecation warning and reads back rules', async () => {
    const paths = policyPaths({ policies: store })
    const res = await route(paths, 'policy/ci', 'update')({ rules: READ_KV })
    expect(res?.warnings).toEqual(["'rules' is deprecated, please use 'policy' instead"])
    expect(await route(paths, 'policy/ci', 'read')()).toEqual({
      data: { name: 'ci', rules: READ_KV },
      injectTopLevel: true,
    })
  })

  it('does not accept rules on sys/policies/acl', async () => {
    const paths = policyPaths({ policies: store })
    const err = await rejection(route(paths, 'policies/acl/ci', 'update')({ rules: READ_KV }))
    expect(err.status).toBe(400)
  })

  it('lower-cases the name and warns about it', async () => {
    const paths = policyPaths({ policies: store })
    const res = await route(paths, 'policies/acl/CI', 'update')({ policy: READ_KV })
    expect(res?.warnings?.[0]).toContain('lower-cased')
    expect((await store.get('ci'))?.text).toBe(READ_KV)
  })

  it('answers 404 for an unknown policy', async () => {
    const err = await rejection(route(policyPaths({ policies: store }), 'policy/nope', 'read')())
    expect(err.status).toBe(404)
  })

  it('deletes a policy and returns nothing', async () => {
    await store.write('ci', READ_KV)
    const paths = policyPaths({ policies: store })
    expect(await route(paths, 'policies/acl/ci', 'delete')()).toBeNull()
    expect(await store.get('ci')).toBeUndefined()
  })

  it('passes parse errors through as 400', async () => {
    const paths = policyPaths({ policies: store })
    const err = await rejection(route(paths, 'policy/ci', 'update')({ policy: 'path "x" {' }))
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/^failed to parse policy: /)
  })
})

describe.each(eachDialect)('policy store on %s', (dialect) => {
  let fresh: FreshStorage
  let onDialect: PolicyStore

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    onDialect = createPolicyStore({ storage: fresh.storage })
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('writes, bumps the version, lists and deletes', async () => {
    await onDialect.write('ci', READ_KV)
    await onDialect.write('ci', READ_KV)
    expect(await onDialect.get('ci')).toMatchObject({ text: READ_KV, version: 2 })
    expect(typeof (await onDialect.get('ci'))?.updatedAt).toBe('number')
    expect(await onDialect.list()).toContain('ci')
    await onDialect.delete('ci')
    expect(await onDialect.get('ci')).toBeUndefined()
  })

  it('creates the default policy idempotently, also from two nodes at once', async () => {
    const other = createPolicyStore({ storage: fresh.storage })
    await Promise.all([onDialect.ensureBuiltins(), other.ensureBuiltins()])
    await onDialect.ensureBuiltins()
    expect(await onDialect.get('default')).toMatchObject({ text: DEFAULT_POLICY_TEXT, version: 1 })
  })
})
