import { ApiError } from '../core/errors.js'
import { newRequestId, toApiError, type Core } from '../core/core.js'
import type { Logger } from '../core/logger.js'
import type { LogicalRequest, LogicalResponse, Operation } from '../core/request.js'
import type { FinishedRequest } from '../observability/request-observer.js'
import { envelope } from './envelope.js'

/**
 * The /v1 API without a web framework: an HTTP request as plain values in, status, headers and
 * body out. The Node listener (`server.ts`) calls it straight from `http.IncomingMessage`; tests
 * and tools call the very same function in process (`in-process.ts`): there is one HTTP path.
 */
export interface RawRequest {
  /** Upper-case method. */
  method: string
  /** The request target exactly as the client sent it (`/v1/<path>?<query>`). */
  target: string
  /** Header names in lower case. */
  headers: Record<string, string | undefined>
  /** The body as text; rejects with a 413 ApiError past `maxBytes`. */
  readBody(maxBytes: number): Promise<string>
  remoteAddress?: string
  remotePort?: number
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  /** `null` for no body (204, HEAD). */
  body: string | null
}

export interface ApiOptions {
  /** Largest accepted request body (Vault's default is 32 MiB). */
  maxBodyBytes?: number
  /** Longest accepted logical path. */
  maxPathLength?: number
}

export type ApiHandler = (raw: RawRequest) => Promise<RawResponse>

const TRUE_VALUES = new Set(['1', 't', 'true', 'TRUE', 'True'])
const FALSE_VALUES = new Set(['0', 'f', 'false', 'FALSE', 'False'])
const JSON_TYPE = 'application/json'
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const CONTROL_CHARS = /[\0-\x1f\x7f]/
const BEARER = /^Bearer\s+/i
/** Deepest accepted nesting of a JSON body (KV secrets allow 64 inside `data`). */
const MAX_JSON_DEPTH = 128
const QUOTE = 0x22 // "
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b // [
const CLOSE_ARRAY = 0x5d
const OPEN_OBJECT = 0x7b // {
const CLOSE_OBJECT = 0x7d

export interface ApiDeps {
  /** The request pipeline. */
  core: Pick<Core, 'handle'>
  logger: Logger
  /** Sees every finished request (metrics, the request log). */
  observe: (done: FinishedRequest) => void
}

/** Builds the /v1 handler: raw request → logical request → pipeline → Vault's envelope. */
export function createApiHandler(deps: ApiDeps, options: ApiOptions = {}): ApiHandler {
  const { core, logger, observe } = deps
  const { maxBodyBytes = 32 * 1024 * 1024, maxPathLength = 4096 } = options
  return async function handleApi(raw) {
    const started = performance.now()
    const requestId = newRequestId()
    let req: LogicalRequest | undefined
    let out: RawResponse
    try {
      req = await toLogicalRequest(raw, requestId, maxBodyBytes, maxPathLength)
      const response = await core.handle(req)
      out = render(raw.method, req, response)
    } catch (err) {
      const apiErr = toApiError(err, logger)
      out = json(apiErr.status, { errors: apiErr.errors })
    }
    out.headers['X-Request-Id'] = requestId
    observe({
      requestId,
      method: raw.method,
      status: out.status,
      durationSeconds: (performance.now() - started) / 1000,
      req,
    })
    return out
  }
}

async function toLogicalRequest(
  raw: RawRequest,
  id: string,
  maxBodyBytes: number,
  maxPathLength: number,
): Promise<LogicalRequest> {
  // Checked as the client sent it: a URL parser would resolve `.`/`..` segments first.
  const q = raw.target.indexOf('?')
  const rawPath = q === -1 ? raw.target : raw.target.slice(0, q)
  if (!rawPath.startsWith('/v1/')) throw new ApiError(404)
  let path = rawPath.slice('/v1/'.length)
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path)
    } catch {
      throw new ApiError(400, 'invalid path encoding')
    }
  }
  if (path.length > maxPathLength) throw new ApiError(400, 'path is too long')
  if (CONTROL_CHARS.test(path)) throw new ApiError(400, 'path contains control characters')
  if (path.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new ApiError(400, 'path must not contain "." or ".." segments')
  }

  const query: Record<string, string> = {}
  // A repeated parameter reaches the handler as a list, as in Vault: a field that wants one value
  // then refuses it (400) rather than silently using the last.
  const repeated: Record<string, string[]> = {}
  if (q !== -1) {
    for (const [k, v] of new URLSearchParams(raw.target.slice(q + 1))) {
      if (k in query) (repeated[k] ??= [query[k]!]).push(v)
      query[k] = v
    }
  }
  const { method, headers } = raw
  let operation: Operation
  switch (method) {
    case 'GET':
    case 'HEAD':
      operation = 'read'
      if (query.list !== undefined) {
        if (repeated.list) throw new ApiError(400, 'invalid value for "list"')
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
      if (!(headers['content-type'] ?? '').includes('application/merge-patch+json')) {
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

  const namespace = headers['x-vault-namespace']
  if (namespace && !['root', 'root/', '/'].includes(namespace.trim())) {
    throw new ApiError(400, 'namespaces are not supported: only the root namespace exists')
  }
  if (headers['x-vault-wrap-ttl']) {
    throw new ApiError(400, 'response wrapping is not supported by this server')
  }

  let data: Record<string, unknown> = {}
  if (q !== -1 && (operation === 'read' || operation === 'list' || operation === 'delete')) {
    for (const [k, v] of Object.entries(query)) if (k !== 'list') data[k] = repeated[k] ?? v
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const declared = Number(headers['content-length'] ?? '0')
    if (declared > maxBodyBytes) throw new ApiError(413, 'request body too large')
    const body = await raw.readBody(maxBodyBytes)
    if (body.length > 0) data = { ...data, ...parseBody(body, headers['content-type'] ?? '') }
  }

  let clientToken = headers['x-vault-token']
  if (!clientToken) {
    const auth = headers.authorization
    if (auth && BEARER.test(auth)) clientToken = auth.replace(BEARER, '').trim()
  }
  const remote = raw.remoteAddress ?? '127.0.0.1'
  return {
    id,
    operation,
    path,
    data,
    query,
    headers: headers as Record<string, string>,
    clientToken: clientToken || undefined,
    remoteAddress: remote.startsWith('::ffff:') ? remote.slice(7) : remote,
    remotePort: raw.remotePort,
    ...(method === 'HEAD' ? { head: true } : {}),
  }
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
  // Handlers, policy parsers and audit walk the data recursively: refuse deep nesting up front.
  if (nestedDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new ApiError(400, `JSON input is nested deeper than ${MAX_JSON_DEPTH} levels`)
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

/**
 * Whether a JSON text opens more than `max` arrays/objects at once, by one pass over its
 * characters (brackets inside strings do not count). Invalid JSON may give any answer: the
 * parser refuses it next.
 */
function nestedDeeperThan(text: string, max: number): boolean {
  if (text.length <= max) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === BACKSLASH) i++
      else if (c === QUOTE) inString = false
    } else if (c === QUOTE) inString = true
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--
  }
  return false
}

function json(status: number, body: unknown): RawResponse {
  return { status, headers: { 'Content-Type': JSON_TYPE }, body: JSON.stringify(body) }
}

function render(
  method: string,
  req: LogicalRequest,
  response: LogicalResponse | null,
): RawResponse {
  const isHead = method === 'HEAD'
  if (response?.raw) {
    const headers = { 'Content-Type': response.raw.contentType }
    return { status: response.raw.status ?? 200, headers, body: isHead ? null : response.raw.body }
  }
  if (response?.body !== undefined) {
    const status = response.status ?? 200
    // 204/205/304 (e.g. sys/health?activecode=204) must not carry a body.
    const noBody = isHead || status === 204 || status === 205 || status === 304
    return noBody ? { status, headers: {}, body: null } : json(status, response.body)
  }
  const hasContent =
    response &&
    (response.data != null || response.auth || response.secret || response.warnings?.length)
  if (!hasContent) return { status: response?.status ?? 204, headers: {}, body: null }
  const status = response.status ?? 200
  if (isHead) return { status, headers: {}, body: null }
  return json(status, envelope(req, response))
}
