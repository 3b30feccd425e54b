import { ApiError } from '../core/errors.js'
import type { ApiHandler, RawResponse } from './api.js'

export interface InProcessRequest {
  method: string
  /** `/v1/<path>?<query>`, as a client would send it. */
  target: string
  headers?: Record<string, string>
  body?: string
  remoteAddress?: string
}

/**
 * Calls the /v1 handler production serves, without a socket (tests, benchmarks, tools): the
 * same parsing, pipeline and envelope as a request over HTTP, minus the bytes on the wire.
 */
export function callInProcess(api: ApiHandler, request: InProcessRequest): Promise<RawResponse> {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(request.headers ?? {})) headers[k.toLowerCase()] = v
  const body = request.body ?? ''
  if (body !== '') headers['content-length'] ??= String(Buffer.byteLength(body))
  return api({
    method: request.method.toUpperCase(),
    target: request.target,
    headers,
    async readBody(maxBytes) {
      if (Buffer.byteLength(body) > maxBytes) throw new ApiError(413, 'request body too large')
      return body
    },
    remoteAddress: request.remoteAddress ?? '127.0.0.1',
    remotePort: 0,
  })
}
