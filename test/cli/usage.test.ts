import { describe, expect, test } from 'vitest'
import { cli } from './harness.js'

// Nothing listens here: usage errors and help must never need a server.
const nowhere = { address: 'http://127.0.0.1:9' }

const groups: Record<string, string[]> = {
  operator: ['init', 'unseal', 'seal', 'rotate', 'key-status'],
  kv: ['get', 'put', 'patch', 'delete', 'undelete', 'destroy', 'list'],
  'kv metadata': ['get', 'put', 'patch', 'delete'],
  token: ['create', 'lookup', 'renew', 'revoke', 'capabilities'],
  policy: ['write', 'read', 'list', 'delete', 'fmt'],
  secrets: ['enable', 'disable', 'list', 'tune'],
  auth: ['enable', 'disable', 'list', 'tune'],
  lease: ['lookup', 'renew', 'revoke', 'list'],
}
const leaves = ['status', 'login', 'read', 'write', 'list', 'delete', 'patch', 'server']

describe('help', () => {
  const every = [
    ...leaves.map((c) => [c]),
    ...Object.keys(groups).map((g) => g.split(' ')),
    ...Object.entries(groups).flatMap(([g, subs]) => subs.map((s) => [...g.split(' '), s])),
  ]

  test.each(
    every.flatMap((argv) => [
      [...argv, '-h'],
      [...argv, '--help'],
    ]),
  )('stint %s prints usage and exits 0', async (...argv: string[]) => {
    const res = await cli(argv, nowhere)
    expect(res.code).toBe(0)
    // `server` is the lead's command and still prints through console.log.
    if (argv[0] !== 'server') expect(res.stdout).toMatch(/^Usage: stint /)
  })

  test('stint --help lists the commands and exits 0', async () => {
    const res = await cli(['--help'], nowhere)
    expect(res.code).toBe(0)
    for (const c of ['kv', 'token', 'policy', 'secrets', 'auth', 'lease', 'operator', 'login']) {
      expect(res.stdout).toMatch(new RegExp(`^  ${c}\\s`, 'm'))
    }
  })

  test('stint with no command prints usage to stderr and exits 2', async () => {
    const res = await cli([], nowhere)
    expect(res.code).toBe(2)
    expect(res.stderr).toContain('Usage: stint <command>')
  })
})

describe('usage errors exit 2 without calling the server', () => {
  test.each([
    [['nonsense']],
    [['kv', 'nonsense']],
    [['kv']],
    [['kv', 'get']],
    [['kv', 'get', 'a', 'b']],
    [['kv', 'put', 'secret/x']],
    [['kv', 'put', 'secret/x', 'novalue']],
    [['kv', 'undelete', 'secret/x']],
    [['kv', 'destroy', '-versions=one', 'secret/x']],
    [['kv', 'get', '-mount', 'secret/x']],
    [['kv', 'get', '-verison=2', 'secret/x']],
    [['token', 'create', '-polcy=admin']],
    [['read']],
    [['read', '-format=xml', 'secret/x']],
    [['write', 'secret/x', '=v']],
    [['operator', 'init', '-key-shares=many']],
    [['token', 'create', '-num-uses=lots']],
    [['token', 'create', '-renewable=perhaps']],
    [['token', 'revoke']],
    [['token', 'revoke', '-self', '-accessor']],
    [['token', 'revoke', '-accessor', '-mode=orphan', 'acc']],
    [['token', 'lookup', '-accessor']],
    [['token', 'renew', '-accessor', 'acc']],
    [['write', '-force=perhaps', 'sys/leases/tidy']],
    [['kv', 'metadata', 'patch', '-max-versions=many', 'secret/x']],
    [['lease', 'revoke', '-force', 'database/creds/x/y']],
    [['policy', 'write', 'only-name']],
    [['policy', 'fmt', '/no/such/file.hcl']],
    [['secrets', 'enable', '-version=3', 'kv']],
    [['secrets', 'tune', 'secret/']],
    [['login', '-method=userpass']],
  ])('stint %j', async (argv) => {
    const res = await cli(argv, nowhere)
    expect(res.code).toBe(2)
    expect(res.stderr).not.toBe('')
    expect(res.stderr).not.toContain('error contacting')
  })
})
