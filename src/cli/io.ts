import { homedir } from 'node:os'
import { createInterface, type Interface } from 'node:readline'
import type { Readable } from 'node:stream'

/** Where command output goes: `process.stdout`, or a buffer in tests. */
export interface Writer {
  write(chunk: string): unknown
}

/** Standard input as the CLI needs it; `isTTY`/`setRawMode` exist only on terminals. */
export type Input = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown }

/**
 * Everything a command touches outside itself. `main` passes the process's streams, environment
 * and home directory; tests pass buffers, a fake environment and a temporary home.
 */
export interface CliIo {
  env: Record<string, string | undefined>
  stdout: Writer
  stderr: Writer
  stdin: Input
  /** Directory holding `.stint-token`. */
  home: string
}

/** The real process's streams, environment and home directory. */
export function processIo(): CliIo {
  return {
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin as Input,
    home: homedir(),
  }
}

const lineReaders = new WeakMap<Input, { rl: Interface; it: AsyncIterator<string> }>()

/** Reads one line from a non-terminal stdin (several calls read successive lines). */
export async function readLine(stdin: Input): Promise<string> {
  let reader = lineReaders.get(stdin)
  if (!reader) {
    const rl = createInterface({ input: stdin, crlfDelay: Infinity, terminal: false })
    reader = { rl, it: rl[Symbol.asyncIterator]() }
    lineReaders.set(stdin, reader)
  }
  const next = await reader.it.next()
  return next.done ? '' : next.value
}

/** Reads all of stdin as text (for `write path -`). */
export async function readAll(stdin: Input): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk))
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * Asks for a secret. On a terminal the prompt goes to stderr and typed characters are not echoed;
 * otherwise one line is read from stdin, so scripts can pipe the value in.
 */
export async function promptSecret(io: CliIo, prompt: string): Promise<string> {
  const { stdin } = io
  if (!stdin.isTTY || !stdin.setRawMode) return (await readLine(stdin)).replace(/\r$/, '')
  io.stderr.write(prompt)
  const setRawMode = stdin.setRawMode.bind(stdin)
  return new Promise((resolve, reject) => {
    let value = ''
    const finish = (err?: Error) => {
      stdin.off('data', onData)
      setRawMode(false)
      stdin.pause()
      io.stderr.write('\n')
      if (err) reject(err)
      else resolve(value)
    }
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish()
        if (ch === '\u0003') return finish(new Error('interrupted'))
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else value += ch
      }
    }
    setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
  })
}
