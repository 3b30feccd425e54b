import { randomInt } from 'node:crypto'
import { ApiError } from '../errors.js'
import { PolicyTextError, readPolicyText } from '../policy/parse.js'

/** One `rule "charset" { ... }` block: at least `minChars` characters from `charset`. */
export interface CharsetRule {
  /** Printable ASCII (0x21-0x7E), each character once. */
  charset: string
  minChars: number
}

/** A parsed password policy (Vault's `sys/policies/password/<name>` format). */
export interface PasswordPolicy {
  /** The policy text to store and return (base64 input is decoded). */
  text: string
  length: number
  rules: CharsetRule[]
  /** Every character any rule allows, each once: what candidates are drawn from. */
  alphabet: string
}

export const MIN_LENGTH = 4
export const MAX_LENGTH = 100
/** A password policy is a length and a few charsets: anything bigger is a mistake. */
const MAX_POLICY_BYTES = 64 * 1024
/** Candidates drawn before generation gives up (a stored policy passes at least 1% of them). */
const MAX_ATTEMPTS = 10_000
/** Write-time check: of this many candidates, at least `MIN_PASS_RATE` must pass every rule. */
const SAMPLE_SIZE = 2_000
const MIN_PASS_RATE = 0.01

const PRINTABLE = /^[\x21-\x7e]$/
const TOP_LEVEL_KEYS = new Set(['length', 'rule'])
const CHARSET_KEYS = new Set(['charset', 'min-chars'])

function fail(message: string): never {
  throw new ApiError(400, `failed to parse password policy: ${message}`)
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses a password policy: HCL or JSON, either optionally base64-encoded. Throws
 * `ApiError(400, 'failed to parse password policy: ...')` on any syntax or validation error.
 * Does not check that the rules can be met: {@link checkSatisfiable} does, on write.
 *
 * @example
 * await parsePasswordPolicy(`
 *   length = 24
 *   rule "charset" { charset = "abcdefghijklmnopqrstuvwxyz" min-chars = 1 }
 *   rule "charset" { charset = "0123456789" min-chars = 2 }
 * `)
 */
export async function parsePasswordPolicy(text: string): Promise<PasswordPolicy> {
  if (text.trim() === '') fail('policy is empty')
  const { source, doc } = await readPolicyText(text, MAX_POLICY_BYTES).catch((err: unknown) => {
    if (err instanceof PolicyTextError) fail(err.message)
    throw err
  })
  if (!isObject(doc)) fail('policy must be an object')
  for (const key of Object.keys(doc)) {
    if (!TOP_LEVEL_KEYS.has(key)) fail(`invalid key "${key.slice(0, 64)}"`)
  }
  const length = doc.length
  if (
    typeof length !== 'number' ||
    !Number.isInteger(length) ||
    length < MIN_LENGTH ||
    length > MAX_LENGTH
  ) {
    fail(`length must be an integer from ${MIN_LENGTH} to ${MAX_LENGTH}`)
  }
  const rules = ruleEntries(doc.rule).map(([type, body]) => parseRule(type, body))
  if (rules.length === 0) fail('at least one rule "charset" { ... } is required')
  const required = rules.reduce((sum, r) => sum + r.minChars, 0)
  if (required > length) {
    fail(`the rules' min-chars add up to ${required}, more than length ${length}`)
  }
  const alphabet = [...new Set(rules.flatMap((r) => [...r.charset]))].join('')
  return { text: source, length, rules, alphabet }
}

// `rule` is `{type: [body, ...]}` from HCL, `{type: body}` in JSON, or a list of either.
function ruleEntries(value: unknown): [string, unknown][] {
  if (value === undefined) return []
  const entries: [string, unknown][] = []
  for (const map of Array.isArray(value) ? value : [value]) {
    if (!isObject(map)) fail('"rule" must be a map of rule types to rule bodies')
    for (const [type, body] of Object.entries(map)) {
      for (const one of Array.isArray(body) ? body : [body]) entries.push([type, one])
    }
  }
  return entries
}

function parseRule(type: string, body: unknown): CharsetRule {
  if (type !== 'charset') {
    fail(`unknown rule type "${type.slice(0, 64)}": only "charset" is supported`)
  }
  if (!isObject(body)) fail('rule "charset" must be a block')
  for (const key of Object.keys(body)) {
    if (!CHARSET_KEYS.has(key)) fail(`rule "charset": invalid key "${key.slice(0, 64)}"`)
  }
  const charset = body.charset
  if (typeof charset !== 'string' || charset === '') {
    fail('rule "charset": charset must be a non-empty string')
  }
  const unprintable = [...new Set([...charset].filter((c) => !PRINTABLE.test(c)))]
  if (unprintable.length > 0) {
    const shown = unprintable.slice(0, 8).map(codePoint).join(', ')
    fail(`rule "charset": only printable ASCII (0x21-0x7E) is allowed, found ${shown}`)
  }
  const minChars = body['min-chars'] ?? 0
  if (typeof minChars !== 'number' || !Number.isInteger(minChars) || minChars < 0) {
    fail('rule "charset": min-chars must be an integer of 0 or more')
  }
  return { charset: [...new Set(charset)].join(''), minChars }
}

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
}

/**
 * Generates a password as Vault does, by rejection sampling: `length` characters drawn uniformly
 * from the policy's alphabet with node:crypto's CSPRNG, kept only when every rule's min-chars is
 * met. Throws `ApiError(400)` after 10,000 failed candidates (a policy that passed
 * {@link checkSatisfiable} practically never does).
 */
export function generatePassword(policy: PasswordPolicy, name = 'password policy'): string {
  const sets = policy.rules.map((r) => ({ chars: new Set(r.charset), min: r.minChars }))
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const candidate = draw(policy)
    if (sets.every((rule) => meets(candidate, rule.chars, rule.min))) return candidate
  }
  throw new ApiError(
    400,
    `${name}: no password met every rule in ${MAX_ATTEMPTS} attempts; loosen its rules`,
  )
}

/**
 * Refuses (`ApiError(400)`) a policy whose rules are too tight: of 2,000 sampled candidates at
 * least 1% must pass, so generation from a stored policy does not fail in practice.
 */
export function checkSatisfiable(policy: PasswordPolicy): void {
  const sets = policy.rules.map((r) => ({ chars: new Set(r.charset), min: r.minChars }))
  const needed = Math.ceil(SAMPLE_SIZE * MIN_PASS_RATE)
  let passed = 0
  for (let i = 0; i < SAMPLE_SIZE && passed < needed; i++) {
    const candidate = draw(policy)
    if (sets.every((rule) => meets(candidate, rule.chars, rule.min))) passed++
  }
  if (passed < needed) {
    throw new ApiError(
      400,
      `password policy rules are too tight: fewer than ${MIN_PASS_RATE * 100}% of ${SAMPLE_SIZE} ` +
        'random candidates met every rule; raise length, widen charsets or lower min-chars',
    )
  }
}

function draw(policy: PasswordPolicy): string {
  const { alphabet, length } = policy
  let out = ''
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)]!
  return out
}

function meets(candidate: string, chars: Set<string>, min: number): boolean {
  if (min === 0) return true
  let count = 0
  for (const c of candidate) if (chars.has(c) && ++count >= min) return true
  return false
}
