import { describe, expect, it } from 'vitest'
import { sanitizeMessage } from '../../plugins/sanitize.js'

describe('sanitizeMessage', () => {
  it('keeps MySQL access-denied messages whole: "using password: YES" is not a password', () => {
    const text = "Access denied for user 'stint_admin'@'127.0.0.1' (using password: YES)"
    expect(sanitizeMessage(text)).toBe(text)
    const none = "Access denied for user 'x'@'localhost' (using password: NO)"
    expect(sanitizeMessage(none)).toBe(none)
  })

  it('keeps usernames, so an operator can find the user an error is about', () => {
    const text = 'role "v-token-ro-AbC123_nonexistent" does not exist'
    expect(sanitizeMessage(text, ['s3cret-pass'])).toBe(text)
  })

  it('removes passwords in key/value pairs, URLs, SQL literals, tokens and given secrets', () => {
    const out = sanitizeMessage(
      [
        'password=hunter2 pwd: "two words"',
        'postgres://admin:pa55@db:5432/app',
        "ALTER ROLE x WITH PASSWORD 'Zq-81'",
        'Bearer abc.def',
        'hvs.AAAAAAAAAAAAAAAAAAAAAAAA',
        'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
        'literal Kx9-secret-Kx9',
      ].join(' | '),
      ['Kx9-secret-Kx9'],
    )
    for (const secret of ['hunter2', 'two words', 'pa55', 'Zq-81', 'abc.def', 'hvs.AAAA', 'eyJ']) {
      expect(out).not.toContain(secret)
    }
    expect(out).not.toContain('Kx9-secret-Kx9')
    expect(out).toContain('postgres://[redacted]@db:5432/app')
  })
})
