import { badRequest } from '../../core/errors.js'

/*
 * Claim helpers for JWT roles: JSON-pointer lookup, `bound_claims` matching (string or glob) and
 * `claim_mappings` extraction, with Vault's semantics and error texts.
 */

export type Claims = Record<string, unknown>
export type BoundClaims = Record<
  string,
  string | number | boolean | Array<string | number | boolean>
>

/**
 * A claim by name, or by RFC 6901 JSON pointer when `pointer` is true (Vault treats bound claim
 * and mapping names starting with `/` as pointers, e.g. `/nested/claim`).
 */
export function getClaim(claims: Claims, name: string, pointer = name.startsWith('/')): unknown {
  if (!pointer) return Object.prototype.hasOwnProperty.call(claims, name) ? claims[name] : undefined
  if (name === '') return claims
  if (!name.startsWith('/')) return undefined
  let node: unknown = claims
  for (const raw of name.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(node)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return undefined
      node = node[Number(key)]
    } else if (node !== null && typeof node === 'object') {
      node = Object.prototype.hasOwnProperty.call(node, key)
        ? (node as Record<string, unknown>)[key]
        : undefined
    } else {
      return undefined
    }
    if (node === undefined) return undefined
  }
  return node
}

/** Validates a role's `bound_claims` map at write time. */
export function parseBoundClaims(value: unknown, type: 'string' | 'glob'): BoundClaims {
  if (value === undefined || value === null || value === '') return {}
  if (typeof value !== 'object' || Array.isArray(value))
    throw badRequest('bound_claims must be an object')
  const out: BoundClaims = {}
  for (const [claim, v] of Object.entries(value)) {
    checkKey(claim, 'bound_claims')
    const list = Array.isArray(v) ? v : [v]
    for (const item of list) {
      const ok =
        type === 'glob'
          ? typeof item === 'string'
          : ['string', 'number', 'boolean'].includes(typeof item)
      if (!ok) {
        throw badRequest(
          type === 'glob'
            ? `claim is not a string or list: ${claim.slice(0, 100)}`
            : `claim "${claim.slice(0, 100)}" has a value that is not a string, number or boolean`,
        )
      }
    }
    out[claim] = v as BoundClaims[string]
  }
  return out
}

/**
 * Checks every bound claim: the token's value (or any element of a list value) must equal one of
 * the bound values (numbers and booleans compared as text), or match one of the globs.
 */
export function checkBoundClaims(
  claims: Claims,
  bound: BoundClaims,
  type: 'string' | 'glob',
): void {
  for (const [name, expected] of Object.entries(bound)) {
    const actual = getClaim(claims, name)
    if (actual === undefined)
      throw badRequest(`error validating claims: claim "${safeName(name)}" is missing`)
    const expectedList = Array.isArray(expected) ? expected : [expected]
    const actualList = Array.isArray(actual) ? actual : [actual]
    const found = expectedList.some((want) =>
      actualList.some((have) => {
        if (!isScalar(have)) return false
        if (type === 'glob') return typeof have === 'string' && globMatch(String(want), have)
        return String(want) === String(have)
      }),
    )
    if (!found) {
      throw badRequest(
        `error validating claims: claim "${safeName(name)}" does not match any associated bound claim values`,
      )
    }
  }
}

/** `claim_mappings`: copies the mapped claims into token metadata (strings, numbers, booleans). */
export function mapClaims(
  claims: Claims,
  mappings: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [source, target] of Object.entries(mappings)) {
    const value = getClaim(claims, source)
    if (value === undefined) continue
    if (!isScalar(value)) throw badRequest(`error converting claim '${safeName(source)}' to string`)
    out[target] = String(value)
  }
  return out
}

/** Validates `claim_mappings` at role write: string targets, `role` reserved, no duplicates. */
export function parseClaimMappings(value: unknown): Record<string, string> {
  if (value === undefined || value === null || value === '') return {}
  if (typeof value !== 'object' || Array.isArray(value))
    throw badRequest('claim_mappings must be an object')
  const out: Record<string, string> = {}
  const targets = new Set<string>()
  for (const [source, target] of Object.entries(value)) {
    checkKey(source, 'claim_mappings')
    if (typeof target !== 'string' || target === '')
      throw badRequest('claim_mappings values must be strings')
    checkKey(target, 'claim_mappings')
    if (target === 'role') {
      throw badRequest('metadata key "role" is reserved and may not be a target of claim_mappings')
    }
    if (targets.has(target))
      throw badRequest(`multiple keys are mapped to metadata key "${safeName(target)}"`)
    targets.add(target)
    out[source] = target
  }
  return out
}

/** Vault's glob (go-glob): `*` matches any run of characters; nothing else is special. */
export function globMatch(pattern: string, value: string): boolean {
  const parts = pattern.split('*')
  if (parts.length === 1) return pattern === value
  const first = parts[0]!
  const last = parts[parts.length - 1]!
  if (!value.startsWith(first) || value.length < first.length + last.length) return false
  let pos = first.length
  for (const middle of parts.slice(1, -1)) {
    const at = value.indexOf(middle, pos)
    if (at < 0) return false
    pos = at + middle.length
  }
  return value.length - last.length >= pos && value.endsWith(last)
}

function checkKey(key: string, field: string): void {
  if (key === '' || key === '__proto__') throw badRequest(`${field} has an invalid claim name`)
}

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

/** Claim names come from the role (admin input), but keep error texts short and printable. */
function safeName(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '?').slice(0, 100)
}
