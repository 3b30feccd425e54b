import { describe, it, expect } from 'vitest'
import { MAX_POLICY_BYTES, parsePolicy } from '../../src/core/policy/parse.js'
import { ApiError } from '../../src/core/errors.js'

async function parseError(text: string): Promise<ApiError> {
  try {
    await parsePolicy('p', text)
  } catch (err) {
    return err as ApiError
  }
  throw new Error('expected parsePolicy to fail')
}

describe('parsePolicy', () => {
  it('reads capabilities from an HCL path stanza', async () => {
    const policy = await parsePolicy(
      'ci',
      'path "secret/data/ci/*" { capabilities = ["read", "list"] }',
    )
    expect(policy.name).toBe('ci')
    expect(policy.rules).toEqual([{ path: 'secret/data/ci/*', capabilities: ['read', 'list'] }])
    expect(policy.templated).toBe(false)
  })

  it('reads a JSON policy with the same meaning as HCL', async () => {
    const json = JSON.stringify({
      path: { 'secret/data/x': { capabilities: ['update', 'patch'] } },
    })
    const policy = await parsePolicy('j', json)
    expect(policy.rules).toEqual([{ path: 'secret/data/x', capabilities: ['update', 'patch'] }])
  })

  it('accepts base64 of HCL and keeps the decoded text', async () => {
    const text = 'path "kv/*" { capabilities = ["read"] }'
    const policy = await parsePolicy('b', Buffer.from(text).toString('base64'))
    expect(policy.text).toBe(text)
    expect(policy.rules[0]).toEqual({ path: 'kv/*', capabilities: ['read'] })
  })

  it('accepts base64 of JSON', async () => {
    const json = JSON.stringify({ path: { 'kv/a': { capabilities: ['delete'] } } })
    const policy = await parsePolicy('b', Buffer.from(json).toString('base64'))
    expect(policy.rules).toEqual([{ path: 'kv/a', capabilities: ['delete'] }])
  })

  it('maps the legacy policy strings to their capability sets', async () => {
    const policy = await parsePolicy(
      'legacy',
      `path "r" { policy = "read" }
       path "w" { policy = "write" }
       path "s" { policy = "sudo" }
       path "d" { policy = "deny" }`,
    )
    const caps = Object.fromEntries(policy.rules.map((r) => [r.path, [...r.capabilities].sort()]))
    expect(caps).toEqual({
      r: ['list', 'read'],
      w: ['create', 'delete', 'list', 'read', 'update'],
      s: ['create', 'delete', 'list', 'read', 'sudo', 'update'],
      d: ['deny'],
    })
  })

  it('reduces a stanza that lists deny to deny only', async () => {
    const policy = await parsePolicy('d', 'path "x" { capabilities = ["read", "deny", "update"] }')
    expect(policy.rules[0]!.capabilities).toEqual(['deny'])
  })

  it('accepts the scan capability and ignores it', async () => {
    const policy = await parsePolicy('s', 'path "x/" { capabilities = ["scan", "list"] }')
    expect(policy.rules[0]!.capabilities).toEqual(['list'])
  })

  it('keeps repeated stanzas for the same path as separate rules', async () => {
    const policy = await parsePolicy(
      'r',
      'path "x" { capabilities = ["read"] }\npath "x" { capabilities = ["update"] }',
    )
    expect(policy.rules.map((r) => r.capabilities)).toEqual([['read'], ['update']])
  })

  it('parses parameter constraints with lower-cased names and wrapping TTLs in seconds', async () => {
    const policy = await parsePolicy(
      'params',
      `path "db/roles/*" {
        capabilities = ["create", "update"]
        allowed_parameters = { "Name" = ["ci-*"], "*" = [] }
        denied_parameters = { "creation_statements" = [] }
        required_parameters = ["db_name"]
        min_wrapping_ttl = "1m"
        max_wrapping_ttl = 3600
      }`,
    )
    expect(policy.rules[0]).toEqual({
      path: 'db/roles/*',
      capabilities: ['create', 'update'],
      allowedParameters: { name: ['ci-*'], '*': [] },
      deniedParameters: { creation_statements: [] },
      requiredParameters: ['db_name'],
      minWrappingTtl: 60,
      maxWrappingTtl: 3600,
    })
  })

  it('strips a leading slash from the path', async () => {
    const policy = await parsePolicy('p', 'path "/secret/x" { capabilities = ["read"] }')
    expect(policy.rules[0]!.path).toBe('secret/x')
  })

  it('marks a policy with identity templates as templated', async () => {
    const policy = await parsePolicy(
      't',
      'path "kv/{{identity.entity.id}}/*" { capabilities = ["read"] }',
    )
    expect(policy.templated).toBe(true)
  })

  it('parses an empty policy to no rules', async () => {
    expect((await parsePolicy('e', '# nothing here\n')).rules).toEqual([])
  })

  it('rejects an HCL syntax error with a 400 that names the line', async () => {
    const err = await parseError('path "a" {\n  capabilities = [\n}')
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/^failed to parse policy: line \d+, column \d+: /)
    expect(err.message).not.toMatch(/policy\.hcl|\n\s+at /)
  })

  it('rejects malformed JSON with a 400', async () => {
    const err = await parseError('{"path": {"a": ')
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/^failed to parse policy: invalid JSON/)
  })

  it('rejects an unknown capability', async () => {
    const err = await parseError('path "x" { capabilities = ["read", "banana"] }')
    expect(err.status).toBe(400)
    expect(err.message).toBe('failed to parse policy: path "x": invalid capability "banana"')
  })

  it('rejects an unknown legacy policy string', async () => {
    const err = await parseError('path "x" { policy = "admin" }')
    expect(err.message).toContain('invalid policy "admin"')
  })

  it('rejects unknown keys inside a path stanza', async () => {
    const err = await parseError('path "x" { capabilties = ["read"] }')
    expect(err.message).toContain('invalid key "capabilties"')
  })

  it('rejects unknown top-level keys', async () => {
    const err = await parseError('paths "x" { capabilities = ["read"] }')
    expect(err.message).toContain('invalid key "paths"')
  })

  it('rejects "+*" in a path', async () => {
    const err = await parseError('path "secret/+*" { capabilities = ["read"] }')
    expect(err.status).toBe(400)
    expect(err.message).toContain(`invalid use of wildcards ('+*' is forbidden)`)
  })

  it('rejects a "*" that is not at the end of the path', async () => {
    const err = await parseError('path "secret/*/x" { capabilities = ["read"] }')
    expect(err.message).toContain(`'*' is only allowed at the end`)
  })

  it('rejects a "+" that is only part of a segment', async () => {
    const err = await parseError('path "secret/a+/x" { capabilities = ["read"] }')
    expect(err.message).toContain(`'+' must be a whole path segment`)
  })

  it('accepts "+" segments combined with a trailing "*"', async () => {
    const policy = await parsePolicy('ok', 'path "secret/+/team/*" { capabilities = ["read"] }')
    expect(policy.rules[0]!.path).toBe('secret/+/team/*')
  })

  it('rejects a max_wrapping_ttl below min_wrapping_ttl', async () => {
    const err = await parseError(
      'path "x" {\n policy = "read"\n min_wrapping_ttl = 400\n max_wrapping_ttl = 200\n}',
    )
    expect(err.message).toContain('max_wrapping_ttl cannot be less than min_wrapping_ttl')
  })

  it('refuses a policy over 1 MiB with a 400 before parsing it', async () => {
    const block = 'path "p/*" { capabilities = ["read"] }\n'
    const err = await parseError(block.repeat(Math.ceil(MAX_POLICY_BYTES / block.length) + 1))
    expect(err.status).toBe(400)
    expect(err.message).toMatch(/^failed to parse policy: policy is \d+ bytes; at most 1048576/)
  })

  it('parses large HCL off the event loop: timers keep firing meanwhile', async () => {
    const text = Array.from(
      { length: 6000 },
      (_, i) => `path "p${i}/*" { capabilities = ["read"] }`,
    ).join('\n')
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    try {
      const policy = await parsePolicy('big', text)
      expect(policy.rules).toHaveLength(6000)
      expect(policy.rules.find((r) => r.path === 'p5999/*')?.capabilities).toEqual(['read'])
    } finally {
      clearInterval(timer)
    }
    // Parsed on the calling thread, the event loop would not turn once until the parse ended.
    expect(ticks).toBeGreaterThan(3)
  })

  it('keeps parsing after many concurrent requests, each getting its own answer', async () => {
    const policies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        parsePolicy(`p${i}`, `path "only/${i}" { capabilities = ["read"] }`),
      ),
    )
    policies.forEach((p, i) => expect(p.rules[0]!.path).toBe(`only/${i}`))
    const err = await parseError('path "x" {')
    expect(err.status).toBe(400)
  })
})
