import net from 'node:net'

/** One scenario for the load generator: a fixed request sent over keep-alive connections. */
export interface LoadOptions {
  /** `http://host:port` of the target. */
  address: string
  method: string
  path: string
  headers?: Record<string, string>
  body?: string
  /** Connections, each with one request in flight (default 32). */
  connections?: number
  /** Warm-up before measuring, not counted (ms). */
  warmupMs?: number
  /** Measured time (ms). */
  durationMs?: number
  /** Status every response must have; others count as errors. */
  expectStatus?: number
  /** Reads the target's CPU time (µs), sampled at the start and end of the measured window. */
  targetCpuUs?: () => Promise<number>
}

export interface LoadResult {
  requests: number
  errors: number
  seconds: number
  rps: number
  p50Ms: number
  p99Ms: number
  /** Target CPU time per request (µs), when `targetCpuUs` was given. */
  cpuUsPerRequest?: number
}

/**
 * A small HTTP/1.1 load generator on raw sockets: pre-built request bytes, minimal response
 * parsing, keep-alive, fixed concurrency. It costs far less CPU per request than `http.request`
 * or `fetch`, so on a small machine it saturates the server rather than itself.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { connections = 32, warmupMs = 1500, durationMs = 4000, expectStatus = 200 } = options
  const url = new URL(options.address)
  const body = options.body ?? ''
  const head = [
    `${options.method} ${options.path} HTTP/1.1`,
    `Host: ${url.host}`,
    'Connection: keep-alive',
    ...Object.entries(options.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ...(body ? [`Content-Length: ${Buffer.byteLength(body)}`] : []),
  ].join('\r\n')
  const request = Buffer.from(`${head}\r\n\r\n${body}`)

  let measuring = false
  let stopping = false
  let requests = 0
  let errors = 0
  const latencies: number[] = []

  const worker = () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname)
      socket.setNoDelay(true)
      let buffer: Buffer = Buffer.alloc(0)
      let sentAt = 0n
      const send = () => {
        if (stopping) {
          socket.end()
          resolve()
          return
        }
        sentAt = process.hrtime.bigint()
        socket.write(request)
      }
      socket.on('connect', send)
      socket.on('error', reject)
      socket.on('close', () =>
        stopping ? resolve() : reject(new Error('target closed a connection')),
      )
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk
        const parsed = parseResponse(buffer)
        if (!parsed) return
        buffer = buffer.subarray(parsed.length)
        if (measuring) {
          requests++
          if (parsed.status !== expectStatus) errors++
          latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6)
        }
        send()
      })
    })

  const workers = Array.from({ length: connections }, worker)
  // A failed connection fails the run, after the others have stopped.
  const failure = Promise.all(workers).then(
    () => undefined,
    (err: unknown) => err,
  )
  let cpuBefore: number | undefined
  let cpuAfter: number | undefined
  let seconds = 0
  try {
    await Promise.race([sleep(warmupMs), failure])
    cpuBefore = await options.targetCpuUs?.()
    measuring = true
    const started = process.hrtime.bigint()
    await Promise.race([sleep(durationMs), failure])
    measuring = false
    seconds = Number(process.hrtime.bigint() - started) / 1e9
    cpuAfter = await options.targetCpuUs?.()
  } finally {
    stopping = true
  }
  const error = await failure
  if (error) throw error
  latencies.sort((a, b) => a - b)
  const pick = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  const cpuUsPerRequest =
    cpuBefore !== undefined && cpuAfter !== undefined && requests > 0
      ? (cpuAfter - cpuBefore) / requests
      : undefined
  return {
    requests,
    errors,
    seconds,
    rps: requests / seconds,
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    cpuUsPerRequest,
  }
}

const HEADER_END = Buffer.from('\r\n\r\n')
const CHUNK_END = Buffer.from('\r\n0\r\n\r\n')

/** Status and byte length of the first complete response in `buf`, if there is one. */
function parseResponse(buf: Buffer): { status: number; length: number } | undefined {
  const end = buf.indexOf(HEADER_END)
  if (end === -1) return undefined
  const head = buf.subarray(0, end).toString('latin1')
  const status = Number(head.slice(9, 12))
  const lengthMatch = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  const bodyStart = end + 4
  if (lengthMatch) {
    const total = bodyStart + Number(lengthMatch[1])
    return buf.length >= total ? { status, length: total } : undefined
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const last = buf.indexOf(CHUNK_END, bodyStart - 2)
    return last === -1 ? undefined : { status, length: last + CHUNK_END.length }
  }
  return { status, length: bodyStart }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
