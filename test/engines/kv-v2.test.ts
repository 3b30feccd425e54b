import { readFileSync, existsSync } from 'node:fs'
import { sql, type Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { freshStorage } from '../support/databases.js'

const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/

let server: TestServer
let n = 0
/** A path no other test uses. */
const fresh = (name = 'key') => `t${++n}/${name}`

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(async () => {
  await server?.close()
})

const write = (path: string, data: unknown, options?: unknown, token?: string) =>
  server.call('POST', `secret/data/${path}`, {
    body: options === undefined ? { data } : { data, options },
    token,
  })
const read = (path: string, query = '', token?: string) =>
  server.call('GET', `secret/data/${path}${query}`, { token })
const metadata = (path: string) => server.call('GET', `secret/metadata/${path}`)

async function tokenWithPolicy(name: string, policy: string): Promise<string> {
  const put = await server.call('PUT', `sys/policy/${name}`, { body: { policy } })
  expect(put.status).toBe(204)
  const created = await server.call('POST', 'auth/token/create', { body: { policies: [name] } })
  expect(created.status).toBe(200)
  return created.body.auth.client_token as string
}

describe('KV v2 data', () => {
  it('writes a secret and reads it back with its version metadata', async () => {
    const path = fresh()
    const res = await write(path, { user: 'app', password: 'pw-1' })
    expect(res.status).toBe(200)
    expect(res.body.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '' })
    expect(res.body.data.created_time).toMatch(RFC3339_NANO)

    const got = await read(path)
    expect(got.status).toBe(200)
    expect(got.body.data.data).toEqual({ user: 'app', password: 'pw-1' })
    expect(got.body.data.metadata).toEqual({
      created_time: res.body.data.created_time,
      custom_metadata: null,
      deletion_time: '',
      destroyed: false,
      version: 1,
    })
    expect(got.body.lease_id).toBe('')
  })

  it('reads an older version with ?version=', async () => {
    const path = fresh()
    await write(path, { v: 'one' })
    await write(path, { v: 'two' })
    expect((await read(path)).body.data.data).toEqual({ v: 'two' })
    const old = await read(path, '?version=1')
    expect(old.status).toBe(200)
    expect(old.body.data.data).toEqual({ v: 'one' })
    expect(old.body.data.metadata.version).toBe(1)
  })

  it('answers 404 with an empty error list for a missing key or an unknown version', async () => {
    const missing = await read(fresh())
    expect(missing.status).toBe(404)
    expect(missing.body).toEqual({ errors: [] })
    const path = fresh()
    await write(path, { a: '1' })
    expect((await read(path, '?version=7')).status).toBe(404)
    expect((await read(path, '?version=abc')).status).toBe(400)
    // A repeated parameter is a list, which a one-value field refuses (not "the last one wins").
    const twice = await read(path, '?version=1&version=2')
    expect(twice.status).toBe(400)
    expect(twice.body.errors[0]).toMatch(/^version must be an integer/)
  })

  it('enforces check-and-set: 0 only creates, a stale version is refused', async () => {
    const path = fresh()
    expect((await write(path, { a: '1' }, { cas: 0 })).status).toBe(200)
    const again = await write(path, { a: '2' }, { cas: 0 })
    expect(again.status).toBe(400)
    expect(again.body.errors).toEqual(['check-and-set parameter did not match the current version'])
    expect((await write(path, { a: '2' }, { cas: 1 })).status).toBe(200)
    expect((await write(path, { a: '3' }, { cas: 1 })).status).toBe(400)
    expect((await read(path)).body.data.data).toEqual({ a: '2' })
  })

  it('lets exactly one of many concurrent writers with the same cas win', async () => {
    const path = fresh()
    await write(path, { n: 0 })
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => write(path, { n: i + 1 }, { cas: 1 })),
    )
    const statuses = results.map((r) => r.status).sort()
    expect(statuses.filter((s) => s === 200)).toHaveLength(1)
    expect(statuses.filter((s) => s === 400)).toHaveLength(11)
    expect((await metadata(path)).body.data.current_version).toBe(2)
  })

  it('gives concurrent writers without cas distinct versions', async () => {
    const path = fresh()
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => write(path, { i })))
    expect(results.every((r) => r.status === 200)).toBe(true)
    const versions = results.map((r) => r.body.data.version).sort((a, b) => a - b)
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
  })

  it('requires cas when the mount config says so', async () => {
    expect(
      (await server.call('POST', 'secret/config', { body: { cas_required: true } })).status,
    ).toBe(204)
    try {
      const path = fresh()
      const res = await write(path, { a: '1' })
      expect(res.status).toBe(400)
      expect(res.body.errors).toEqual(['check-and-set parameter required for this call'])
      expect((await metadata(path)).status).toBe(404)
      expect((await write(path, { a: '1' }, { cas: 0 })).status).toBe(200)
    } finally {
      await server.call('POST', 'secret/config', { body: { cas_required: false } })
    }
  })

  it('patches the latest version with a JSON merge patch', async () => {
    const path = fresh()
    await write(path, { keep: 'k', drop: 'd', nested: { a: '1', b: '2' } })
    const res = await server.call('PATCH', `secret/data/${path}`, {
      body: { data: { drop: null, added: 'x', nested: { b: null, c: '3' } } },
      headers: { 'Content-Type': 'application/merge-patch+json' },
    })
    expect(res.status).toBe(200)
    expect(res.body.data.version).toBe(2)
    expect((await read(path)).body.data.data).toEqual({
      keep: 'k',
      added: 'x',
      nested: { a: '1', c: '3' },
    })
  })

  it('answers 404 to a patch of a missing secret and 415 without the merge-patch type', async () => {
    const path = fresh()
    const missing = await server.call('PATCH', `secret/data/${path}`, {
      body: { data: { a: '1' } },
      headers: { 'Content-Type': 'application/merge-patch+json' },
    })
    expect(missing.status).toBe(404)
    expect((await metadata(path)).status).toBe(404)
    await write(path, { a: '1' })
    const wrongType = await server.call('PATCH', `secret/data/${path}`, {
      body: { data: { a: '2' } },
    })
    expect(wrongType.status).toBe(415)
  })

  it('soft-deletes the latest version on DELETE and reads it as 404 with the full envelope', async () => {
    const path = fresh()
    await write(path, { a: '1' })
    await write(path, { a: '2' })
    expect((await server.call('DELETE', `secret/data/${path}`)).status).toBe(204)
    const gone = await read(path)
    expect(gone.status).toBe(404)
    expect(gone.body.data.data).toBeNull()
    expect(gone.body.data.metadata.version).toBe(2)
    expect(gone.body.data.metadata.deletion_time).toMatch(RFC3339_NANO)
    expect(gone.body.data.metadata.destroyed).toBe(false)
    expect(gone.body.request_id).toBeTypeOf('string')
    expect((await read(path, '?version=1')).body.data.data).toEqual({ a: '1' })

    expect(
      (await server.call('POST', `secret/undelete/${path}`, { body: { versions: [2] } })).status,
    ).toBe(204)
    expect((await read(path)).body.data.data).toEqual({ a: '2' })
  })

  it('deletes chosen versions and destroys them for good', async () => {
    const path = fresh()
    await write(path, { a: '1' })
    await write(path, { a: '2' })
    await write(path, { a: '3' })
    expect(
      (await server.call('POST', `secret/delete/${path}`, { body: { versions: [1] } })).status,
    ).toBe(204)
    expect((await read(path, '?version=1')).status).toBe(404)
    expect(
      (await server.call('PUT', `secret/destroy/${path}`, { body: { versions: [2] } })).status,
    ).toBe(204)
    const destroyed = await read(path, '?version=2')
    expect(destroyed.status).toBe(404)
    expect(destroyed.body.data).toMatchObject({ data: null, metadata: { destroyed: true } })
    await server.call('POST', `secret/undelete/${path}`, { body: { versions: [2] } })
    expect((await read(path, '?version=2')).status).toBe(404)
    const meta = (await metadata(path)).body.data
    expect(meta.versions['2'].destroyed).toBe(true)
    expect(meta.versions['1'].deletion_time).toMatch(RFC3339_NANO)
    expect(meta.versions['3']).toEqual({
      created_time: expect.stringMatching(RFC3339_NANO),
      deletion_time: '',
      destroyed: false,
    })
  })

  it('refuses unknown or malformed versions on delete, undelete and destroy and changes nothing', async () => {
    const path = fresh()
    await write(path, { a: '1' })
    for (const op of ['delete', 'undelete', 'destroy']) {
      const res = await server.call('POST', `secret/${op}/${path}`, { body: { versions: [1, 9] } })
      expect(res.status).toBe(400)
      expect(res.body.errors[0]).toContain('9')
      expect((await server.call('POST', `secret/${op}/${path}`, { body: {} })).status).toBe(400)
      const bad = await server.call('POST', `secret/${op}/${path}`, { body: { versions: ['x'] } })
      expect(bad.status).toBe(400)
    }
    expect((await read(path)).body.data.data).toEqual({ a: '1' })
    const missing = await server.call('POST', `secret/destroy/${fresh()}`, {
      body: { versions: [1] },
    })
    expect(missing.status).toBe(404)
  })
})

describe('KV v2 bad input', () => {
  it('refuses data that is not an object, and changes nothing', async () => {
    const path = fresh()
    for (const data of ['text', [1, 2], 42, null]) {
      const res = await write(path, data)
      expect(res.status).toBe(400)
      expect(res.body.errors).toHaveLength(1)
    }
    expect((await server.call('POST', `secret/data/${path}`, { body: {} })).status).toBe(400)
    expect((await metadata(path)).status).toBe(404)
  })

  it('refuses keys over 1024 characters and secrets over 1 MiB', async () => {
    const path = fresh()
    const longKey = await write(path, { ['k'.repeat(1025)]: 'v' })
    expect(longKey.status).toBe(400)
    const nestedKey = await write(path, { outer: { ['k'.repeat(1025)]: 'v' } })
    expect(nestedKey.status).toBe(400)
    const huge = await write(path, { blob: 'x'.repeat(1024 * 1024 + 1) })
    expect(huge.status).toBe(413)
    expect((await metadata(path)).status).toBe(404)
    expect((await write(path, { ['k'.repeat(1024)]: 'v' })).status).toBe(200)
  })

  it('refuses paths that are too long, have empty segments or end in a slash', async () => {
    for (const path of ['a//b', `${'p'.repeat(513)}`, 'a/', 'trail%20', 'tab%09']) {
      const res = await server.call('POST', `secret/data/${path}`, { body: { data: { a: '1' } } })
      expect(res.status, path).toBe(400)
    }
    const listed = await server.call('LIST', 'secret/metadata/')
    const keys: string[] = listed.body?.data?.keys ?? []
    expect(keys).not.toContain('a/')
    expect(keys).not.toContain('p'.repeat(513))
  })

  it('refuses dot segments that reach the engine without URL normalisation', async () => {
    for (const path of ['secret/data/a/../b', 'secret/data/../x', 'secret/data/./x']) {
      const attempt = server.core.handle({
        id: 'dot-test',
        operation: 'update',
        path,
        data: { data: { a: '1' } },
        query: {},
        headers: {},
        clientToken: server.rootToken,
        remoteAddress: '127.0.0.1',
      })
      await expect(attempt, path).rejects.toMatchObject({ status: 400 })
    }
    expect((await server.call('LIST', 'secret/metadata/a/')).status).toBe(404)
  })

  it('refuses malformed options, cas and custom metadata', async () => {
    const path = fresh()
    expect((await write(path, { a: '1' }, 'cas')).status).toBe(400)
    expect((await write(path, { a: '1' }, { cas: -1 })).status).toBe(400)
    expect((await write(path, { a: '1' }, { cas: 'x' })).status).toBe(400)
    const meta = await server.call('POST', `secret/metadata/${path}`, {
      body: { custom_metadata: { owner: 5 } },
    })
    expect(meta.status).toBe(400)
    const bad = await server.call('POST', `secret/metadata/${path}`, { body: { max_versions: -2 } })
    expect(bad.status).toBe(400)
    const dva = await server.call('POST', `secret/metadata/${path}`, {
      body: { delete_version_after: 'soon' },
    })
    expect(dva.status).toBe(400)
    expect((await metadata(path)).status).toBe(404)
  })
})

describe('KV v2 metadata', () => {
  it('reports versions, settings and custom metadata', async () => {
    const path = fresh()
    const put = await server.call('POST', `secret/metadata/${path}`, {
      body: {
        max_versions: 5,
        cas_required: false,
        delete_version_after: '1h',
        custom_metadata: { owner: 'team-a' },
      },
    })
    expect(put.status).toBe(204)
    await write(path, { a: '1' })
    const res = await metadata(path)
    expect(res.status).toBe(200)
    expect(res.body.data).toMatchObject({
      cas_required: false,
      current_version: 1,
      custom_metadata: { owner: 'team-a' },
      delete_version_after: '1h0m0s',
      max_versions: 5,
      oldest_version: 0,
    })
    expect(res.body.data.created_time).toMatch(RFC3339_NANO)
    expect(res.body.data.updated_time).toMatch(RFC3339_NANO)
    // delete_version_after schedules the deletion in the future: still readable now.
    const got = await read(path)
    expect(got.status).toBe(200)
    expect(got.body.data.metadata.deletion_time).toMatch(RFC3339_NANO)
    expect(got.body.data.metadata.custom_metadata).toEqual({ owner: 'team-a' })
  })

  it('honours delete_version_after on read', async () => {
    const path = fresh()
    await server.call('POST', `secret/metadata/${path}`, { body: { delete_version_after: '1s' } })
    await write(path, { a: '1' })
    expect((await read(path)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 1100))
    const gone = await read(path)
    expect(gone.status).toBe(404)
    expect(gone.body.data.data).toBeNull()
  })

  it('trims the oldest versions beyond max_versions', async () => {
    const path = fresh()
    await server.call('POST', `secret/metadata/${path}`, { body: { max_versions: 3 } })
    for (let i = 1; i <= 5; i++) await write(path, { i })
    const meta = (await metadata(path)).body.data
    expect(Object.keys(meta.versions).sort()).toEqual(['3', '4', '5'])
    expect(meta.oldest_version).toBe(3)
    expect(meta.current_version).toBe(5)
    expect((await read(path, '?version=2')).status).toBe(404)
    expect((await read(path, '?version=3')).body.data.data).toEqual({ i: 3 })
  })

  it('trims to the mount default of 10 versions', async () => {
    const path = fresh()
    for (let i = 1; i <= 12; i++) await write(path, { i })
    const meta = (await metadata(path)).body.data
    expect(Object.keys(meta.versions)).toHaveLength(10)
    expect(meta.versions['1']).toBeUndefined()
    expect(meta.versions['12']).toBeDefined()
  })

  it('merges custom metadata on PATCH', async () => {
    const path = fresh()
    await server.call('POST', `secret/metadata/${path}`, {
      body: { custom_metadata: { a: '1', b: '2' } },
    })
    const res = await server.call('PATCH', `secret/metadata/${path}`, {
      body: { custom_metadata: { b: null, c: '3' } },
      headers: { 'Content-Type': 'application/merge-patch+json' },
    })
    expect(res.status).toBe(204)
    expect((await metadata(path)).body.data.custom_metadata).toEqual({ a: '1', c: '3' })
  })

  it('lists keys with sub-folders ending in a slash', async () => {
    await write('list-root/app/db', { a: '1' })
    await write('list-root/app/api', { a: '1' })
    await write('list-root/app/deep/er/x', { a: '1' })
    await write('list-root/app0', { a: '1' })
    await write('list-root/top', { a: '1' })
    const res = await server.call('LIST', 'secret/metadata/list-root')
    expect(res.status).toBe(200)
    expect(res.body.data.keys).toEqual(['app/', 'app0', 'top'])
    const inner = await server.call('GET', 'secret/metadata/list-root/app/?list=true')
    expect(inner.body.data.keys).toEqual(['api', 'db', 'deep/'])
    const empty = await server.call('LIST', 'secret/metadata/list-root/nothing/')
    expect(empty.status).toBe(404)
  })

  it('lists paths case-sensitively', async () => {
    await write('case/Key', { a: '1' })
    await write('case/key', { a: '2' })
    const res = await server.call('LIST', 'secret/metadata/case/')
    expect(res.body.data.keys).toEqual(['Key', 'key'])
    expect((await read('case/Key')).body.data.data).toEqual({ a: '1' })
  })

  it('removes every version and the metadata on DELETE metadata/', async () => {
    const path = fresh()
    await write(path, { a: '1' })
    await write(path, { a: '2' })
    expect((await server.call('DELETE', `secret/metadata/${path}`)).status).toBe(204)
    expect((await metadata(path)).status).toBe(404)
    expect((await read(path, '?version=1')).status).toBe(404)
    const again = await write(path, { b: '1' })
    expect(again.body.data.version).toBe(1)
  })

  it('returns the key tree without values from subkeys/', async () => {
    const path = fresh()
    await write(path, { a: '1', b: { c: { d: 'x' }, e: 'y' }, f: [1] })
    const all = await server.call('GET', `secret/subkeys/${path}`)
    expect(all.status).toBe(200)
    expect(all.body.data.subkeys).toEqual({ a: null, b: { c: { d: null }, e: null }, f: null })
    expect(all.body.data.metadata.version).toBe(1)
    const shallow = await server.call('GET', `secret/subkeys/${path}?depth=1`)
    expect(shallow.body.data.subkeys).toEqual({ a: null, b: null, f: null })
    expect(JSON.stringify(all.body)).not.toContain('"x"')
  })

  it('reads and writes the mount config', async () => {
    const before = await server.call('GET', 'secret/config')
    expect(before.body.data).toEqual({
      cas_required: false,
      delete_version_after: '0s',
      max_versions: 0,
    })
    await server.call('POST', 'secret/config', {
      body: { max_versions: 4, delete_version_after: 90 },
    })
    try {
      const after = await server.call('GET', 'secret/config')
      expect(after.body.data).toEqual({
        cas_required: false,
        delete_version_after: '1m30s',
        max_versions: 4,
      })
    } finally {
      await server.call('POST', 'secret/config', {
        body: { max_versions: 0, delete_version_after: 0 },
      })
    }
  })
})

describe('KV v2 access control', () => {
  it('needs create for a new key and update for an existing one', async () => {
    const existing = fresh()
    await write(existing, { a: '1' })
    const updater = await tokenWithPolicy(
      'kv-update-only',
      'path "secret/data/*" { capabilities = ["update", "read"] }',
    )
    const creator = await tokenWithPolicy(
      'kv-create-only',
      'path "secret/data/*" { capabilities = ["create"] }',
    )
    const newPath = fresh()
    expect((await write(newPath, { a: '1' }, undefined, updater)).status).toBe(403)
    expect((await write(existing, { a: '2' }, undefined, updater)).status).toBe(200)
    expect((await write(existing, { a: '3' }, undefined, creator)).status).toBe(403)
    expect((await write(newPath, { a: '1' }, undefined, creator)).status).toBe(200)
    expect((await read(newPath, '', creator)).status).toBe(403)
    expect((await read(existing, '', updater)).body.data.data).toEqual({ a: '2' })
  })
})

describe('KV v2 storage', () => {
  it('keeps secret values out of the SQLite file in clear', async () => {
    const marker = `plain-${Math.random().toString(36).slice(2)}-secret-value`
    await write(fresh('raw'), { password: marker })
    const file = server.storage.file!
    let bytes = readFileSync(file).toString('latin1')
    if (existsSync(`${file}-wal`)) bytes += readFileSync(`${file}-wal`).toString('latin1')
    expect(bytes).toContain('kv_versions')
    expect(bytes).not.toContain(marker)
  })

  it('deletes the mount rows when the engine is disabled', async () => {
    expect(
      (await server.call('POST', 'sys/mounts/scratch', { body: { type: 'kv-v2' } })).status,
    ).toBe(204)
    await server.call('POST', 'scratch/data/x', { body: { data: { a: '1' } } })
    const id = server.services.mounts.get('scratch/')!.entry.id
    const count = async () =>
      (
        await server.storage.db
          .selectFrom('kv_versions')
          .select('path')
          .where('mount_id', '=', id)
          .execute()
      ).length
    expect(await count()).toBe(1)
    expect((await server.call('DELETE', 'sys/mounts/scratch')).status).toBe(204)
    expect(await count()).toBe(0)
    const meta = await server.storage.db
      .selectFrom('kv_metadata')
      .select('path')
      .where('mount_id', '=', id)
      .execute()
    expect(meta).toEqual([])
  })

  describe.each(['postgres', 'mysql'] as const)('on %s storage', (dialect) => {
    it('stores values sealed and keeps cas under concurrent writers', async () => {
      const db = await freshStorage(dialect)
      const other = await startTestServer({ storage: db.storage })
      try {
        const marker = `plain-${Math.random().toString(36).slice(2)}-value`
        const res = await other.call('POST', 'secret/data/raw/x', { body: { data: { v: marker } } })
        expect(res.status).toBe(200)
        const rows = await (db.storage.db as unknown as Kysely<Record<string, { value: string }>>)
          .selectFrom('kv_versions')
          .select(sql<string>`value`.as('value'))
          .execute()
        expect(rows).toHaveLength(1)
        expect(rows[0]!.value).not.toContain(marker)
        expect((await other.call('GET', 'secret/data/raw/x')).body.data.data).toEqual({ v: marker })

        const racers = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            other.call('POST', 'secret/data/raw/x', { body: { data: { i }, options: { cas: 1 } } }),
          ),
        )
        expect(racers.filter((r) => r.status === 200)).toHaveLength(1)
        expect(racers.filter((r) => r.status === 400)).toHaveLength(7)
        const free = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            other.call('POST', 'secret/data/raw/y', { body: { data: { i } } }),
          ),
        )
        expect(free.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200])
        expect(free.map((r) => r.body.data.version).sort()).toEqual([1, 2, 3, 4, 5, 6])

        await other.call('POST', 'secret/data/Case/k', { body: { data: { a: '1' } } })
        await other.call('POST', 'secret/data/case/k', { body: { data: { a: '2' } } })
        const listed = await other.call('LIST', 'secret/metadata/')
        expect(listed.body.data.keys).toEqual(['Case/', 'case/', 'raw/'])
      } finally {
        await other.close()
        await db.drop().catch(() => {})
      }
    })
  })
})
