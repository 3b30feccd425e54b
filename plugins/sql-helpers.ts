import type { ConnectionConfig } from './contract.js'
import { PluginInputError } from './plugin-input-error.js'

/** Reads the fields every SQL plugin shares, throwing `PluginInputError` for bad values. */
export function parseSqlConfig(raw: Record<string, unknown>): ConnectionConfig {
  const url = raw.connection_url
  if (typeof url !== 'string' || url.trim() === '')
    throw new PluginInputError('missing connection_url')
  const text = (name: string): string => {
    const v = raw[name]
    if (v === undefined || v === null) return ''
    if (typeof v !== 'string') throw new PluginInputError(`${name} must be a string`)
    return v
  }
  const int = (name: string, fallback: number, max: number): number => {
    const v = raw[name]
    if (v === undefined || v === null || v === '') return fallback
    const n = typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : NaN
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new PluginInputError(`${name} must be an integer between 1 and ${max}`)
    }
    return n
  }
  const leftover = url.replace(/\{\{(username|password)\}\}/g, '')
  if (leftover.includes('{{') || leftover.includes('}}')) {
    throw new PluginInputError(
      'connection_url may only contain the {{username}} and {{password}} placeholders',
    )
  }
  return {
    connectionUrl: url.trim(),
    username: text('username'),
    password: text('password'),
    maxOpenConnections: int('max_open_connections', 4, 100),
    connectTimeout: int('connect_timeout', 5, 120),
  }
}

/**
 * Fills `{{username}}` and `{{password}}` in a connection URL, URL-escaped (Vault's behaviour
 * unless `disable_escaping`). The result holds a secret: never log it or put it in an error.
 */
export function fillConnectionUrl(config: ConnectionConfig, password = config.password): string {
  return config.connectionUrl
    .split('{{username}}')
    .join(encodeURIComponent(config.username))
    .split('{{password}}')
    .join(encodeURIComponent(password))
}

/** Whether the URL takes its credentials from `username`/`password` through placeholders. */
export function usesPlaceholders(url: string): boolean {
  return url.includes('{{username}}') || url.includes('{{password}}')
}

/**
 * Hides the password part of `scheme://user:pass@...` or a Go DSN `user:pass@tcp(...)/`;
 * the `{{password}}` placeholder is not a secret and stays.
 */
export function redactCredentials(url: string): string {
  return url.replace(
    /^((?:[a-z][a-z0-9+.-]*:\/\/)?)([^:@/]*):([^@]*)@/i,
    (all, scheme: string, user: string, pass: string) =>
      pass === '{{password}}' ? all : `${scheme}${user}:***@`,
  )
}

/**
 * Rejects when `work` takes longer than `ms` (a TCP peer that accepts but never answers the
 * handshake is not covered by drivers' connect timeouts).
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}
