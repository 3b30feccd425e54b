import { statSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, tempHome, type CliOptions } from './harness.js'

// One operator's first session, in order: each step relies on the ones before it.
describe('a new user session against an uninitialised server', () => {
  let server: TestServer
  let address: string
  const home = tempHome()
  let keys: string[] = []
  let rootToken = ''
  const as = (extra: CliOptions = {}): CliOptions => ({ address, home, ...extra })

  beforeAll(async () => {
    server = await startTestServer({ uninitialized: true })
    address = (await server.listen()).address
  })
  afterAll(async () => {
    await server.close()
  })

  test('status reports an uninitialised server', async () => {
    const res = await cli(['status'], as())
    expect(res.stdout).toMatch(/Initialized\s+false/)
  })

  test('operator init prints the unseal keys and the root token', async () => {
    const res = await cli(['operator', 'init', '-key-shares=3', '-key-threshold=2'], as())
    expect(res.code).toBe(0)
    keys = [...res.stdout.matchAll(/^Unseal Key \d: (\S+)$/gm)].map((m) => m[1]!)
    rootToken = /^Initial Root Token: (\S+)$/m.exec(res.stdout)?.[1] ?? ''
    expect(keys).toHaveLength(3)
    expect(rootToken).not.toBe('')
    expect(res.stdout).toContain('key threshold of 2')
  })

  test('status exits 2 while the server is sealed', async () => {
    const res = await cli(['status'], as())
    expect(res.code).toBe(2)
    expect(res.stdout).toMatch(/Sealed\s+true/)
  })

  test('operator unseal takes one share as an argument and shows the progress', async () => {
    const res = await cli(['operator', 'unseal', keys[0]!], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/Unseal Progress\s+1\/2/)
  })

  test('operator unseal reads the next share from stdin when none is given', async () => {
    const res = await cli(['operator', 'unseal'], as({ stdin: `${keys[1]}\n` }))
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/Sealed\s+false/)
    expect(res.stdout).not.toContain(keys[1]!)
    expect((await cli(['status'], as())).code).toBe(0)
  })

  test('login with a token from stdin stores it in ~/.stint-token with mode 0600', async () => {
    const res = await cli(['login', '-'], as({ stdin: `${rootToken}\n` }))
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('Success! You are now authenticated')
    expect(res.stdout).toMatch(/policies\s+\[root\]/)
    expect(res.stdout).not.toContain(rootToken)
    const file = join(home, '.stint-token')
    expect(readFileSync(file, 'utf8')).toBe(rootToken)
    expect(statSync(file).mode & 0o777).toBe(0o600)
  })

  test('login refuses a token the server does not know and keeps the stored one', async () => {
    const res = await cli(['login', 'sts.not-a-real-token'], as())
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('permission denied')
    expect(res.stderr).not.toContain('sts.not-a-real-token')
    expect(readFileSync(join(home, '.stint-token'), 'utf8')).toBe(rootToken)
  })

  test('secrets enable mounts KV v2 and secrets list shows it', async () => {
    const enabled = await cli(['secrets', 'enable', '-path=secret', '-version=2', 'kv'], as())
    expect(enabled.code).toBe(0)
    expect(enabled.stdout).toContain('Success! Enabled the kv secrets engine at: secret/')
    const listed = await cli(['secrets', 'list'], as())
    expect(listed.stdout).toMatch(/^Path\s+Type\s+Accessor\s+Description$/m)
    expect(listed.stdout).toMatch(/^secret\/\s+kv\s+kv_\S+\s+n\/a$/m)
    const json = JSON.parse((await cli(['secrets', 'list', '-format=json'], as())).stdout)
    expect(json['secret/'].options).toEqual({ version: '2' })
  })

  test('kv put writes version 1 and prints its metadata', async () => {
    const res = await cli(['kv', 'put', 'secret/app/db', 'user=app', 'password=hunter2'], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('secret/data/app/db')
    expect(res.stdout).toMatch(/^version\s+1$/m)
    expect(res.stdout).not.toContain('hunter2')
  })

  test('kv put with -mount writes version 2 of the same secret', async () => {
    const res = await cli(
      ['kv', 'put', '-mount=secret', 'app/db', 'user=app', 'password=s3cond'],
      as(),
    )
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^version\s+2$/m)
  })

  test('kv get shows a metadata table, then a data table', async () => {
    const res = await cli(['kv', 'get', 'secret/app/db'], as())
    expect(res.code).toBe(0)
    const metadataAt = res.stdout.indexOf('Metadata')
    const dataAt = res.stdout.indexOf('= Data =')
    expect(metadataAt).toBeGreaterThan(-1)
    expect(dataAt).toBeGreaterThan(metadataAt)
    expect(res.stdout.slice(metadataAt, dataAt)).toMatch(/^version\s+2$/m)
    expect(res.stdout.slice(dataAt)).toMatch(
      /^Key\s+Value\n---\s+-----\npassword\s+s3cond\nuser\s+app$/m,
    )
  })

  test('kv get -version reads an older version', async () => {
    const res = await cli(['kv', 'get', '-version=1', '-field=password', 'secret/app/db'], as())
    expect(res).toMatchObject({ code: 0, stdout: 'hunter2' })
  })

  test('kv list lists keys, folders with a trailing slash', async () => {
    await cli(['kv', 'put', 'secret/top', 'a=b'], as())
    const res = await cli(['kv', 'list', 'secret/'], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toBe('Keys\n----\napp/\ntop\n')
    const nested = await cli(['kv', 'list', '-mount=secret', 'app'], as())
    expect(nested.stdout).toBe('Keys\n----\ndb\n')
  })

  test('keys with spaces, ? and # round-trip through put, list and get', async () => {
    const put = await cli(['kv', 'put', 'secret/odd/a key?#1', 'v=1'], as())
    expect(put.code, put.stderr).toBe(0)
    expect((await cli(['kv', 'list', 'secret/odd'], as())).stdout).toBe('Keys\n----\na key?#1\n')
    expect((await cli(['kv', 'get', '-field=v', 'secret/odd/a key?#1'], as())).stdout).toBe('1')
    expect((await cli(['kv', 'metadata', 'delete', 'secret/odd/a key?#1'], as())).code).toBe(0)
  })

  test('kv refuses paths that climb out with ..', async () => {
    const res = await cli(['kv', 'get', 'secret/../sys/mounts'], as())
    expect(res.code).toBe(2)
  })

  test('kv patch merges a key into a new version', async () => {
    const res = await cli(['kv', 'patch', 'secret/app/db', 'port=5432'], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^version\s+3$/m)
    const json = JSON.parse(
      (await cli(['kv', 'get', '-format=json', 'secret/app/db'], as())).stdout,
    )
    expect(json.data.data).toEqual({ user: 'app', password: 's3cond', port: '5432' })
  })

  test('kv delete soft-deletes the latest version and kv undelete restores it', async () => {
    expect((await cli(['kv', 'delete', 'secret/app/db'], as())).code).toBe(0)
    const deleted = await cli(['kv', 'get', 'secret/app/db'], as())
    expect(deleted.code).toBe(2)
    expect(deleted.stdout).not.toMatch(/^deletion_time\s+n\/a$/m)
    expect(deleted.stderr).toContain('is deleted')
    const undone = await cli(['kv', 'undelete', '-versions=3', 'secret/app/db'], as())
    expect(undone.code).toBe(0)
    expect((await cli(['kv', 'get', '-field=port', 'secret/app/db'], as())).stdout).toBe('5432')
  })

  test('kv destroy removes a version for good and metadata get shows it destroyed', async () => {
    expect((await cli(['kv', 'destroy', '-versions=1', 'secret/app/db'], as())).code).toBe(0)
    const gone = await cli(['kv', 'get', '-version=1', 'secret/app/db'], as())
    expect(gone.code).toBe(2)
    expect(gone.stderr).toContain('is destroyed')
    const meta = await cli(['kv', 'metadata', 'get', 'secret/app/db'], as())
    expect(meta.code).toBe(0)
    expect(meta.stdout).toMatch(/^current_version\s+3$/m)
    const v1 = meta.stdout.slice(meta.stdout.indexOf('Version 1'), meta.stdout.indexOf('Version 2'))
    expect(v1).toMatch(/^destroyed\s+true$/m)
  })

  test('kv metadata put sets max_versions and custom metadata', async () => {
    const res = await cli(
      [
        'kv',
        'metadata',
        'put',
        '-max-versions=5',
        '-custom-metadata=owner=team-a',
        'secret/app/db',
      ],
      as(),
    )
    expect(res.code).toBe(0)
    const json = JSON.parse(
      (await cli(['kv', 'metadata', 'get', '-format=json', 'secret/app/db'], as())).stdout,
    )
    expect(json.data.max_versions).toBe(5)
    expect(json.data.custom_metadata).toEqual({ owner: 'team-a' })
  })

  test('kv metadata delete removes every version', async () => {
    expect((await cli(['kv', 'metadata', 'delete', 'secret/top'], as())).code).toBe(0)
    const res = await cli(['kv', 'get', 'secret/top'], as())
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('No value found at secret/data/top')
  })

  test('policy write, read and list round-trip a policy file', async () => {
    const file = join(home, 'app.hcl')
    writeFileSync(file, 'path "secret/data/app/*" { capabilities = ["read", "list"] }\n')
    const written = await cli(['policy', 'write', 'app-read', file], as())
    expect(written).toMatchObject({ code: 0, stdout: 'Success! Uploaded policy: app-read\n' })
    const read = await cli(['policy', 'read', 'app-read'], as())
    expect(read.stdout).toContain('path "secret/data/app/*"')
    const list = await cli(['policy', 'list'], as())
    expect(list.stdout.split('\n')).toContain('app-read')
  })

  test('policy write reads the policy from stdin with -', async () => {
    const res = await cli(
      ['policy', 'write', 'from-stdin', '-'],
      as({
        stdin: 'path "secret/data/x" { capabilities = ["read"] }',
      }),
    )
    expect(res.code).toBe(0)
    expect((await cli(['policy', 'read', 'from-stdin'], as())).stdout).toContain('secret/data/x')
  })

  test('policy delete removes a policy', async () => {
    expect((await cli(['policy', 'delete', 'from-stdin'], as())).code).toBe(0)
    const res = await cli(['policy', 'read', 'from-stdin'], as())
    expect(res.code).toBe(2)
  })

  test('token create prints a new token that works with the granted policy only', async () => {
    const created = await cli(
      ['token', 'create', '-policy=app-read', '-ttl=1h', '-field=token'],
      as(),
    )
    expect(created.code).toBe(0)
    const token = created.stdout
    expect(token).toMatch(/^\S+$/)
    const env = { STINT_TOKEN: token }
    const ok = await cli(['kv', 'get', '-field=user', 'secret/app/db'], as({ env }))
    expect(ok).toMatchObject({ code: 0, stdout: 'app' })
    const denied = await cli(['kv', 'put', 'secret/app/db', 'user=evil'], as({ env }))
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('permission denied')
    const caps = await cli(['token', 'capabilities', 'secret/data/app/db'], as({ env }))
    expect(caps.stdout).toBe('list, read\n')
  })

  test('token lookup shows a token by value without echoing it, and revoke kills it', async () => {
    const token = (await cli(['token', 'create', '-policy=app-read', '-field=token'], as())).stdout
    const looked = await cli(['token', 'lookup', token], as())
    expect(looked.code).toBe(0)
    expect(looked.stdout).toMatch(/^policies\s+\[app-read default\]$/m)
    expect(looked.stdout).not.toContain(token)
    const revoked = await cli(['token', 'revoke', token], as())
    expect(revoked).toMatchObject({ code: 0, stdout: 'Success! Revoked token (if it existed)\n' })
    const after = await cli(['token', 'lookup'], as({ env: { STINT_TOKEN: token } }))
    expect(after.code).toBe(1)
    expect(after.stderr).toContain('Code: 403')
  })

  test('token create -metadata and lookup -accessor show the token metadata', async () => {
    const created = JSON.parse(
      (await cli(['token', 'create', '-metadata=team=a', '-metadata=env=ci', '-format=json'], as()))
        .stdout,
    )
    const accessor = created.auth.accessor
    const res = await cli(['token', 'lookup', '-accessor', accessor], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^meta\s+map\[env:ci team:a\]$/m)
    expect(res.stdout).not.toContain(created.auth.client_token)
  })

  test('token renew extends a renewable token', async () => {
    const token = (await cli(['token', 'create', '-ttl=10m', '-field=token'], as())).stdout
    const res = await cli(['token', 'renew', '-increment=30m'], as({ env: { STINT_TOKEN: token } }))
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^token_duration\s+30m$/m)
  })

  test('secrets tune and disable change and remove a mount', async () => {
    await cli(['secrets', 'enable', '-path=scratch', 'kv'], as())
    const tuned = await cli(['secrets', 'tune', '-max-lease-ttl=2h', 'scratch'], as())
    expect(tuned.code).toBe(0)
    const list = JSON.parse((await cli(['secrets', 'list', '-format=json'], as())).stdout)
    expect(list['scratch/'].config.max_lease_ttl).toBe(7200)
    expect((await cli(['secrets', 'disable', 'scratch/'], as())).code).toBe(0)
    const after = JSON.parse((await cli(['secrets', 'list', '-format=json'], as())).stdout)
    expect(after['scratch/']).toBeUndefined()
  })

  test('kv on a version 1 mount reads and writes plain paths', async () => {
    await cli(['secrets', 'enable', '-path=old', 'kv'], as())
    const put = await cli(['kv', 'put', 'old/app', 'k=v'], as())
    expect(put).toMatchObject({ code: 0, stdout: 'Success! Data written to: old/app\n' })
    expect((await cli(['kv', 'get', '-field=k', 'old/app'], as())).stdout).toBe('v')
    expect((await cli(['read', '-field=k', 'old/app'], as())).stdout).toBe('v')
    const patch = await cli(['kv', 'patch', 'old/app', 'k=w'], as())
    expect(patch.code).toBe(2)
    expect(patch.stderr).toContain('only supported on KV version 2')
  })

  test('auth enable, list, tune and disable manage auth methods', async () => {
    const enabled = await cli(
      ['auth', 'enable', '-path=people', '-description=humans', 'userpass'],
      as(),
    )
    expect(enabled).toMatchObject({
      code: 0,
      stdout: 'Success! Enabled the userpass auth method at: people/\n',
    })
    const listed = await cli(['auth', 'list'], as())
    expect(listed.stdout).toMatch(/^people\/\s+userpass\s+userpass_\S+\s+humans$/m)
    expect(listed.stdout).toMatch(/^token\/\s+token\s+/m)
    expect((await cli(['auth', 'tune', '-default-lease-ttl=30m', 'people'], as())).code).toBe(0)
    const tuned = await cli(['read', '-field=default_lease_ttl', 'sys/auth/people/tune'], as())
    expect(tuned.stdout).toBe('1800')
    const user = await cli(['write', 'auth/people/users/dana', 'password=pw-dana'], as())
    expect(user).toMatchObject({
      code: 0,
      stdout: 'Success! Data written to: auth/people/users/dana\n',
    })
    const login = await cli(
      ['login', '-method=userpass', '-path=people', '-no-store', 'username=dana'],
      as({
        stdin: 'pw-dana\n',
      }),
    )
    expect(login.code).toBe(0)
    expect(login.stdout).toMatch(/^token_duration\s+30m$/m)
    expect((await cli(['auth', 'disable', 'people'], as())).code).toBe(0)
    expect((await cli(['auth', 'list'], as())).stdout).not.toContain('people/')
  })

  test('operator rotate adds a key term and key-status shows it', async () => {
    const before = Number((await cli(['operator', 'key-status', '-field=Key Term'], as())).stdout)
    const res = await cli(['operator', 'rotate'], as())
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(new RegExp(`^Key Term\\s+${before + 1}$`, 'm'))
    expect((await cli(['kv', 'get', '-field=user', 'secret/app/db'], as())).stdout).toBe('app')
  })

  test('operator seal seals the server', async () => {
    const res = await cli(['operator', 'seal'], as())
    expect(res).toMatchObject({ code: 0, stdout: 'Success! Stint is sealed.\n' })
    expect((await cli(['status'], as())).code).toBe(2)
  })
})
