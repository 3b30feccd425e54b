import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type * as Hcl2Json from '@cdktf/hcl2json'

/**
 * HCL → hcl2json's object form, parsed on a worker thread.
 *
 * `@cdktf/hcl2json` is Go compiled to WebAssembly and runs synchronously: about 80 µs per
 * `path` block, so a policy of a few thousand rules would hold the event loop for seconds, and
 * every request on the node with it (seen: 21 s for a 10 MB policy, again when a token first
 * used it). One lazily started worker parses instead, one text at a time; the main thread only
 * waits. The worker is unreferenced while idle, so it never keeps the process alive. Where a
 * worker cannot start, parsing falls back to the calling thread.
 *
 * The Go runtime does not survive everything: a stack overflow (text nested thousands deep) makes
 * it exit while the worker thread lives on, and every later call then fails with "Go program has
 * already exited". So a worker is stopped and replaced after any failure that is not an HCL
 * diagnostic, after any parse that runs past the timeout, and when it errors or exits; the texts
 * waiting behind it go to the new worker.
 *
 * Rejects with an `Error` carrying hcl2json's diagnostic (`parse config: [...]`), with
 * {@link HclParserCrashError} when this text broke the parser, or with
 * {@link HclParserUnavailableError} when the parser gave no answer (timeout, worker failure).
 */
export function parseHclOffThread(file: string, text: string): Promise<unknown> {
  return sharedParser().parse(file, text)
}

/** This text made the parser fail (not a syntax error): parsing it again fails again. */
export class HclParserCrashError extends Error {}

/** The parser gave no answer (it timed out or its worker failed); trying again may work. */
export class HclParserUnavailableError extends Error {}

export interface HclParserOptions {
  /** How long one parse may run before its worker is stopped and replaced. Default 10 s. */
  timeoutMs?: number
  /** How long a new worker may take to load the parser. Default 30 s. */
  startupTimeoutMs?: number
}

export interface HclParser {
  parse(file: string, text: string): Promise<unknown>
  /** Workers started so far: the first one plus every replacement. */
  workersStarted(): number
  /** Stops the worker; texts still waiting fail with {@link HclParserUnavailableError}. */
  close(): Promise<void>
}

/**
 * The default per-parse timeout. The largest ACL policy accepted (1 MiB, some 15,000 rules)
 * parses in 1-3 s on a small machine; a parse that takes this long is stuck or starved.
 */
export const DEFAULT_HCL_TIMEOUT_MS = 10_000

let shared: HclParser | undefined
const sharedOptions: HclParserOptions = {}
const sharedParser = () => (shared ??= createHclParser(sharedOptions))

/** Changes the timeouts of the process-wide parser that policies use (tests shorten them). */
export function configureHclParser(options: HclParserOptions): void {
  Object.assign(sharedOptions, options)
}

/** Workers the process-wide parser has started (it replaces one after a failure or timeout). */
export function hclWorkersStarted(): number {
  return shared?.workersStarted() ?? 0
}

const MODULE = '@cdktf/hcl2json'

/** The parser on this thread, when no worker can run: loaded only then. */
const parseOnThisThread = (file: string, text: string): Promise<unknown> =>
  (createRequire(import.meta.url)(MODULE) as typeof Hcl2Json).parse(file, text)

// A diagnostic from hcl2json starts with "parse config:"; anything else (a RangeError from a
// stack overflow, "Go program has already exited") means this runtime is done for.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { parse } = require(workerData.module)
parse('warm-up.hcl', '').then(
  () => parentPort.postMessage({ ready: true }),
  (err) => parentPort.postMessage({ ready: false, message: String(err && err.message || err) }),
)
parentPort.on('message', ({ id, file, text }) => {
  parse(file, text).then(
    (value) => parentPort.postMessage({ id, ok: true, value }),
    (err) => {
      const message = err instanceof Error ? err.message : String(err)
      const diagnostic = err instanceof Error && message.startsWith('parse config:')
      parentPort.postMessage({ id, ok: false, message, fatal: !diagnostic })
    },
  )
})
`

interface Job {
  id: number
  file: string
  text: string
  resolve(value: unknown): void
  reject(err: Error): void
}

interface Reply {
  id?: number
  ready?: boolean
  ok?: boolean
  value?: unknown
  message?: string
  fatal?: boolean
}

interface Running {
  worker: Worker
  ready: boolean
  /** The job being parsed, with its timer. */
  busy?: { job: Job; timer: NodeJS.Timeout }
  startTimer?: NodeJS.Timeout
}

/** A parser with its own worker (the process shares one, see {@link parseHclOffThread}). */
export function createHclParser(options: HclParserOptions = {}): HclParser {
  const modulePath = createRequire(import.meta.url).resolve(MODULE)
  const queue: Job[] = []
  let current: Running | undefined
  let started = 0
  let nextId = 0
  let fallback = false

  /** Stops a worker for good; its job (if any) fails with `err`. */
  const retire = (run: Running, err?: Error) => {
    if (current === run) current = undefined
    clearTimeout(run.startTimer)
    if (run.busy) {
      clearTimeout(run.busy.timer)
      run.busy.job.reject(err ?? new HclParserUnavailableError('the HCL parser stopped'))
      run.busy = undefined
    }
    run.worker.removeAllListeners()
    run.worker.on('error', () => {}) // an error while it winds down has no one left to tell
    void run.worker.terminate()
  }

  const failQueue = (err: Error) => {
    for (const job of queue.splice(0)) job.reject(err)
  }

  const start = (): Running => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: modulePath },
      // The Go runtime prints its crash (a goroutine dump) here: the caller reports the failure.
      stdout: true,
      stderr: true,
    })
    worker.stdout.resume()
    worker.stderr.resume()
    started++
    const run: Running = { worker, ready: false }
    run.startTimer = setTimeout(() => {
      retire(run)
      failQueue(new HclParserUnavailableError('the HCL parser did not start'))
    }, options.startupTimeoutMs ?? 30_000)
    run.startTimer.unref()
    worker.on('message', (m: Reply) => {
      if (m.ready !== undefined) {
        clearTimeout(run.startTimer)
        if (!m.ready) {
          retire(run)
          failQueue(new HclParserUnavailableError(`the HCL parser did not start: ${m.message}`))
          return
        }
        run.ready = true
        pump()
        return
      }
      const busy = run.busy
      if (!busy || busy.job.id !== m.id) return
      clearTimeout(busy.timer)
      run.busy = undefined
      if (m.ok) busy.job.resolve(m.value)
      else if (!m.fatal) busy.job.reject(new Error(m.message ?? 'HCL parse failed'))
      else {
        retire(run)
        busy.job.reject(
          new HclParserCrashError(`the HCL parser failed on this text (${m.message ?? 'unknown'})`),
        )
      }
      pump()
    })
    const died = (err: Error) => {
      if (current !== run) return
      const wasReady = run.ready
      retire(run, new HclParserUnavailableError(`the HCL parser stopped: ${err.message}`))
      // A worker that never came up would fail the same way again: give up on the queue.
      if (!wasReady) failQueue(new HclParserUnavailableError('the HCL parser did not start'))
      pump()
    }
    worker.on('error', died)
    worker.on('exit', (code) => died(new Error(`exit code ${code}`)))
    return run
  }

  /** Hands the next waiting text to the worker, starting one when there is none. */
  function pump(): void {
    if (queue.length === 0) {
      current?.worker.unref()
      return
    }
    if (!current) {
      try {
        current = start()
      } catch {
        fallback = true
        for (const job of queue.splice(0)) {
          parseOnThisThread(job.file, job.text).then(job.resolve, job.reject)
        }
        return
      }
    }
    const run = current
    run.worker.ref()
    if (!run.ready || run.busy) return
    const job = queue.shift()!
    const timeoutMs = options.timeoutMs ?? DEFAULT_HCL_TIMEOUT_MS
    const timer = setTimeout(() => {
      retire(
        run,
        new HclParserUnavailableError(
          `the HCL parser took longer than ${timeoutMs / 1000} s and was restarted`,
        ),
      )
      pump()
    }, timeoutMs)
    timer.unref()
    run.busy = { job, timer }
    run.worker.postMessage({ id: job.id, file: job.file, text: job.text })
  }

  return {
    parse(file, text) {
      if (fallback) return parseOnThisThread(file, text)
      return new Promise<unknown>((resolve, reject) => {
        queue.push({ id: nextId++, file, text, resolve, reject })
        pump()
      })
    },
    workersStarted: () => started,
    async close() {
      failQueue(new HclParserUnavailableError('the HCL parser was closed'))
      if (current) retire(current)
    },
  }
}
