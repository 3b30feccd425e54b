import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hashStructure, hashValue } from '../../src/audit/hashing.js'

const salt = Buffer.alloc(32, 7)
const expected = (v: string) => `hmac-sha256:${createHmac('sha256', salt).update(v).digest('hex')}`

describe('audit hashing', () => {
  it('hashes a value as hmac-sha256 of the salt, in hex', () => {
    expect(hashValue(salt, 'hunter2')).toBe(expected('hunter2'))
  })

  it('hashes every string leaf at any depth but keeps keys, numbers, booleans and nulls', () => {
    const out = hashStructure(salt, {
      password: 'p',
      nested: { list: ['a', 1, true, null], deep: { k: 'v' } },
      ttl: 30,
      ok: false,
    })
    expect(out).toEqual({
      password: expected('p'),
      nested: { list: [expected('a'), 1, true, null], deep: { k: expected('v') } },
      ttl: 30,
      ok: false,
    })
  })

  it('leaves RFC 3339 timestamps in clear', () => {
    expect(hashStructure(salt, { t: '2026-01-01T10:00:00.123456Z', u: '2026-01-01' })).toEqual({
      t: '2026-01-01T10:00:00.123456Z',
      u: expected('2026-01-01'),
    })
  })

  it('keeps the values of listed keys in clear', () => {
    expect(hashStructure(salt, { role: 'ci', secret: 's' }, new Set(['role']))).toEqual({
      role: 'ci',
      secret: expected('s'),
    })
  })
})
