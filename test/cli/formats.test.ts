import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { formatPolicyText } from '../../src/cli/policy-format.js'
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

  test('a write answered with warnings and no data prints the warnings, then Success', async () => {
    const policy = 'path "x" { capabilities = ["read"] }'
    const res = await cli(['write', 'sys/policy/UpperCase', `policy=${policy}`], opts)
    expect(res).toMatchObject({
      code: 0,
      stdout: 'Success! Data written to: sys/policy/UpperCase\n',
    })
    expect(res.stderr).toContain('was lower-cased to "uppercase"')
    const json = await cli(
      ['write', '-format=json', 'sys/policy/UpperCase', `policy=${policy}`],
      opts,
    )
    expect(JSON.parse(json.stdout)).toMatchObject({
      data: null,
      warnings: [expect.stringContaining('lower-cased')],
    })
  })

  test('write accepts -f and -force, as vault write does', async () => {
    for (const flag of ['-f', '-force', '--force', '-force=true']) {
      const res = await cli(['write', flag, 'sys/policy/forced', 'policy=path "x" {}'], opts)
      expect(res, `${flag}: ${res.stderr}`).toMatchObject({
        code: 0,
        stdout: 'Success! Data written to: sys/policy/forced\n',
      })
    }
    const empty = await cli(['write', '-f', 'sys/leases/tidy'], opts)
    expect(empty.code, empty.stderr).toBe(0)
    expect(empty.stdout).not.toMatch(/^Key\s+Value/m)
    expect((await cli(['write', '-force=perhaps', 'sys/leases/tidy'], opts)).code).toBe(2)
    expect((await cli(['write', '-h'], opts)).stdout).toMatch(/^ {2}-force, -f\s/m)
  })
})

describe('policy fmt', () => {
  const nowhere = { address: 'http://127.0.0.1:9' }
  const policyFile = (name: string, text: string) => {
    const file = join(tempHome(), name)
    writeFileSync(file, text)
    return file
  }

  test('formats the file in place, keeping comments, order and legacy policy', async () => {
    const file = policyFile(
      'messy.hcl',
      [
        '',
        '# Team policy   ',
        'path "sys/mounts" {  // mounts',
        'capabilities=["read","list"]   # inline',
        '      required_parameters   =   ["type"]',
        '',
        '',
        '',
        '    allowed_parameters = {',
        '"type"= ["kv"]',
        '        }',
        '}',
        '// legacy form',
        'path "/secret/data/*" { policy = "write" }',
        'path "auth/*" {',
        '  policy    =    "read"',
        '}',
        '',
        '',
      ].join('\n'),
    )
    const res = await cli(['policy', 'fmt', file], nowhere)
    expect(res, res.stderr).toMatchObject({
      code: 0,
      stdout: `Success! Formatted policy: ${file}\n`,
    })
    expect(readFileSync(file, 'utf8')).toBe(
      [
        '# Team policy',
        'path "sys/mounts" {  // mounts',
        '  capabilities        = ["read","list"]   # inline',
        '  required_parameters = ["type"]',
        '',
        '  allowed_parameters = {',
        '    "type" = ["kv"]',
        '  }',
        '}',
        '// legacy form',
        'path "/secret/data/*" { policy = "write" }',
        'path "auth/*" {',
        '  policy = "read"',
        '}',
        '',
      ].join('\n'),
    )
  })

  test('strings, comments and heredocs pass through untouched, and formatting is idempotent', async () => {
    const text = [
      'path "secret/data/{{identity.entity.id}}/*" {',
      '  capabilities = ["read"] /* a { brace',
      '     in a comment ]   */',
      '    allowed_parameters = {',
      '      "a\\"}" = ["[", "}{", "${x} $${y}"]',
      '        "b" = []  # a } here',
      '    }',
      '  comment = <<EOT',
      '    keep { this',
      '  exactly  ',
      'EOT',
      '  control_group = <<-EOT',
      '      and [ this',
      '    EOT',
      '  }',
    ].join('\n')
    const once = formatPolicyText(text)
    expect(once).toBe(
      [
        'path "secret/data/{{identity.entity.id}}/*" {',
        '  capabilities = ["read"] /* a { brace',
        '     in a comment ]   */',
        '  allowed_parameters = {',
        '    "a\\"}" = ["[", "}{", "${x} $${y}"]',
        '    "b"    = []  # a } here',
        '  }',
        '  comment = <<EOT',
        '    keep { this',
        '  exactly  ',
        'EOT',
        '  control_group = <<-EOT',
        '      and [ this',
        '    EOT',
        '}',
        '',
      ].join('\n'),
    )
    expect(formatPolicyText(once)).toBe(once)

    const file = policyFile('twice.hcl', 'path "x" {\ncapabilities=["read"]\n}')
    expect((await cli(['policy', 'fmt', file], nowhere)).code).toBe(0)
    const first = readFileSync(file, 'utf8')
    expect(first).toBe('path "x" {\n  capabilities = ["read"]\n}\n')
    expect((await cli(['policy', 'fmt', file], nowhere)).code).toBe(0)
    expect(readFileSync(file, 'utf8')).toBe(first)
  })

  test('the formatted policy parses to the same rules', async () => {
    const { parsePolicy } = await import('../../src/core/policy/parse.js')
    const text = [
      'path "a/+/b" {',
      'capabilities = ["deny"]',
      '      required_parameters = ["x"]',
      '  max_wrapping_ttl = "1h"',
      '}',
      'path "c/*" {',
      '      capabilities = ["create", "update"]',
      '  denied_parameters = { "*" = [] }',
      '    }',
    ].join('\n')
    const file = policyFile('p.hcl', text)
    expect((await cli(['policy', 'fmt', file], nowhere)).code).toBe(0)
    const formatted = readFileSync(file, 'utf8')
    expect((await parsePolicy('p', formatted)).rules).toEqual((await parsePolicy('p', text)).rules)
  })

  test('reads stdin with - and prints the formatted policy', async () => {
    const res = await cli(['policy', 'fmt', '-'], {
      ...nowhere,
      stdin: 'path "x" {\n   # why\ncapabilities =["read"]\n}',
    })
    expect(res).toMatchObject({
      code: 0,
      stdout: 'path "x" {\n  # why\n  capabilities = ["read"]\n}\n',
    })
  })

  test.each([
    ['an invalid capability', 'path "x" {\n capabilities = ["fly"]\n}', 'invalid capability'],
    ['a syntax error', 'path "x" {\n capabilities = ["read"]\n', 'line '],
  ])('%s exits 1 with the parser message and leaves the file unchanged', async (_, text, why) => {
    const file = policyFile('bad.hcl', text)
    const res = await cli(['policy', 'fmt', file], nowhere)
    expect(res.code).toBe(1)
    expect(res.stderr).toContain(why)
    expect(res.stdout).toBe('')
    expect(readFileSync(file, 'utf8')).toBe(text)
  })
})
