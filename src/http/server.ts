import http from 'node:http'
import https from 'node:https'
import type { Socket } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import type { Hono } from 'hono'
import { ApiError } from '../core/errors.js'
import { apiHandlerOf } from './app.js'
import type { ApiHandler, RawRequest } from './api.js'

const LIST_LINE = Buffer.from('LIST /')
const STAND_IN = Buffer.from('LOCK')
const kBusy = Symbol('stint.busy')
const kList = Symbol('stint.list')

type TaggedSocket = Socket & {
  [kBusy]?: boolean
  [kList]?: boolean
  _handle?: { _consumed?: boolean } | null
}

export interface ListenOptions {
  host: string
  port: number
  tls?: { cert: string | Buffer; key: string | Buffer }
}

export interface RunningServer {
  server: http.Server
  address: string
  /** Stops accepting connections and waits for in-flight requests (SIGTERM). */
  close(): Promise<void>
}

/**
 * Serves the app over HTTP(S).
 *
 * Vault clients send the custom `LIST` method, which Node's HTTP parser refuses. Each connection's
 * bytes are read in JavaScript first: a request line that starts with `LIST /` while the
 * connection is idle is rewritten in place to `LOCK /` (same length, so framing is untouched), and
 * the request is restored to `LIST` before the app sees it. A real `LOCK` request stays `LOCK`
 * and gets a 405.
 */
export async function listen(app: Hono, options: ListenOptions): Promise<RunningServer> {
  const listener = getRequestListener(app.fetch)
  // /v1 goes straight from Node's request objects to the API (no WHATWG Request/Response).
  const api = apiHandlerOf(app)
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key })
    : http.createServer()
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  server.requestTimeout = 90_000

  const onSocket = (socket: TaggedSocket) => {
    // Makes Node feed the parser through 'data' events, which we see first.
    if (socket._handle) socket._handle._consumed = true
    socket.prependListener('data', (chunk: Buffer) => {
      if (!socket[kBusy] && chunk.length >= 6 && chunk.subarray(0, 6).equals(LIST_LINE)) {
        STAND_IN.copy(chunk, 0)
        socket[kList] = true
      }
    })
  }
  if (options.tls) server.prependListener('secureConnection', onSocket)
  else server.prependListener('connection', onSocket)

  // Responses still being written; on close they end their keep-alive connection.
  const inFlight = new Set<http.ServerResponse>()
  let closing = false
  server.on('request', (req, res) => {
    const socket = req.socket as TaggedSocket
    socket[kBusy] = true
    inFlight.add(res)
    if (closing) res.setHeader('Connection', 'close')
    res.once('finish', () => {
      socket[kBusy] = false
    })
    res.once('close', () => inFlight.delete(res))
    if (socket[kList] && req.method === 'LOCK') req.method = 'LIST'
    socket[kList] = false
    if (api && req.url?.startsWith('/v1/')) void serveApi(api, req, res)
    else void listener(req, res)
  })

  // Requests Node's parser refuses never reach the app: answer them in Vault's shape too (an
  // unknown method is a 405, as Vault's router gives; anything else malformed is a 400).
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable || (socket as TaggedSocket)[kBusy]) {
      socket.destroy()
      return
    }
    const [status, reason, body] =
      err.code === 'HPE_INVALID_METHOD'
        ? [405, 'Method Not Allowed', '{"errors":[]}']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', '{"errors":["request headers too large"]}']
          : [400, 'Bad Request', '{"errors":["malformed HTTP request"]}']
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    )
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : options.port
  const scheme = options.tls ? 'https' : 'http'
  return {
    server,
    address: `${scheme}://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true
        for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close')
        server.close(() => resolve())
        server.closeIdleConnections()
      }),
  }
}

async function serveApi(
  api: ApiHandler,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  try {
    const out = await api(fromIncoming(req))
    // A known length: one write for head and body, no chunked framing.
    if (out.body !== null) out.headers['Content-Length'] = String(Buffer.byteLength(out.body))
    res.writeHead(out.status, out.headers)
    res.end(out.body ?? undefined)
  } catch {
    // The handler turns every error into a response; this is only a last resort.
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' })
    res.end('{"errors":["internal error"]}')
  }
}

function fromIncoming(req: http.IncomingMessage): RawRequest {
  const headers = req.headers as Record<string, string | string[] | undefined>
  for (const key in headers) {
    const value = headers[key]
    if (Array.isArray(value)) headers[key] = value.join(', ')
  }
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    headers: headers as Record<string, string | undefined>,
    readBody: (maxBytes) => readIncoming(req, maxBytes),
    remoteAddress: req.socket.remoteAddress,
    remotePort: req.socket.remotePort,
  }
}

function readIncoming(req: http.IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) {
        req.off('data', onData)
        req.resume()
        reject(new ApiError(413, 'request body too large'))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.once('error', reject)
  })
}
