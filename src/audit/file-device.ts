import { open, mkdir, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { badRequest } from '../core/errors.js'
import type { AuditDevice, DeviceOptions } from './device.js'

/** How much of an existing file is read back to find its last line. */
const TAIL_BYTES = 64 * 1024

/**
 * The `file` device: appends lines to `file_path` (alias `path`) created with `mode` (default
 * 0600). `stdout` writes to the process's standard output; `discard` drops lines (still counts as
 * recorded, as in Vault). Reopened by the broker on SIGHUP so external rotation works.
 */
export function createFileDevice(options: DeviceOptions): AuditDevice {
  const filePath = options.file_path ?? options.path
  if (!filePath) throw badRequest('file_path is required for a file audit device')
  const mode = parseMode(options.mode)
  if (options.format && options.format !== 'json')
    throw badRequest('only the json format is supported')
  if (filePath === 'discard') {
    return { open: async () => ({}), write: async () => {}, close: async () => {} }
  }
  if (filePath === 'stdout') {
    return {
      open: async () => ({}),
      write: (line) =>
        new Promise((resolve, reject) =>
          process.stdout.write(`${line}\n`, (err) => (err ? reject(err) : resolve())),
        ),
      close: async () => {},
    }
  }
  let handle: FileHandle | undefined
  return {
    async open() {
      await ensureDir(dirname(filePath))
      const h = await open(filePath, 'a+', mode)
      handle = h
      return { lastLine: await lastLine(h) }
    },
    async write(line) {
      if (!handle) throw new Error('audit file is not open')
      await handle.write(`${line}\n`)
    },
    async close() {
      const h = handle
      handle = undefined
      await h?.close()
    },
  }
}

function parseMode(value: string | undefined): number {
  if (value === undefined || value === '') return 0o600
  if (!/^0?[0-7]{3}$/.test(value)) throw badRequest('mode must be an octal file mode such as 0600')
  return parseInt(value, 8)
}

async function lastLine(handle: FileHandle): Promise<string | undefined> {
  const { size } = await handle.stat()
  if (size === 0) return undefined
  const length = Math.min(size, TAIL_BYTES)
  const buf = Buffer.alloc(length)
  await handle.read(buf, 0, length, size - length)
  const lines = buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0)
  return lines.at(-1)
}

/**
 * Creates missing parent directories one level at a time (mode 0700). Node's `recursive: true`
 * never settles for some paths (under /proc), which would hang the enabling request.
 */
async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = []
  for (let d = dir; ; d = dirname(d)) {
    const found = await stat(d).then(
      (s) => s,
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err
        return undefined
      },
    )
    if (found) {
      if (!found.isDirectory()) throw new Error(`${d} is not a directory`)
      break
    }
    missing.unshift(d)
    if (dirname(d) === d) break
  }
  for (const d of missing) await mkdir(d, { mode: 0o700 })
}
