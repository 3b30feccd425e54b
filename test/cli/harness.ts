import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { run } from '../../src/cli/main.js'
import type { CliIo, Input } from '../../src/cli/io.js'

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export interface CliOptions {
  /** Server address (sets STINT_ADDR). */
  address?: string
  /** Extra environment variables. */
  env?: Record<string, string | undefined>
  /** Home directory holding `.stint-token` (default: a fresh temp dir per call). */
  home?: string
  /** Text piped to stdin, or a ready-made stream (e.g. a fake terminal). */
  stdin?: string | Input
}

/** Runs the CLI in-process with captured output, a fake environment and its own home. */
export async function cli(argv: string[], options: CliOptions = {}): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const stdin =
    typeof options.stdin === 'string' || options.stdin === undefined
      ? (Readable.from(options.stdin ? [Buffer.from(options.stdin)] : []) as Input)
      : options.stdin
  const io: CliIo = {
    env: { STINT_ADDR: options.address, ...options.env },
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    stdin,
    home: options.home ?? tempHome(),
  }
  const code = await run(argv, io)
  return { code, stdout, stderr }
}

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'stint-cli-home-'))
}

/**
 * A stdin that claims to be a terminal. Each time the CLI switches it to raw mode (a hidden
 * prompt), the next answer is "typed" followed by Enter. Records the raw-mode switches.
 */
export function fakeTerminal(answers: string[]): Input & { rawModes: boolean[] } {
  const stream = new PassThrough() as unknown as Input & { rawModes: boolean[] }
  const pending = [...answers]
  stream.isTTY = true
  stream.rawModes = []
  stream.setRawMode = (mode: boolean) => {
    stream.rawModes.push(mode)
    const answer = mode ? pending.shift() : undefined
    if (answer !== undefined) {
      setImmediate(() => (stream as unknown as PassThrough).write(`${answer}\r`))
    }
    return stream
  }
  return stream
}
