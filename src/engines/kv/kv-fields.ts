import { ApiError, badRequest } from '../../core/errors.js'
import { optionalInt } from '../../core/fields.js'

/** Longest secret path, in characters (the column holds 512). */
export const MAX_PATH_LENGTH = 512
/** Longest key anywhere inside a secret. */
export const MAX_KEY_LENGTH = 1024
/** Largest secret, as JSON bytes. */
export const MAX_SECRET_BYTES = 1024 * 1024

const CUSTOM_METADATA_KEYS = 64
const CUSTOM_METADATA_KEY_LENGTH = 128
const CUSTOM_METADATA_VALUE_LENGTH = 512

/**
 * Validates a secret path relative to the engine (`app/db`), or a folder for listing (`''` or
 * ending in `/`). Rejects empty segments (`a//b`), dot segments and trailing white space (MySQL
 * compares `a ` and `a` as equal).
 */
export function checkPath(path: string, kind: 'secret' | 'folder'): string {
  if (path.length > MAX_PATH_LENGTH) {
    throw badRequest(`path is longer than ${MAX_PATH_LENGTH} characters`)
  }
  if (kind === 'folder' && path === '') return path
  if (path === '') throw badRequest('missing path')
  const body = kind === 'folder' ? path.slice(0, -1) : path
  if (kind === 'folder' && !path.endsWith('/')) throw badRequest('folder must end with "/"')
  if (kind === 'secret' && path.endsWith('/')) throw badRequest('path must not end with "/"')
  for (const segment of body.split('/')) {
    if (segment === '') throw badRequest('path must not contain empty segments')
    if (segment === '.' || segment === '..') {
      throw badRequest('path must not contain "." or ".." segments')
    }
  }
  // eslint-disable-next-line no-control-regex
  if (/[\0-\x1f\x7f]/.test(path)) throw badRequest('path contains control characters')
  if (/\s$/.test(body)) throw badRequest('path must not end with white space')
  if (/[\uD800-\uDFFF]/.test(path.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) {
    throw badRequest('path is not valid UTF-8')
  }
  return path
}

/** A secret's data: a JSON object with bounded keys and size. */
export function checkData(value: unknown, field = 'data'): Record<string, unknown> {
  if (value === undefined || value === null) throw badRequest(`no ${field} provided`)
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(`${field} must be a JSON object`)
  }
  const data = value as Record<string, unknown>
  checkKeys(data, 0)
  if (Buffer.byteLength(JSON.stringify(data)) > MAX_SECRET_BYTES) {
    throw new ApiError(413, `secret is larger than ${MAX_SECRET_BYTES} bytes`)
  }
  return data
}

function checkKeys(value: unknown, depth: number): void {
  if (depth > 64) throw badRequest('secret data is nested too deeply')
  if (Array.isArray(value)) {
    for (const item of value) checkKeys(item, depth + 1)
    return
  }
  if (value === null || typeof value !== 'object') return
  for (const [key, inner] of Object.entries(value)) {
    if (key.length > MAX_KEY_LENGTH) {
      throw badRequest(`secret keys must be at most ${MAX_KEY_LENGTH} characters`)
    }
    checkKeys(inner, depth + 1)
  }
}

/** `options.cas` of a data write: undefined when absent. */
export function parseCas(options: unknown): number | undefined {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw badRequest('options must be a JSON object')
  }
  return optionalInt((options as Record<string, unknown>).cas, 'cas')
}

/** `versions` of delete/undelete/destroy: a non-empty list of positive integers. */
export function parseVersions(value: unknown): number[] {
  const items =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : Array.isArray(value)
        ? value
        : value === undefined || value === null
          ? []
          : [value]
  if (items.length === 0) throw badRequest('no version number provided')
  if (items.length > 1000) throw badRequest('too many versions in one request')
  const versions = items.map((v) => optionalInt(v, 'versions', 1))
  if (versions.some((v) => v === undefined)) throw badRequest('versions must be positive integers')
  return [...new Set(versions as number[])]
}

/** Validates `custom_metadata` like Vault: string values, bounded count and sizes. */
export function checkCustomMetadata(value: unknown): Record<string, string> | null | undefined {
  if (value === undefined) return undefined
  if (value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('custom_metadata must be an object of strings')
  }
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length > CUSTOM_METADATA_KEYS) {
    throw badRequest(`custom_metadata has more than ${CUSTOM_METADATA_KEYS} keys`)
  }
  const out: Record<string, string> = {}
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw badRequest('custom_metadata values must be strings')
    if (k.length === 0 || k.length > CUSTOM_METADATA_KEY_LENGTH) {
      throw badRequest(`custom_metadata keys must be 1 to ${CUSTOM_METADATA_KEY_LENGTH} characters`)
    }
    if (v.length > CUSTOM_METADATA_VALUE_LENGTH) {
      throw badRequest(
        `custom_metadata values must be at most ${CUSTOM_METADATA_VALUE_LENGTH} characters`,
      )
    }
    out[k] = v
  }
  return out
}

/** RFC 3339 with nanoseconds, as Vault prints KV times; `""` for unset (0). */
export function rfc3339(ms: number): string {
  if (!ms) return ''
  // toISOString always ends in `.sssZ`: Go's nanosecond form appends six zeros before the Z.
  return `${new Date(ms).toISOString().slice(0, -1)}000000Z`
}

/** Seconds as a Go duration string (`0s`, `1m30s`, `768h0m0s`), as Vault prints durations. */
export function goDuration(seconds: number): string {
  if (seconds <= 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}
