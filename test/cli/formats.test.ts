import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { cli, tempHome, type CliOptions } from './harness.js'

describe('output formats', () => {
  let server: TestServer
  let opts: CliOptions

  beforeAll(async () => {
    server = await startTestServer()
    opts = { address: (await server.listen()).address, env: { STINT_TOKEN: server.rootToken } }
    await cli(['kv', 'put', 'secret/app', 'user=app', 'password=p@ss word'], opts)
  })
  afterAll(async () => {
    await server.close()
  })

  test.each([
    [['status']],
    [['kv', 'get', 'secret/app']],
    [['kv', 'put', 'secret/other', 'a=b']],
    [['kv', 'list', 'secret/']],
    [['kv', 'metadata', 'get', 'secret/app']],
    [['read', 'secret/data/app']],
    [['list', 'secret/metadata']],
    [['token', 'create', '-policy=default']],
    [['token', 'lookup']],
    [['token', 'capabilities', 'secret/data/app']],
    [['policy', 'list']],
    [['policy', 'read', 'default']],
    [['secrets', 'list']],
    [['auth', 'list']],
    [['operator', 'key-status']],
  ])('-format=json output of %j parses', async (argv) => {
    const res = await cli([...argv, '-format=json'], opts)
    expect(res.code, res.stderr).toBe(0)
    expect(() => JSON.parse(res.stdout)).not.toThrow()
  })

  test('-format=json of kv get is the whole response envelope', async () => {
    const body = JSON.parse((await cli(['kv', 'get', '-format=json', 'secret/app'], opts)).stdout)
    expect(body.data.data).toEqual({ user: 'app', password: 'p@ss word' })
    expect(body.data.metadata.version).toBe(1)
  })

  test('-format=yaml output parses as YAML', async () => {
    const res = await cli(['kv', 'get', '-format=yaml', 'secret/app'], opts)
    expect(res.code).toBe(0)
    expect(parseYaml(res.stdout).data.data.user).toBe('app')
  })

  test('STINT_FORMAT sets the default format', async () => {
    const res = await cli(['status'], { ...opts, env: { ...opts.env, STINT_FORMAT: 'json' } })
    expect(JSON.parse(res.stdout).sealed).toBe(false)
  })

  test('-field prints the raw value without a table or a newline', async () => {
    const res = await cli(['kv', 'get', '-field=password', 'secret/app'], opts)
    expect(res).toMatchObject({ code: 0, stdout: 'p@ss word', stderr: '' })
    const read = await cli(['read', '-field=data', 'secret/data/app'], opts)
    expect(JSON.parse(read.stdout)).toEqual({ user: 'app', password: 'p@ss word' })
  })

  test('-field=token prints only the new token of token create', async () => {
    const token = (await cli(['token', 'create', '-field=token'], opts)).stdout
    const check = await server.call('GET', 'auth/token/lookup-self', { token })
    expect(check.status).toBe(200)
  })

  test('-field naming a missing field exits 1', async () => {
    const res = await cli(['kv', 'get', '-field=nope', 'secret/app'], opts)
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('Field "nope" not present in secret')
  })

  test('tables align keys and values in columns', async () => {
    const res = await cli(['read', 'sys/mounts/secret'], opts)
    const lines = res.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^Key\s+Value$/)
    expect(lines[1]).toMatch(/^---\s+-----$/)
    const column = lines[0]!.indexOf('Value')
    for (const line of lines.slice(2))
      expect(line.slice(0, column).trimEnd().length).toBeLessThan(column)
    for (const line of lines.slice(1)) expect(line[column - 1]).toBe(' ')
  })

  test('server warnings go to stderr, keeping stdout parseable', async () => {
    const policy = 'path "x" { capabilities = ["read"] }'
    const res = await cli(
      ['write', '-format=json', 'sys/policy/MixedCase', `policy=${policy}`],
      opts,
    )
    expect(res.code, res.stderr).toBe(0)
    expect(res.stderr).toContain('WARNING! The following warnings were returned')
    expect(() => JSON.parse(res.stdout)).not.toThrow()
  })
})

describe('policy fmt', () => {
  test('prints a legacy policy as normalised HCL without a server', async () => {
    const file = join(tempHome(), 'legacy.hcl')
    writeFileSync(
      file,
      `path "/secret/data/*" { policy = "read" }
path "sys/mounts" {
capabilities=["read","read", "list"]
  allowed_parameters = { "type" = ["kv"] }
}`,
    )
    const res = await cli(['policy', 'fmt', file], { address: 'http://127.0.0.1:9' })
    expect(res.code, res.stderr).toBe(0)
    expect(res.stdout).toBe(`path "secret/data/*" {
  capabilities = ["read", "list"]
}

path "sys/mounts" {
  capabilities = ["read", "list"]
  allowed_parameters = {
    "type" = ["kv"]
  }
}
`)
  })

  test('the normalised output parses back to the same rules', async () => {
    const { parsePolicy } = await import('../../src/core/policy/parse.js')
    const file = join(tempHome(), 'p.hcl')
    const text = [
      'path "a/+/b" {',
      '  capabilities = ["deny"]',
      '  required_parameters = ["x"]',
      '  max_wrapping_ttl = "1h"',
      '}',
      'path "c/*" {',
      '  capabilities = ["create", "update"]',
      '  denied_parameters = { "*" = [] }',
      '}',
    ].join('\n')
    writeFileSync(file, text)
    const res = await cli(['policy', 'fmt', file], {})
    expect((await parsePolicy('p', res.stdout)).rules).toEqual((await parsePolicy('p', text)).rules)
  })

  test('a syntax error exits 1 with the parser message', async () => {
    const file = join(tempHome(), 'bad.hcl')
    writeFileSync(file, 'path "x" { capabilities = ["fly"] }')
    const res = await cli(['policy', 'fmt', file], {})
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('invalid capability')
  })
})
