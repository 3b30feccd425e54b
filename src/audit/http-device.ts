import { badRequest } from '../core/errors.js'
import type { AuditDevice, DeviceOptions } from './device.js'

const TIMEOUT_MS = 5_000

/**
 * The `http` device (OpenBao's): POSTs each line as a JSON body to `url`. `headers` (a JSON
 * object, e.g. `{"Authorization":"Bearer ..."}`) is a secret option: sealed at rest, never shown.
 * A non-2xx answer or a timeout means not recorded.
 */
export function createHttpDevice(options: DeviceOptions): AuditDevice {
  let url: URL
  try {
    url = new URL(options.url ?? '')
  } catch {
    throw badRequest('url must be an http(s) URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw badRequest('url must be an http(s) URL')
  if (url.username || url.password) throw badRequest('put credentials in headers, not in url')
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (options.headers) {
    let parsed: unknown
    try {
      parsed = JSON.parse(options.headers)
    } catch {
      throw badRequest('headers must be a JSON object of strings')
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw badRequest('headers must be a JSON object of strings')
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== 'string') throw badRequest('headers must be a JSON object of strings')
      headers[k.toLowerCase()] = v
    }
  }
  return {
    open: async () => ({}),
    async write(line) {
      const res = await fetch(url, {
        method: 'POST',
        headers,
        body: line,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      await res.body?.cancel()
      if (res.status < 200 || res.status > 299)
        throw new Error(`audit http sink answered ${res.status}`)
    },
    close: async () => {},
  }
}
