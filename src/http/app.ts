import { Hono, type Context } from 'hono'
import { ApiError } from '../core/errors.js'
import { toApiError, type Core } from '../core/core.js'
import { createApiHandler, type ApiHandler, type ApiOptions, type RawRequest } from './api.js'

export type AppOptions = ApiOptions

const apiHandlers = new WeakMap<Hono, ApiHandler>()

/** The /v1 handler behind an app made by {@link createApp} (the Node listener calls it directly). */
export function apiHandlerOf(app: Hono): ApiHandler | undefined {
  return apiHandlers.get(app)
}

/**
 * The HTTP API as a Hono app: `/v1/<path>` requests go through {@link createApiHandler}; anything
 * else is a 404 in Vault's shape. `app.request()` (tests, tools) and `app.fetch` work as with any
 * Hono app; `listen()` serves /v1 from Node's request objects without the WHATWG conversion.
 */
export function createApp(core: Core, options: AppOptions = {}): Hono {
  const api = createApiHandler(core, options)
  const app = new Hono()

  app.all('/v1/*', async function handleV1(c) {
    const out = await api(fromContext(c))
    return out.body === null
      ? c.body(null, out.status as 200, out.headers)
      : c.body(out.body, out.status as 200, out.headers)
  })

  app.notFound((c) => c.json({ errors: [] }, 404))
  app.onError((err, c) => {
    const apiErr = toApiError(err, core.logger)
    return c.json({ errors: apiErr.errors }, apiErr.status as 400)
  })
  apiHandlers.set(app, api)
  return app
}

type NodeEnv = {
  incoming?: { url?: string; socket?: { remoteAddress?: string; remotePort?: number } }
}

function fromContext(c: Context): RawRequest {
  const incoming = (c.env as NodeEnv | undefined)?.incoming
  const url = new URL(c.req.url)
  const headers: Record<string, string> = {}
  c.req.raw.headers.forEach((value, key) => {
    headers[key] = value
  })
  return {
    method: c.req.method.toUpperCase(),
    target: incoming?.url ?? `${url.pathname}${url.search}`,
    headers,
    readBody: (maxBytes) => readStream(c.req.raw.body, maxBytes),
    remoteAddress: incoming?.socket?.remoteAddress,
    remotePort: incoming?.socket?.remotePort,
  }
}

async function readStream(stream: ReadableStream<Uint8Array> | null, max: number): Promise<string> {
  if (!stream) return ''
  const reader = stream.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > max) {
      await reader.cancel().catch(() => {})
      throw new ApiError(413, 'request body too large')
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
