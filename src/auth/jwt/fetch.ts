import { request } from 'node:https'
import { X509Certificate } from 'node:crypto'
import { badRequest } from '../../core/errors.js'

/** Largest discovery document or JWKS accepted from an issuer. */
const MAX_BODY_BYTES = 1024 * 1024

/**
 * Wraps a fetch so that it retries once when the connection fails before a response arrives: an
 * idle keep-alive socket closed by the issuer (ECONNRESET) must not fail a CI login.
 */
export function withRetry(impl: typeof fetch): typeof fetch {
  return async (input, init) => {
    try {
      return await impl(input, init)
    } catch (err) {
      if (!(err instanceof TypeError) || init?.signal?.aborted) throw err
      return impl(input, init)
    }
  }
}

export const fetchWithRetry: typeof fetch = withRetry((input, init) => fetch(input, init))

/**
 * A GET-only fetch for https issuers whose certificates chain to a private CA
 * (`oidc_discovery_ca_pem`, `jwks_ca_pem`). Plain http URLs use the global fetch.
 */
export function fetchWithCa(caPem: string): typeof fetch {
  const get: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    if (url.protocol !== 'https:') return fetch(input, init)
    const headers: Record<string, string> = {}
    new Headers(init?.headers).forEach((value, key) => (headers[key] = value))
    return new Promise<Response>((resolve, reject) => {
      const req = request(
        url,
        { method: 'GET', headers, ca: caPem, signal: init?.signal ?? undefined, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_BODY_BYTES) req.destroy(new Error('issuer response too large'))
            else chunks.push(chunk)
          })
          res.on('error', reject)
          res.on('end', () => {
            const status = res.statusCode ?? 502
            const responseHeaders = new Headers()
            for (const [k, v] of Object.entries(res.headers)) {
              if (v !== undefined) responseHeaders.set(k, Array.isArray(v) ? v.join(', ') : v)
            }
            const body = [101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks)
            resolve(new Response(body, { status, headers: responseHeaders }))
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error('issuer request timed out')))
      req.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })))
      req.end()
    })
  }
  return withRetry(get)
}

/** Checks a CA bundle given in the config (its first certificate must parse). */
export function checkCaPem(pem: string, field: string): void {
  try {
    new X509Certificate(pem)
  } catch {
    throw badRequest(`${field} is not a valid PEM certificate`)
  }
}
