import { Hono, type Context } from 'hono'
import { ApiError } from '../core/errors.js'
import { newRequestId, toApiError, type Core } from '../core/core.js'
import type { LogicalRequest, LogicalResponse, Operation } from '../core/request.js'
import { envelope } from './envelope.js'
import { observeRequests } from '../observability/request-observer.js'

export interface AppOptions {
  /** Largest accepted request body (Vault's default is 32 MiB). */
  maxBodyBytes?: number
  /** Longest accepted logical path. */
  maxPathLength?: number
}

const TRUE_VALUES = new Set(['1', 't', 'true', 'TRUE', 'True'])
const FALSE_VALUES = new Set(['0', 'f', 'false', 'FALSE', 'False'])

/**
 * The HTTP API: one Hono app that turns `/v1/<path>` requests into logical requests, runs them
 * through the core and writes Vault's envelope (or `{"errors": [...]}`) back.
 */
export function createApp(core: Core, options: AppOptions = {}): Hono {
  const { maxBodyBytes = 32 * 1024 * 1024, maxPathLength = 4096 } = options
  const app = new Hono()
  app.use('/v1/*', observeRequests(core))

  app.all('/v1/*', async function handleV1(c) {
    const requestId = newRequestId()
    c.header('X-Request-Id', requestId)
    try {
      const req = await toLogicalRequest(c, requestId, maxBodyBytes, maxPathLength)
      c.set('stintRequest', req)
      const response = await core.handle(req)
      return respond(c, req, response)
    } catch (err) {
      const apiErr = toApiError(err, core.logger)
      return c.json({ errors: apiErr.errors }, apiErr.status as 400)
    }
  })

  app.notFound((c) => c.json({ errors: [] }, 404))
  app.onError((err, c) => {
    const apiErr = toApiError(err, core.logger)
    return c.json({ errors: apiErr.errors }, apiErr.status as 400)
  })
  return app
}

async function toLogicalRequest(
  c: Context,
  id: string,
  maxBodyBytes: number,
  maxPathLength: number,
): Promise<LogicalRequest> {
  const url = new URL(c.req.url)
  // The URL parser resolves `.`/`..` segments: check the request target as the client sent it.
  const target = (c.env as { incoming?: { url?: string } } | undefined)?.incoming?.url
  const rawPath = target !== undefined ? target.split('?')[0]! : url.pathname
  if (!rawPath.startsWith('/v1/')) throw new ApiError(404)
  let path: string
  try {
    path = decodeURIComponent(rawPath.slice('/v1/'.length))
  } catch {
    throw new ApiError(400, 'invalid path encoding')
  }
  if (path.length > maxPathLength) throw new ApiError(400, 'path is too long')
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\0-\x1f\x7f]/.test(path)) throw new ApiError(400, 'path contains control characters')
  if (path.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ApiError(400, 'path must not contain "." or ".." segments')
  }

  const query: Record<string, string> = {}
  for (const [k, v] of url.searchParams) query[k] = v
  const method = c.req.method.toUpperCase()
  let operation: Operation
  switch (method) {
    case 'GET':
    case 'HEAD':
      operation = 'read'
      if (query.list !== undefined) {
        if (TRUE_VALUES.has(query.list)) operation = 'list'
        else if (!FALSE_VALUES.has(query.list)) throw new ApiError(400, 'invalid value for "list"')
      }
      break
    case 'LIST':
      operation = 'list'
      break
    case 'POST':
    case 'PUT':
      operation = 'update'
      break
    case 'PATCH':
      operation = 'patch'
      if (!(c.req.header('content-type') ?? '').includes('application/merge-patch+json')) {
        throw new ApiError(415, 'PATCH requires Content-Type: application/merge-patch+json')
      }
      break
    case 'DELETE':
      operation = 'delete'
      break
    default:
      throw new ApiError(405, 'unsupported operation')
  }
  if (operation === 'list' && !path.endsWith('/')) path = `${path}/`

  const headers: Record<string, string> = {}
  c.req.raw.headers.forEach((value, key) => {
    headers[key] = value
  })
  const namespace = headers['x-vault-namespace']
  if (namespace && !['root', 'root/', '/'].includes(namespace.trim())) {
    throw new ApiError(400, 'namespaces are not supported: only the root namespace exists')
  }
  if (headers['x-vault-wrap-ttl']) {
    throw new ApiError(400, 'response wrapping is not supported by this server')
  }

  let data: Record<string, unknown> = {}
  if (operation === 'read' || operation === 'list' || operation === 'delete') {
    for (const [k, v] of Object.entries(query)) if (k !== 'list') data[k] = v
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const body = await readBody(c, maxBodyBytes)
    if (body.length > 0) data = { ...data, ...parseBody(body, headers['content-type'] ?? '') }
  }

  let clientToken = headers['x-vault-token']
  if (!clientToken) {
    const auth = headers.authorization
    if (auth && /^Bearer\s+/i.test(auth)) clientToken = auth.replace(/^Bearer\s+/i, '').trim()
  }
  const incoming = (
    c.env as { incoming?: { socket?: { remoteAddress?: string; remotePort?: number } } }
  )?.incoming
  return {
    id,
    operation,
    path,
    data,
    query,
    headers,
    clientToken: clientToken || undefined,
    remoteAddress: (incoming?.socket?.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
    remotePort: incoming?.socket?.remotePort,
  }
}

async function readBody(c: Context, maxBodyBytes: number): Promise<string> {
  const declared = Number(c.req.header('content-length') ?? '0')
  if (declared > maxBodyBytes) throw new ApiError(413, 'request body too large')
  const stream = c.req.raw.body
  if (!stream) return ''
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBodyBytes) {
      await reader.cancel().catch(() => {})
      throw new ApiError(413, 'request body too large')
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseBody(text: string, contentType: string): Record<string, unknown> {
  const trimmed = text.trimStart()
  if (
    contentType.includes('application/x-www-form-urlencoded') &&
    !trimmed.startsWith('{') &&
    !trimmed.startsWith('[')
  ) {
    return Object.fromEntries(new URLSearchParams(text))
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ApiError(400, 'failed to parse JSON input')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ApiError(400, 'request body must be a JSON object')
  }
  return parsed as Record<string, unknown>
}

function respond(c: Context, req: LogicalRequest, response: LogicalResponse | null): Response {
  const isHead = c.req.method === 'HEAD'
  if (response?.raw) {
    const headers = { 'Content-Type': response.raw.contentType }
    const status = (response.raw.status ?? 200) as 200
    return isHead ? c.body(null, status, headers) : c.body(response.raw.body, status, headers)
  }
  if (response?.body !== undefined) {
    const status = (response.status ?? 200) as 200
    // 204/205/304 (e.g. sys/health?activecode=204) must not carry a body.
    const noBody = isHead || [204, 205, 304].includes(status)
    return noBody ? c.body(null, status) : c.json(response.body as object, status)
  }
  const hasContent =
    response &&
    (response.data != null || response.auth || response.secret || response.warnings?.length)
  if (!hasContent) return c.body(null, (response?.status ?? 204) as 204)
  const body = envelope(req, response)
  const status = (response.status ?? 200) as 200
  return isHead ? c.body(null, status) : c.json(body, status)
}
