import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, type CliOptions } from './harness.js'

describe('stint kv on missing secrets and kv metadata patch', () => {
  let server: TestServer
  let opts: CliOptions

  beforeAll(async () => {
    server = await startTestServer()
    opts = { address: (await server.listen()).address, env: { STINT_TOKEN: server.rootToken } }
    expect((await cli(['kv', 'put', 'secret/app/db', 'user=app'], opts)).code).toBe(0)
  })
  afterAll(async () => {
    await server.close()
  })

  test('kv patch of a missing secret says "No value found" and exits 2, like kv get', async () => {
    const patched = await cli(['kv', 'patch', 'secret/app/nothere', 'a=1'], opts)
    const read = await cli(['kv', 'get', 'secret/app/nothere'], opts)
    for (const res of [patched, read]) {
      expect(res).toMatchObject({
        code: 2,
        stdout: '',
        stderr: 'No value found at secret/data/app/nothere\n',
      })
    }
    const json = await cli(['kv', 'patch', '-format=json', 'secret/app/nothere', 'a=1'], opts)
    expect(json).toMatchObject({ code: 2, stdout: '' })
  })

  test('kv patch of a deleted latest version also says "No value found"', async () => {
    expect((await cli(['kv', 'put', 'secret/app/gone', 'a=1'], opts)).code).toBe(0)
    expect((await cli(['kv', 'delete', 'secret/app/gone'], opts)).code).toBe(0)
    const res = await cli(['kv', 'patch', 'secret/app/gone', 'a=2'], opts)
    expect(res).toMatchObject({ code: 2, stderr: 'No value found at secret/data/app/gone\n' })
  })

  test.each([
    [['kv', 'undelete', '-versions=1']],
    [['kv', 'destroy', '-versions=1']],
    [['kv', 'delete', '-versions=1']],
  ])('%j of a missing secret says "No value found" and exits 2', async (argv) => {
    const res = await cli([...argv, 'secret/app/nothere'], opts)
    expect(res).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'No value found at secret/data/app/nothere\n',
    })
  })

  test('kv metadata get and read of missing paths say "No value found"', async () => {
    const meta = await cli(['kv', 'metadata', 'get', 'secret/app/nothere'], opts)
    expect(meta).toMatchObject({
      code: 2,
      stderr: 'No value found at secret/metadata/app/nothere\n',
    })
    const read = await cli(['read', 'secret/data/app/nothere'], opts)
    expect(read).toMatchObject({ code: 2, stderr: 'No value found at secret/data/app/nothere\n' })
  })

  test('kv metadata patch changes only the given settings and merges custom metadata', async () => {
    const put = await cli(
      [
        'kv',
        'metadata',
        'put',
        '-max-versions=7',
        '-delete-version-after=1h',
        '-custom-metadata=owner=team-a',
        '-custom-metadata=ticket=OPS-1',
        'secret/app/db',
      ],
      opts,
    )
    expect(put.code, put.stderr).toBe(0)
    const res = await cli(
      [
        'kv',
        'metadata',
        'patch',
        '-cas-required',
        '-custom-metadata=owner=team-b',
        '-custom-metadata=env=prod',
        '-remove-custom-metadata=ticket',
        'secret/app/db',
      ],
      opts,
    )
    expect(res).toMatchObject({
      code: 0,
      stdout: 'Success! Data written to: secret/metadata/app/db\n',
    })
    const meta = JSON.parse(
      (await cli(['kv', 'metadata', 'get', '-format=json', 'secret/app/db'], opts)).stdout,
    )
    expect(meta.data).toMatchObject({
      max_versions: 7,
      cas_required: true,
      delete_version_after: '1h0m0s',
      custom_metadata: { owner: 'team-b', env: 'prod' },
    })
    const more = await cli(
      ['kv', 'metadata', 'patch', '-mount=secret', '-max-versions=3', 'app/db'],
      opts,
    )
    expect(more.code, more.stderr).toBe(0)
    const after = JSON.parse(
      (await cli(['kv', 'metadata', 'get', '-format=json', 'secret/app/db'], opts)).stdout,
    )
    expect(after.data).toMatchObject({
      max_versions: 3,
      cas_required: true,
      custom_metadata: { owner: 'team-b', env: 'prod' },
    })
  })

  test('kv metadata patch of a missing secret says "No value found" and exits 2', async () => {
    const res = await cli(['kv', 'metadata', 'patch', '-max-versions=2', 'secret/nothere'], opts)
    expect(res).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'No value found at secret/metadata/nothere\n',
    })
  })

  test('kv metadata patch -h describes the flags', async () => {
    const res = await cli(['kv', 'metadata', 'patch', '-h'], opts)
    expect(res.code).toBe(0)
    for (const flag of [
      '-max-versions',
      '-cas-required',
      '-delete-version-after',
      '-custom-metadata',
      '-remove-custom-metadata',
    ]) {
      expect(res.stdout).toContain(flag)
    }
    expect((await cli(['kv', 'metadata', '-h'], opts)).stdout).toMatch(/^ {2}patch\s/m)
  })
})
