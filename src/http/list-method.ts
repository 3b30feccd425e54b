/**
 * Vault clients send the custom `LIST` method, which Node's HTTP parser (llhttp) does not know:
 * `http.METHODS` has no `LIST`, and no parser option adds one. So the bytes a connection receives
 * pass through a rewriter before the parser: at each request boundary, a request line that starts
 * with `LIST ` becomes `LOCK ` (same length), and the listener turns that request back into a
 * `LIST`. A real `LOCK` stays a `LOCK` (and gets a 405).
 *
 * The rewriter follows HTTP/1.1 framing as the parser does: request line, header lines, then a
 * body of `Content-Length` bytes or a chunked body with its trailers. Only bytes at a request
 * boundary are ever rewritten, so a body that contains `LIST /` reaches the handler verbatim,
 * however the stream is cut into reads or requests are pipelined. When a read ends inside a
 * possible `LIST ` (say `LI`), those bytes are held back until the next read decides.
 *
 * On framing it does not understand (a malformed length, an overlong line) it stops rewriting and
 * passes bytes through unchanged: the parser refuses such a request too, and the connection ends.
 */
export interface ListRewriter {
  /**
   * Takes the next bytes read from the connection and returns the bytes to hand to the parser
   * (possibly fewer: a partial `LIST ` is held back). May rewrite `chunk` in place.
   */
  write(chunk: Buffer): Buffer
}

/**
 * One rewriter per connection. `onRequest` is called once per request line, in stream order,
 * with whether it was a `LIST` (rewritten to `LOCK`).
 */
export function createListRewriter(onRequest: (isList: boolean) => void): ListRewriter {
  let state: State = 'boundary'
  let held: Buffer | undefined
  // The line being read, when it spans reads (header and chunk-size lines).
  let pending: Buffer[] = []
  let pendingBytes = 0
  let remaining = 0
  let contentLength: number | undefined
  let transferEncoding: string | undefined
  let lastHeader: 'length' | 'encoding' | 'other' = 'other'

  /** The next complete line from `buf` at `at`, or undefined (kept in `pending`) if it has none. */
  const takeLine = (buf: Buffer, at: number): { line: Buffer; next: number } | undefined => {
    const lf = buf.indexOf(LF, at)
    if (lf === -1) {
      pendingBytes += buf.length - at
      if (pendingBytes > MAX_LINE_BYTES) state = 'passthrough'
      else pending.push(Buffer.from(buf.subarray(at)))
      return undefined
    }
    let line = buf.subarray(at, lf)
    if (pending.length > 0) {
      line = Buffer.concat([...pending, line])
      pending = []
      pendingBytes = 0
    }
    if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1)
    return { line, next: lf + 1 }
  }

  /** A header line of the request head: notes the framing headers. */
  const headerLine = (line: Buffer): void => {
    if (line[0] === SP || line[0] === HT) {
      // A folded continuation of a framing header would change the framing: refuse to guess.
      if (lastHeader !== 'other') state = 'passthrough'
      return
    }
    const colon = line.indexOf(COLON)
    // Only two names matter; most lines are told apart by the length of their name.
    if (colon !== 14 && colon !== 17) {
      lastHeader = 'other'
      return
    }
    const name = line.subarray(0, colon).toString('latin1').toLowerCase()
    const value = line
      .subarray(colon + 1)
      .toString('latin1')
      .trim()
    if (name === 'content-length') {
      lastHeader = 'length'
      if (!DIGITS.test(value) || (contentLength !== undefined && contentLength !== Number(value))) {
        state = 'passthrough'
      } else contentLength = Number(value)
    } else if (name === 'transfer-encoding') {
      lastHeader = 'encoding'
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`
    } else lastHeader = 'other'
  }

  /** After the blank line that ends a head (request or trailers). */
  const endOfHead = (): State => {
    if (transferEncoding !== undefined) {
      const codings = transferEncoding.split(',')
      const last = codings[codings.length - 1]!.trim().toLowerCase()
      // A request body must end with `chunked`, and may not also declare a length.
      if (last !== 'chunked' || contentLength !== undefined) return 'passthrough'
      return 'chunk-size'
    }
    if (contentLength !== undefined && contentLength > 0) {
      remaining = contentLength
      return 'body'
    }
    return 'boundary'
  }

  const resetRequest = () => {
    contentLength = undefined
    transferEncoding = undefined
    lastHeader = 'other'
  }

  return {
    write(chunk) {
      let buf = chunk
      if (held) {
        buf = Buffer.concat([held, chunk])
        held = undefined
      }
      let at = 0
      while (at < buf.length && state !== 'passthrough') {
        switch (state) {
          case 'boundary': {
            // Blank lines before a request line are ignored, as the parser does.
            const byte = buf[at]
            if (byte === CR || byte === LF) {
              at++
              break
            }
            const available = Math.min(LIST.length, buf.length - at)
            let match = 0
            while (match < available && buf[at + match] === LIST[match]) match++
            if (match === available && available < LIST.length) {
              // `L`, `LI`, `LIS` or `LIST` so far: the next read decides.
              held = Buffer.from(buf.subarray(at))
              return buf.subarray(0, at)
            }
            const isList = match === LIST.length
            if (isList) STAND_IN.copy(buf, at)
            onRequest(isList)
            resetRequest()
            state = 'request-line'
            break
          }
          case 'request-line': {
            const taken = takeLine(buf, at)
            if (!taken) return buf
            at = taken.next
            state = 'headers'
            break
          }
          case 'headers':
          case 'trailers': {
            const taken = takeLine(buf, at)
            if (!taken) return buf
            at = taken.next
            if (taken.line.length > 0) {
              if (state === 'headers') headerLine(taken.line)
            } else state = state === 'headers' ? endOfHead() : 'boundary'
            break
          }
          case 'body':
          case 'chunk-data': {
            const step = Math.min(remaining, buf.length - at)
            remaining -= step
            at += step
            if (remaining === 0) state = state === 'body' ? 'boundary' : 'chunk-end'
            break
          }
          case 'chunk-size': {
            const taken = takeLine(buf, at)
            if (!taken) return buf
            at = taken.next
            const size = CHUNK_SIZE.exec(taken.line.toString('latin1'))
            if (!size) state = 'passthrough'
            else {
              remaining = parseInt(size[1]!, 16)
              if (!Number.isSafeInteger(remaining)) state = 'passthrough'
              else state = remaining === 0 ? 'trailers' : 'chunk-data'
            }
            break
          }
          case 'chunk-end': {
            // The CRLF after a chunk's data.
            const taken = takeLine(buf, at)
            if (!taken) return buf
            at = taken.next
            state = taken.line.length === 0 ? 'chunk-size' : 'passthrough'
            break
          }
        }
      }
      return buf
    },
  }
}

type State =
  | 'boundary'
  | 'request-line'
  | 'headers'
  | 'body'
  | 'chunk-size'
  | 'chunk-data'
  | 'chunk-end'
  | 'trailers'
  | 'passthrough'

const LIST = Buffer.from('LIST ')
const STAND_IN = Buffer.from('LOCK ')
const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HT = 0x09
const COLON = 0x3a
const DIGITS = /^\d+$/
const CHUNK_SIZE = /^([0-9a-fA-F]{1,15})[ \t]*(?:;.*)?$/
// Past Node's own header limit (16 KiB), so the parser refuses such a line before we would.
const MAX_LINE_BYTES = 64 * 1024
