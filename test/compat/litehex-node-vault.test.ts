import { Client } from '@litehex/node-vault'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

/*
 * `@litehex/node-vault` (fetch + zod response schemas), unchanged, against a real Stint
 * listener. Every call returns `{ data }` or `{ error }`; its schemas check our response shapes.
 */

let server: TestServer
let endpoint: string

beforeAll(async () => {
  server = await startTestServer()
  endpoint = (await server.listen()).address
})
afterAll(async () => {
  await server?.close()
})

const client = (token?: string) => new Client({ endpoint, token: token ?? server.rootToken })

/** Unwraps a p-safe result, failing the test with the client's error. */
function ok<T>(result: { data?: T; error?: unknown }): T {
  if (result.error) throw result.error
  return result.data as T
}

describe('@litehex/node-vault against Stint', () => {
  it('writes, reads, lists and deletes KV v2 secrets with its kv2 helpers', async () => {
    const vc = client()
    const written = ok(
      await vc.kv2.write({ mountPath: 'secret', path: 'lh/app', data: { k: 'v' } }),
    )
    expect(written.data.version).toBe(1)
    ok(await vc.kv2.write({ mountPath: 'secret', path: 'lh/app', data: { k: 'v2' } }))
    const read = ok(await vc.kv2.read({ mountPath: 'secret', path: 'lh/app' }))
    expect(read.data.data).toEqual({ k: 'v2' })
    expect(read.data.metadata.version).toBe(2)
    // The client HTML-escapes "/" in the path when it adds `?version=`, so use a top-level key.
    ok(await vc.kv2.write({ mountPath: 'secret', path: 'lh-flat', data: { k: 'one' } }))
    ok(await vc.kv2.write({ mountPath: 'secret', path: 'lh-flat', data: { k: 'two' } }))
    const old = ok(await vc.kv2.read({ mountPath: 'secret', path: 'lh-flat', version: 1 }))
    expect(old.data.data).toEqual({ k: 'one' })

    const listed = ok(await vc.kv2.list({ mountPath: 'secret', path: 'lh/' }))
    expect(listed.data.keys).toEqual(['app'])

    const meta = ok(await vc.kv2.readMetadata({ mountPath: 'secret', path: 'lh/app' }))
    expect(meta.data.current_version).toBe(2)

    ok(await vc.kv2.deleteLatest({ mountPath: 'secret', path: 'lh/app' }))
    const gone = await vc.kv2.read({ mountPath: 'secret', path: 'lh/app' })
    expect(gone.error).toBeDefined()
    ok(await vc.kv2.deleteMetadata({ mountPath: 'secret', path: 'lh/app' }))
    expect((await vc.kv2.list({ mountPath: 'secret', path: 'lh/' })).error).toBeDefined()
  })

  it('uses the generic read, write, list and delete on KV v2 paths', async () => {
    const vc = client()
    ok(await vc.write({ path: 'secret/data/lh-generic/x', data: { data: { a: '1' } } }))
    const read = ok(await vc.read({ path: 'secret/data/lh-generic/x' }))
    expect(read.data.data).toEqual({ a: '1' })
    const listed = ok(await vc.list({ path: 'secret/metadata/lh-generic' }))
    expect(listed.data.keys).toEqual(['x'])
    ok(await vc.delete({ path: 'secret/metadata/lh-generic/x' }))
    expect((await vc.read({ path: 'secret/data/lh-generic/x' })).error).toBeDefined()
  })

  it('creates, looks up, renews and revokes tokens through token paths', async () => {
    const vc = client()
    const created = ok(
      await vc.write({ path: 'auth/token/create', data: { policies: ['default'], ttl: '1h' } }),
    ) as { auth: { client_token: string } }
    const child = created.auth.client_token
    const looked = ok(await vc.write({ path: 'auth/token/lookup', data: { token: child } })) as {
      data: { policies: string[] }
    }
    expect(looked.data.policies).toEqual(['default'])
    const self = ok(await client(child).read({ path: 'auth/token/lookup-self' }))
    expect(self.data.policies).toEqual(['default'])
    const renewed = ok(
      await vc.write({ path: 'auth/token/renew', data: { token: child, increment: '2h' } }),
    ) as { auth: { lease_duration: number } }
    expect(renewed.auth.lease_duration).toBeGreaterThan(3600)
    ok(await vc.write({ path: 'auth/token/revoke', data: { token: child } }))
    const denied = await client(child).read({ path: 'auth/token/lookup-self' })
    expect(String(denied.error?.message)).toContain('permission denied')
  })

  it('writes, reads, lists and deletes policies through sys/policies/acl', async () => {
    const vc = client()
    const policy = 'path "secret/data/lh/*" { capabilities = ["read"] }'
    ok(await vc.write({ path: 'sys/policies/acl/lh-read', data: { policy } }))
    const got = ok(await vc.read({ path: 'sys/policies/acl/lh-read' }))
    expect(got.data.policy).toBe(policy)
    const listed = ok(await vc.list({ path: 'sys/policies/acl' }))
    expect(listed.data.keys).toContain('lh-read')
    ok(await vc.delete({ path: 'sys/policies/acl/lh-read' }))
    expect((await vc.read({ path: 'sys/policies/acl/lh-read' })).error).toBeDefined()
  })

  it('enables, inspects and disables a mount', async () => {
    const vc = client()
    ok(await vc.mount({ mountPath: 'lh-kv', type: 'kv-v2' }))
    const info = ok(await vc.engineInfo({ mountPath: 'lh-kv' }))
    expect(info.data).toMatchObject({ type: 'kv', options: { version: '2' } })
    const mounts = ok(await vc.mounts())
    expect(mounts.data['lh-kv/']?.type).toBe('kv')
    ok(await vc.unmount({ mountPath: 'lh-kv' }))
    expect(ok(await vc.mounts()).data['lh-kv/']).toBeUndefined()
  })

  it('reads health and seal status', async () => {
    const vc = client()
    expect(ok(await vc.health())).toMatchObject({ initialized: true, sealed: false })
    expect(ok(await vc.sealStatus())).toMatchObject({ sealed: false, t: 1, n: 1 })
  })
})
