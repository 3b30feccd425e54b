import { badRequest } from './errors.js'

/*
 * Field readers for request bodies. Vault accepts loose JSON (numbers as strings, lists as
 * comma-separated strings); these accept the same and throw a 400 that names the field.
 */

export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw badRequest(`missing ${field}`)
  return value.trim()
}

export function stringList(value: unknown, field: string): string[] {
  if (value === undefined || value === null || value === '') return []
  if (typeof value === 'string')
    return value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  throw badRequest(`${field} must be a list of strings`)
}

export function stringMap(value: unknown, field: string): Record<string, string> | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'object' || Array.isArray(value))
    throw badRequest(`${field} must be an object`)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw badRequest(`${field} values must be strings`)
    }
    out[k] = String(v)
  }
  return out
}

export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw badRequest(`${field} must be a string`)
  return value
}

export function optionalBool(value: unknown, field: string): boolean | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value === 'boolean') return value
  if (value === 'true' || value === '1' || value === 1) return true
  if (value === 'false' || value === '0' || value === 0) return false
  throw badRequest(`${field} must be a boolean`)
}

export function optionalInt(
  value: unknown,
  field: string,
  min = 0,
  max = 2 ** 31 - 1,
): number | undefined {
  if (value === undefined || value === null || value === '') return undefined
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^-?\d+$/.test(value)
        ? Number(value)
        : NaN
  if (!Number.isInteger(n) || n < min || n > max)
    throw badRequest(`${field} must be an integer between ${min} and ${max}`)
  return n
}

/** Lower-cases, trims, de-duplicates and sorts policy names (tokens and identity alike). */
export function normalizePolicies(names: string[]): string[] {
  const out = [...new Set(names.map((n) => n.trim().toLowerCase()).filter(Boolean))]
  return out.sort()
}
