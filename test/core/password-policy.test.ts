import { describe, expect, it } from 'vitest'
import {
  checkSatisfiable,
  generatePassword,
  parsePasswordPolicy,
  type PasswordPolicy,
} from '../../src/core/password-policy/policy.js'

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const DIGITS = '0123456789'
const SYMBOLS = '!#$%&()*+,-./:;<=>?@[]^_{|}~'

const HCL = `
length = 24
rule "charset" {
  charset = "${LOWER}"
  min-chars = 1
}
rule "charset" {
  charset = "${UPPER}"
  min-chars = 2
}
rule "charset" {
  charset = "${DIGITS}"
  min-chars = 3
}
rule "charset" {
  charset = "${SYMBOLS}"
}
`

const parseError = async (text: string) => {
  const err = await parsePasswordPolicy(text).then(
    () => undefined,
    (e: unknown) => e as { status: number; message: string },
  )
  expect(err?.status).toBe(400)
  return err!.message
}

const countIn = (password: string, charset: string) =>
  [...password].filter((c) => charset.includes(c)).length

/** HCL text: `length` and one `rule "charset"` block per `[charset, min-chars]`. */
const hcl = (length: number | string, ...rules: Array<[string, number?]>) =>
  [
    `length = ${length}`,
    ...rules.map(([charset, min]) =>
      [
        'rule "charset" {',
        `  charset = ${JSON.stringify(charset)}`,
        ...(min === undefined ? [] : [`  min-chars = ${min}`]),
        '}',
      ].join('\n'),
    ),
  ].join('\n')

describe('password policy parsing', () => {
  it('reads length and charset rules from HCL', async () => {
    const policy = await parsePasswordPolicy(HCL)
    expect(policy.length).toBe(24)
    expect(policy.rules).toEqual([
      { charset: LOWER, minChars: 1 },
      { charset: UPPER, minChars: 2 },
      { charset: DIGITS, minChars: 3 },
      { charset: SYMBOLS, minChars: 0 },
    ])
    expect(policy.alphabet).toBe(LOWER + UPPER + DIGITS + SYMBOLS)
    expect(policy.text).toBe(HCL)
  })

  it('reads the same policy from JSON, and from base64 of HCL or JSON', async () => {
    const json = JSON.stringify({
      length: 24,
      rule: [
        { charset: { charset: LOWER, 'min-chars': 1 } },
        {
          charset: [
            { charset: UPPER, 'min-chars': 2 },
            { charset: DIGITS, 'min-chars': 3 },
          ],
        },
        { charset: { charset: SYMBOLS } },
      ],
    })
    const expected = (await parsePasswordPolicy(HCL)).rules
    expect((await parsePasswordPolicy(json)).rules).toEqual(expected)
    const fromBase64Hcl = await parsePasswordPolicy(Buffer.from(HCL).toString('base64'))
    expect(fromBase64Hcl.rules).toEqual(expected)
    expect(fromBase64Hcl.text).toBe(HCL)
    const fromBase64Json = await parsePasswordPolicy(Buffer.from(json).toString('base64'))
    expect(fromBase64Json.rules).toEqual(expected)
  })

  it('deduplicates the characters of a charset', async () => {
    const policy = await parsePasswordPolicy('length = 8\nrule "charset" { charset = "abcabcaa" }')
    expect(policy.rules[0]!.charset).toBe('abc')
    expect(policy.alphabet).toBe('abc')
  })

  it('refuses a length below 4, above 100, fractional or missing', async () => {
    for (const length of ['3', '101', '12.5', '"20"']) {
      expect(await parseError(`length = ${length}\nrule "charset" { charset = "abc" }`)).toMatch(
        /length must be an integer from 4 to 100/,
      )
    }
    expect(await parseError('rule "charset" { charset = "abc" }')).toMatch(/length must be/)
    expect(
      (await parsePasswordPolicy('length = 4\nrule "charset" { charset = "ab" }')).length,
    ).toBe(4)
    expect(
      (await parsePasswordPolicy('length = 100\nrule "charset" { charset = "ab" }')).length,
    ).toBe(100)
  })

  it('refuses a policy without rules', async () => {
    expect(await parseError('length = 20')).toMatch(/at least one rule "charset"/)
  })

  it('refuses an empty or missing charset', async () => {
    expect(await parseError('length = 20\nrule "charset" { charset = "" }')).toMatch(
      /charset must be a non-empty string/,
    )
    expect(await parseError('length = 20\nrule "charset" { min-chars = 1 }')).toMatch(
      /charset must be a non-empty string/,
    )
  })

  it('refuses unknown rule types and unknown keys', async () => {
    expect(
      await parseError(
        'length = 20\nrule "charset" { charset = "abc" }\nrule "mindigits" { n = 1 }',
      ),
    ).toMatch(/unknown rule type "mindigits"/)
    expect(
      await parseError('length = 20\nrule "charset" {\n  charset = "abc"\n  max-chars = 3\n}'),
    ).toMatch(/rule "charset": invalid key "max-chars"/)
    expect(await parseError('length = 20\nwidth = 3\nrule "charset" { charset = "abc" }')).toMatch(
      /invalid key "width"/,
    )
  })

  it('refuses spaces, control characters and non-ASCII in a charset, naming them', async () => {
    expect(await parseError('length = 20\nrule "charset" { charset = "ab c" }')).toMatch(
      /only printable ASCII \(0x21-0x7E\) is allowed, found U\+0020/,
    )
    expect(await parseError('length = 20\nrule "charset" { charset = "ab\\tc" }')).toMatch(
      /U\+0009/,
    )
    expect(await parseError('length = 20\nrule "charset" { charset = "abé" }')).toMatch(/U\+00E9/)
    expect(
      await parseError(JSON.stringify({ length: 20, rule: { charset: { charset: 'a\u007f' } } })),
    ).toMatch(/U\+007F/)
  })

  it('refuses a negative or fractional min-chars, and min-chars adding up to more than length', async () => {
    expect(await parseError(hcl(20, ['abc', -1]))).toMatch(
      /min-chars must be an integer of 0 or more/,
    )
    expect(await parseError(hcl(20, ['abc', 1.5]))).toMatch(/min-chars must be an integer/)
    expect(await parseError(hcl(8, ['abc', 5], ['123', 4]))).toMatch(
      /min-chars add up to 9, more than length 8/,
    )
  })

  it('reports HCL and JSON syntax errors as 400s', async () => {
    expect(await parseError('length = \nrule "charset" {')).toMatch(
      /^failed to parse password policy: /,
    )
    expect(await parseError('{"length": 20,')).toMatch(/invalid JSON/)
  })
})

describe('password generation from a policy', () => {
  it('gives the policy length, only charset characters, and every rule its min-chars', async () => {
    const policy = await parsePasswordPolicy(HCL)
    const seen = new Set<string>()
    for (let i = 0; i < 2_000; i++) {
      const password = generatePassword(policy)
      expect(password).toHaveLength(24)
      expect([...password].every((c) => policy.alphabet.includes(c))).toBe(true)
      expect(countIn(password, LOWER)).toBeGreaterThanOrEqual(1)
      expect(countIn(password, UPPER)).toBeGreaterThanOrEqual(2)
      expect(countIn(password, DIGITS)).toBeGreaterThanOrEqual(3)
      for (const c of password) seen.add(c)
    }
    // Uniform over the union: 2,000 × 24 draws reach every one of the 90 characters.
    expect(seen.size).toBe(policy.alphabet.length)
  })

  it('meets a demanding but satisfiable rule set', async () => {
    const policy = await parsePasswordPolicy(hcl(8, ['abcdefghij', 3], ['0123456789', 3]))
    checkSatisfiable(policy)
    for (let i = 0; i < 500; i++) {
      const password = generatePassword(policy)
      expect(countIn(password, 'abcdefghij')).toBeGreaterThanOrEqual(3)
      expect(countIn(password, '0123456789')).toBeGreaterThanOrEqual(3)
    }
  })

  it('refuses rules too tight to be met by at least 1% of random candidates', async () => {
    // 10 characters, all 10 from a 1-of-62 charset: practically never drawn.
    const policy = await parsePasswordPolicy(hcl(10, [LOWER + UPPER + DIGITS], ['#', 10]))
    expect(() => checkSatisfiable(policy)).toThrow(/rules are too tight: fewer than 1% of 2000/)
  })

  it('gives up with a 400 instead of looping when no candidate passes', () => {
    const impossible: PasswordPolicy = {
      text: '',
      length: 4,
      rules: [
        { charset: 'ab', minChars: 0 },
        { charset: 'z', minChars: 1 },
      ],
      alphabet: 'ab',
    }
    expect(() => generatePassword(impossible, 'password policy "x"')).toThrow(
      /password policy "x": no password met every rule in 10000 attempts/,
    )
  })
})
