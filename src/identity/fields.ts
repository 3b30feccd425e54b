import { badRequest } from '../core/errors.js'
import { normalizePolicies, optionalString, stringList } from '../core/fields.js'

/** An entity or group name from a body: optional, non-empty, no slash (it is a path segment). */
export function optionalName(value: unknown, field = 'name'): string | undefined {
  const name = optionalString(value, field)?.trim()
  if (name === undefined || name === '') return undefined
  if (name.length > 255 || name.includes('/')) throw badRequest(`invalid ${field}`)
  return name
}

/** Identity policies: normalised; `root` can never come from identity. */
export function identityPolicies(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined
  const policies = normalizePolicies(stringList(value, 'policies'))
  if (policies.includes('root'))
    throw badRequest('the root policy cannot be granted through identity')
  return policies
}

/** A list of ids; `undefined` when the field is absent (leave unchanged). */
export function optionalIds(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined
  return [
    ...new Set(
      stringList(value, field)
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ]
}
