import { createHmac } from 'node:crypto'

/** Prefix of every hashed value, as Vault writes it. */
export const HMAC_PREFIX = 'hmac-sha256:'

// RFC 3339 timestamps (what Vault leaves in clear: creation_time, expiration...).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/

/** `hmac-sha256:<hex>` of one value with a device's salt (what `sys/audit-hash` returns). */
export function hashValue(salt: Uint8Array, value: string): string {
  return HMAC_PREFIX + createHmac('sha256', salt).update(value).digest('hex')
}

/**
 * Copies a JSON-like value with every string leaf hashed. Map keys, numbers, booleans, nulls and
 * RFC 3339 timestamps stay in clear; keys listed in `keepClear` (the mount's
 * `audit_non_hmac_*_keys`) keep their values in clear at any depth.
 */
export function hashStructure(
  salt: Uint8Array,
  value: unknown,
  keepClear: ReadonlySet<string> = new Set(),
): unknown {
  if (typeof value === 'string') return RFC3339.test(value) ? value : hashValue(salt, value)
  if (Array.isArray(value)) return value.map((v) => hashStructure(salt, v, keepClear))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = keepClear.has(k) ? v : hashStructure(salt, v, keepClear)
    }
    return out
  }
  if (typeof value === 'bigint') return value.toString()
  return value
}
