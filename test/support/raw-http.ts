import net from 'node:net'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'

/** One HTTP/1.1 response as it came off the wire. */
export interface RawReply {
  status: number
  /** Header names in lower case. */
  headers: Record<string, string>
  body: string
  /** The body parsed as JSON (`null` when empty). */
  json(): any
}

/**
 * A client that writes exact bytes to a listener (plain or TLS) and parses the responses that come
 * back, so a test controls how a request is split into reads and how requests are pipelined.
 */
export interface RawClient {
  /**
   * Writes the bytes in one write, then pauses (default 40 ms) so that the server reads them on
   * their own, apart from what is written next.
   */
  send(data: string | Buffer, pauseMs?: number): Promise<void>
  /** Sends every byte in its own write. */
  sendBytewise(data: string): Promise<void>
  /**
   * The next `count` responses, in order. Rejects, quoting what arrived, when the connection closes
   * or 5 s pass first. `head[i]` marks the i-th of them as the answer to a HEAD (no body follows).
   */
  replies(count: number, head?: boolean[]): Promise<RawReply[]>
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>
  close(): void
}

/** Opens a connection to `address` (`http://` or `https://`; `ca` trusts a self-signed cert). */
export async function connectRaw(address: string, ca?: Buffer): Promise<RawClient> {
  const url = new URL(address)
  const port = Number(url.port)
  const socket: net.Socket = await new Promise((resolve, reject) => {
    const s =
      url.protocol === 'https:'
        ? tls.connect({ host: url.hostname, port, ca }, () => resolve(s))
        : net.connect(port, url.hostname, () => resolve(s))
    s.once('error', reject)
  })
  socket.setNoDelay(true)
  let received = Buffer.alloc(0)
  let taken = 0
  const heads: boolean[] = []
  let ended = false
  let onChange: () => void = () => {}
  const closed = new Promise<void>((resolve) => {
    const done = () => {
      ended = true
      onChange()
      resolve()
    }
    socket.once('close', done)
  })
  socket.on('error', () => {})
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    onChange()
  })

  const send = async (data: string | Buffer, pauseMs = 40): Promise<void> => {
    await new Promise<void>((resolve, reject) =>
      socket.write(data, (err) => (err ? reject(err) : resolve())),
    )
    await sleep(pauseMs)
  }

  return {
    send,
    async sendBytewise(data) {
      for (const byte of Buffer.from(data)) await send(Buffer.from([byte]), 2)
    },
    replies(count, head = []) {
      head.forEach((isHead, i) => (heads[taken + i] = isHead))
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => fail('no complete answer within 5 s'), 5000)
        const fail = (why: string) => {
          clearTimeout(timer)
          onChange = () => {}
          reject(new Error(`${why}; received: ${JSON.stringify(received.toString('latin1'))}`))
        }
        onChange = () => {
          const parsed = parseResponses(received, taken + count, heads)
          if (parsed.length >= taken + count) {
            clearTimeout(timer)
            onChange = () => {}
            const out = parsed.slice(taken, taken + count)
            taken += count
            resolve(out)
          } else if (ended) {
            fail(`connection closed after ${parsed.length - taken} of ${count} answers`)
          }
        }
        onChange()
      })
    },
    closed,
    close: () => socket.destroy(),
  }
}

/** The first `want` complete responses in `data`; `heads[i]` marks the i-th as a HEAD answer. */
function parseResponses(data: Buffer, want: number, heads: boolean[]): RawReply[] {
  const out: RawReply[] = []
  let pos = 0
  while (out.length < want) {
    const end = data.indexOf('\r\n\r\n', pos)
    if (end === -1) break
    const lines = data.subarray(pos, end).toString('latin1').split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    let bodyStart = end + 4
    if (status >= 100 && status < 200) {
      pos = bodyStart
      continue
    }
    const isHead = heads[out.length] === true
    let body: Buffer = Buffer.alloc(0)
    if (!isHead && status !== 204 && status !== 304) {
      if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
        const parts: Buffer[] = []
        for (;;) {
          const lineEnd = data.indexOf('\r\n', bodyStart)
          if (lineEnd === -1) return out
          const size = parseInt(data.subarray(bodyStart, lineEnd).toString('latin1'), 16)
          if (data.length < lineEnd + 2 + size + 2) return out
          parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
          bodyStart = lineEnd + 2 + size + 2
          if (size === 0) break
        }
        body = Buffer.concat(parts)
      } else {
        const length = Number(headers['content-length'] ?? '0')
        if (data.length < bodyStart + length) break
        body = data.subarray(bodyStart, bodyStart + length)
        bodyStart += length
      }
    }
    const text = body.toString('utf8')
    out.push({ status, headers, body: text, json: () => (text ? JSON.parse(text) : null) })
    pos = bodyStart
  }
  return out
}
