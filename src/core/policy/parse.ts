import { parseDuration } from '../duration.js'
import { ApiError } from '../errors.js'
import { HclParserCrashError, HclParserUnavailableError, parseHclOffThread } from './hcl.js'
import { policyNestingError } from './nesting.js'

/** A capability a policy can grant on a path (`deny` overrides every other one). */
export type PolicyCapability =
  'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny'

/**
 * One `path "..." { ... }` stanza of a policy.
 *
 * `path` is the pattern as written, with leading `/` removed: it may end in `*` (prefix match),
 * contain `+` segments (one segment each) and `{{identity...}}` templates, which are resolved when
 * an ACL is compiled for a token.
 */
export interface PolicyRule {
  path: string
  /** Deduplicated; exactly `['deny']` when the stanza denies. */
  capabilities: PolicyCapability[]
  /** Lower-cased parameter name (or `*`) → allowed values; an empty list allows any value. */
  allowedParameters?: Record<string, unknown[]>
  /** Lower-cased parameter name (or `*`) → denied values; an empty list denies any value. */
  deniedParameters?: Record<string, unknown[]>
  requiredParameters?: string[]
  /** Seconds; parsed for compatibility, not enforced. */
  minWrappingTtl?: number
  maxWrappingTtl?: number
}

/** A parsed ACL policy. */
export interface Policy {
  name: string
  /** The policy text to store and return (base64 input is decoded). */
  text: string
  rules: PolicyRule[]
  /** True when a rule path holds a `{{...}}` template, so the ACL depends on the token's identity. */
  templated: boolean
}

const CAPABILITIES = new Set<string>([
  'create',
  'read',
  'update',
  'patch',
  'delete',
  'list',
  'sudo',
  'deny',
])
// OpenBao's `scan` (and Vault's `subscribe`/`recover`) have no operation here: accepted, ignored.
const IGNORED_CAPABILITIES = new Set(['scan', 'subscribe', 'recover'])

const LEGACY_POLICIES: Record<string, PolicyCapability[]> = {
  deny: ['deny'],
  read: ['read', 'list'],
  write: ['create', 'read', 'update', 'delete', 'list'],
  sudo: ['create', 'read', 'update', 'delete', 'list', 'sudo'],
}

const TOP_LEVEL_KEYS = new Set(['path', 'name'])
const RULE_KEYS = new Set([
  'comment',
  'policy',
  'capabilities',
  'allowed_parameters',
  'denied_parameters',
  'required_parameters',
  'min_wrapping_ttl',
  'max_wrapping_ttl',
  'mfa_methods',
  'control_group',
  'subscribe_event_types',
])

function fail(message: string): never {
  throw new ApiError(400, `failed to parse policy: ${message}`)
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses Vault policy text (HCL or JSON, either optionally base64-encoded) into rules.
 * Throws `ApiError(400, 'failed to parse policy: ...')` on any syntax or validation error.
 *
 * @example
 * await parsePolicy('ci', 'path "secret/data/ci/*" { capabilities = ["read", "list"] }')
 */
export async function parsePolicy(name: string, text: string): Promise<Policy> {
  const { source, doc } = await readPolicyText(text, MAX_POLICY_BYTES).catch((err: unknown) => {
    if (err instanceof PolicyTextError) fail(err.message)
    throw err
  })
  if (!isObject(doc)) fail('policy must be an object')
  for (const key of Object.keys(doc)) {
    if (!TOP_LEVEL_KEYS.has(key)) fail(`invalid key "${key}"`)
  }
  const rules: PolicyRule[] = []
  for (const [path, body] of pathEntries(doc.path)) rules.push(parseRule(path, body))
  return { name, text: source, rules, templated: rules.some((r) => r.path.includes('{{')) }
}

/**
 * The largest policy accepted: about 25,000 `path` blocks. Vault has no limit, but parsing and
 * compiling cost grows with size, and no hand-written policy comes near it.
 */
export const MAX_POLICY_BYTES = 1024 * 1024

/** Policy text that cannot be read; the message is meant to follow "failed to parse ...: ". */
export class PolicyTextError extends Error {}

/**
 * The policy parser gave no answer (it timed out, or its worker failed and was replaced): a 503,
 * and worth trying again. Not a verdict on the text, so never cache it as one.
 */
export class PolicyParserUnavailableError extends ApiError {
  constructor(message: string) {
    super(503, `policy parser unavailable: ${message}`)
    this.name = 'PolicyParserUnavailableError'
  }
}

/**
 * A stored policy that failed to parse when it was loaded. Stores log it (naming the policy, never
 * quoting its text) and report it to their `onLoadFailure` listeners, which feed a metric.
 */
export interface PolicyLoadFailure {
  /** `acl`: the policy grants nothing meanwhile; `password`: nothing can use it meanwhile. */
  type: 'acl' | 'password'
  name: string
  /**
   * `invalid`: the stored text does not parse (until it is rewritten); `unavailable`: the parser
   * gave no answer ({@link PolicyParserUnavailableError}), so nothing was cached and the next use
   * parses again.
   */
  reason: 'invalid' | 'unavailable'
}

/**
 * The first steps of reading any policy text (ACL or password): base64 decoded when it is valid
 * base64, refused over `maxBytes` or when nested deeper than the parser can take (see
 * {@link policyNestingError}), then parsed as JSON (when it starts with `{`) or as HCL. Throws
 * {@link PolicyTextError}, which the caller turns into its own 400, or
 * {@link PolicyParserUnavailableError}.
 */
export async function readPolicyText(
  text: string,
  maxBytes: number,
): Promise<{ source: string; doc: unknown }> {
  const source = decodeBase64(text) ?? text
  const bytes = Buffer.byteLength(source)
  if (bytes > maxBytes) {
    throw new PolicyTextError(`policy is ${bytes} bytes; at most ${maxBytes} are accepted`)
  }
  if (source.trimStart().startsWith('{')) {
    const tooDeep = policyNestingError(source, 'json')
    if (tooDeep) throw new PolicyTextError(tooDeep)
    try {
      return { source, doc: JSON.parse(source) as unknown }
    } catch (err) {
      throw new PolicyTextError(`invalid JSON: ${(err as Error).message}`)
    }
  }
  try {
    return { source, doc: await parseHclDocument(source) }
  } catch (err) {
    if (err instanceof HclParserUnavailableError) {
      throw new PolicyParserUnavailableError(err.message)
    }
    throw new PolicyTextError((err as Error).message)
  }
}

/** Vault decodes a policy body when it is valid standard base64, and uses it as is otherwise. */
export function decodeBase64(text: string): string | undefined {
  const compact = text.replace(/[\r\n]/g, '')
  if (compact.length === 0 || compact.length % 4 !== 0) return undefined
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return undefined
  return Buffer.from(compact, 'base64').toString('utf8')
}

/**
 * Parses HCL into hcl2json's object form (blocks become lists of bodies). A syntax error, or text
 * nested too deep to hand to the parser, is thrown as an `Error` whose message reads
 * `line L, column C: ...`; the parser's own failures pass through as `HclParserCrashError` or
 * `HclParserUnavailableError` (see `./hcl.ts`).
 */
export async function parseHclDocument(text: string): Promise<unknown> {
  const tooDeep = policyNestingError(text, 'hcl')
  if (tooDeep) throw new Error(tooDeep)
  try {
    return await parseHclOffThread('policy.hcl', text)
  } catch (err) {
    if (err instanceof HclParserCrashError || err instanceof HclParserUnavailableError) throw err
    const raw = err instanceof Error ? err.message : String(err)
    throw new Error(
      raw
        .replace(/^parse config: \[/, '')
        .replace(/\]$/, '')
        .replace(/policy\.hcl:(\d+),(\d+)(-\d+)?: /g, 'line $1, column $2: '),
    )
  }
}

// `path` is `{pattern: body}` in JSON, `{pattern: [body, ...]}` from HCL, or a list of either.
function pathEntries(value: unknown): [string, unknown][] {
  if (value === undefined) return []
  const maps = Array.isArray(value) ? value : [value]
  const entries: [string, unknown][] = []
  for (const map of maps) {
    if (!isObject(map)) fail('"path" must be a map of path patterns to rules')
    for (const [path, body] of Object.entries(map as Record<string, unknown>)) {
      for (const one of Array.isArray(body) ? body : [body]) entries.push([path, one])
    }
  }
  return entries
}

function parseRule(key: string, body: unknown): PolicyRule {
  if (!isObject(body)) return fail(`path "${key}": rule must be an object`)
  for (const field of Object.keys(body)) {
    if (!RULE_KEYS.has(field)) fail(`path "${key}": invalid key "${field}"`)
  }
  const path = key.replace(/^\/+/, '')
  validateGlob(key, path)

  const caps = new Set<PolicyCapability>()
  if (body.policy !== undefined) {
    const legacy = typeof body.policy === 'string' ? LEGACY_POLICIES[body.policy] : undefined
    if (!legacy) fail(`path "${key}": invalid policy ${JSON.stringify(body.policy)}`)
    for (const cap of legacy) caps.add(cap)
  }
  if (body.capabilities !== undefined) {
    if (!Array.isArray(body.capabilities)) fail(`path "${key}": capabilities must be a list`)
    for (const cap of body.capabilities as unknown[]) {
      if (typeof cap === 'string' && IGNORED_CAPABILITIES.has(cap)) continue
      if (typeof cap !== 'string' || !CAPABILITIES.has(cap)) {
        fail(`path "${key}": invalid capability ${JSON.stringify(cap)}`)
      }
      caps.add(cap as PolicyCapability)
    }
  }

  const rule: PolicyRule = { path, capabilities: caps.has('deny') ? ['deny'] : [...caps] }
  const allowed = parseParameters(key, 'allowed_parameters', body.allowed_parameters)
  if (allowed) rule.allowedParameters = allowed
  const denied = parseParameters(key, 'denied_parameters', body.denied_parameters)
  if (denied) rule.deniedParameters = denied
  if (body.required_parameters !== undefined) {
    const required = body.required_parameters
    if (!Array.isArray(required) || required.some((p) => typeof p !== 'string')) {
      fail(`path "${key}": required_parameters must be a list of strings`)
    }
    rule.requiredParameters = required as string[]
  }
  const min = parseTtl(key, 'min_wrapping_ttl', body.min_wrapping_ttl)
  const max = parseTtl(key, 'max_wrapping_ttl', body.max_wrapping_ttl)
  if (min !== undefined) rule.minWrappingTtl = min
  if (max !== undefined) rule.maxWrappingTtl = max
  if (min && max && max < min) {
    fail(`path "${key}": max_wrapping_ttl cannot be less than min_wrapping_ttl`)
  }
  return rule
}

/**
 * Checks the glob syntax of a rule path. `*` may only end the path; `+` must be a whole segment.
 * Also used on template-expanded paths by the ACL compiler (which then drops the rule).
 */
export function globError(path: string): string | undefined {
  if (path.includes('+*')) return `invalid use of wildcards ('+*' is forbidden)`
  const star = path.indexOf('*')
  if (star !== -1 && star !== path.length - 1) return `'*' is only allowed at the end of a path`
  const segments = (path.endsWith('*') ? path.slice(0, -1) : path).split('/')
  if (segments.some((s) => s.includes('+') && s !== '+')) {
    return `'+' must be a whole path segment`
  }
  return undefined
}

function validateGlob(key: string, path: string): void {
  const error = globError(path)
  if (error) fail(`path "${key}": ${error}`)
}

function parseParameters(
  key: string,
  field: string,
  value: unknown,
): Record<string, unknown[]> | undefined {
  if (value === undefined) return undefined
  // HCL block syntax (`allowed_parameters { ... }`) arrives as a list of maps.
  const maps = Array.isArray(value) ? value : [value]
  const out: Record<string, unknown[]> = {}
  for (const map of maps) {
    if (!isObject(map)) return fail(`path "${key}": ${field} must be a map`)
    for (const [param, values] of Object.entries(map)) {
      out[param.toLowerCase()] = Array.isArray(values) ? values : [values]
    }
  }
  return Object.keys(out).length > 0 ? out : undefined
}

function parseTtl(key: string, field: string, value: unknown): number | undefined {
  if (value === undefined) return undefined
  try {
    return parseDuration(value, field)
  } catch {
    return fail(`path "${key}": invalid ${field} ${JSON.stringify(value)}`)
  }
}
