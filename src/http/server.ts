import http from 'node:http'
import https from 'node:https'
import net, { type Socket } from 'node:net'
import { ApiError } from '../core/errors.js'
import type { ApiHandler, RawRequest } from './api.js'
import { createListRewriter } from './list-method.js'

const kLists = Symbol('stint.lists')
const kPending = Symbol('stint.pending')
const kRefusal = Symbol('stint.refusal')

const socketOn = net.Socket.prototype.on as (
  this: Socket,
  event: 'data',
  listener: (chunk: Buffer) => void,
) => Socket

type TaggedSocket = Socket & {
  /** Per request line the parser has yet to turn into a request, in order: was it a LIST? */
  [kLists]?: boolean[]
  /** Responses started and not yet finished. */
  [kPending]?: number
  /** The answer to a malformed request, held until the responses before it are written. */
  [kRefusal]?: string
  _handle?: { _consumed?: boolean } | null
  parser?: { incoming?: http.IncomingMessage | null } | null
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
 * Serves the /v1 API handler over HTTP(S); any other path is a 404 in Vault's shape.
 *
 * Vault clients send the custom `LIST` method, which Node's HTTP parser refuses. Each connection's
 * decrypted bytes pass through {@link createListRewriter} before the parser: a `LIST` request line
 * at a request boundary becomes `LOCK`, and that request is restored to `LIST` before the
 * handler sees it. A real `LOCK` request stays `LOCK` and gets a 405.
 */
export async function listen(api: ApiHandler, options: ListenOptions): Promise<RunningServer> {
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key })
    : http.createServer()
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  server.requestTimeout = 90_000

  // Before Node's connection listener: makes Node feed its parser from 'data' events (in
  // JavaScript) instead of reading the socket natively. For TLS these are the decrypted bytes.
  const beforeNode = (socket: TaggedSocket) => {
    if (socket._handle) socket._handle._consumed = true
  }
  // After it: Node's 'data' listener (the parser's input) now receives the rewritten stream.
  const afterNode = (socket: TaggedSocket) => {
    const [feedParser, ...others] = socket.listeners('data') as Array<(chunk: Buffer) => void>
    if (!feedParser || others.length > 0) return // not the Node this was written for: LIST is a 405
    const lists: boolean[] = []
    socket[kLists] = lists
    const rewriter = createListRewriter((isList) => lists.push(isList))
    socket.removeListener('data', feedParser)
    // Node's own `on` would switch the parser to another input mode; the plain one does not.
    socketOn.call(socket, 'data', (chunk: Buffer) => {
      const bytes = rewriter.write(chunk)
      if (bytes.length > 0) feedParser.call(socket, bytes)
    })
  }
  const connectionEvent = options.tls ? 'secureConnection' : 'connection'
  server.prependListener(connectionEvent, beforeNode)
  server.on(connectionEvent, afterNode)

  // Responses still being written; on close they end their keep-alive connection.
  const inFlight = new Set<http.ServerResponse>()
  let closing = false
  const track = (req: http.IncomingMessage, res: http.ServerResponse): TaggedSocket => {
    const socket = req.socket as TaggedSocket
    // Every request the parser completes consumes one entry, in order, whatever answers it.
    if (socket[kLists]?.shift() && req.method === 'LOCK') req.method = 'LIST'
    socket[kPending] = (socket[kPending] ?? 0) + 1
    res.once('finish', () => {
      socket[kPending] = socket[kPending]! - 1
      const refusal = socket[kRefusal]
      if (socket[kPending] === 0 && refusal !== undefined) socket.end(refusal)
    })
    return socket
  }
  server.on('request', (req, res) => {
    track(req, res)
    inFlight.add(res)
    if (closing) res.setHeader('Connection', 'close')
    res.once('close', () => inFlight.delete(res))
    if (req.url?.startsWith('/v1/')) void serveApi(api, req, res)
    else {
      req.resume()
      sendJson(res, 404, '{"errors":[]}')
    }
  })
  // Requests Node answers without a 'request' event (an `Expect` other than 100-continue).
  server.on('checkExpectation', (req, res) => {
    track(req, res)
    sendJson(res, 417, '{"errors":["unsupported Expect header"]}')
  })

  // Requests Node's parser refuses never reach the app: answer them in Vault's shape too (an
  // unknown method is a 405, as Vault's router gives; anything else malformed is a 400). The
  // answer goes after those of the requests pipelined before it, then the connection closes.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: TaggedSocket) => {
    if (socket[kRefusal] !== undefined) return
    // Broken inside a request's body: that request can never complete, so nothing can answer.
    const unfinished = socket.parser?.incoming && !socket.parser.incoming.complete
    if (err.code === 'ECONNRESET' || !socket.writable || unfinished) {
      socket.destroy()
      return
    }
    const [status, reason, body] =
      err.code === 'HPE_INVALID_METHOD'
        ? [405, 'Method Not Allowed', '{"errors":[]}']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'Request Header Fields Too Large', '{"errors":["request headers too large"]}']
          : [400, 'Bad Request', '{"errors":["malformed HTTP request"]}']
    socket[kRefusal] =
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
    if (!socket[kPending]) socket.end(socket[kRefusal])
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

function sendJson(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
  })
  res.end(body)
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
