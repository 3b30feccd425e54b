import { createRequire } from 'node:module'
import { parse as parseOnThisThread } from '@cdktf/hcl2json'
import { Worker } from 'node:worker_threads'

/**
 * HCL → hcl2json's object form, parsed on a worker thread.
 *
 * `@cdktf/hcl2json` is Go compiled to WebAssembly and runs synchronously: about 80 µs per
 * `path` block, so a policy of a few thousand rules would hold the event loop for seconds, and
 * every request on the node with it (seen: 21 s for a 10 MB policy, again when a token first
 * used it). One lazily started worker parses instead; the main thread only waits. The worker is
 * unreferenced while idle, so it never keeps the process alive, and a crashed worker is replaced
 * on the next call. Where a worker cannot start, parsing falls back to the calling thread.
 */
export function parseHclOffThread(file: string, text: string): Promise<unknown> {
  return (parser ??= createParser()).parse(file, text)
}

let parser: { parse(file: string, text: string): Promise<unknown> } | undefined

const MODULE = '@cdktf/hcl2json'

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { parse } = require(workerData.module)
parentPort.on('message', ({ id, file, text }) => {
  parse(file, text).then(
    (value) => parentPort.postMessage({ id, ok: true, value }),
    (err) => parentPort.postMessage({ id, ok: false, message: err instanceof Error ? err.message : String(err) }),
  )
})
`

interface Pending {
  resolve(value: unknown): void
  reject(err: Error): void
}

function createParser() {
  const modulePath = createRequire(import.meta.url).resolve(MODULE)
  let current: { worker: Worker; pending: Map<number, Pending> } | undefined
  let nextId = 0

  const start = () => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: modulePath } })
    const pending = new Map<number, Pending>()
    const self = { worker, pending }
    worker.unref()
    worker.on('message', (m: { id: number; ok: boolean; value?: unknown; message?: string }) => {
      const waiting = pending.get(m.id)
      if (!waiting) return
      pending.delete(m.id)
      if (pending.size === 0) worker.unref()
      if (m.ok) waiting.resolve(m.value)
      else waiting.reject(new Error(m.message ?? 'HCL parse failed'))
    })
    // A dead worker fails only its own requests; the next call starts a new one.
    const fail = (err: Error) => {
      if (current === self) current = undefined
      for (const waiting of pending.values()) waiting.reject(err)
      pending.clear()
    }
    worker.on('error', fail)
    worker.on('exit', () => fail(new Error('the HCL parser stopped')))
    return self
  }

  return {
    async parse(file: string, text: string): Promise<unknown> {
      try {
        current ??= start()
      } catch {
        return parseOnThisThread(file, text)
      }
      const { worker, pending } = current
      const id = nextId++
      return new Promise<unknown>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        worker.ref()
        worker.postMessage({ id, file, text })
      })
    },
  }
}
