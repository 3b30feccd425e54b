import { readFile } from 'node:fs/promises'
import { UsageError } from './args.js'
import { readAll, type CliIo } from './io.js'

/**
 * Turns `key=value` arguments into a request body, as `vault write` does:
 * `key=@file` reads the value from a file, `key=-` from stdin, and a lone `-` reads a JSON object
 * from stdin as the whole body.
 */
export async function parseDataArgs(io: CliIo, items: string[]): Promise<Record<string, unknown>> {
  if (items.length === 1 && items[0] === '-') {
    const text = await readAll(io.stdin)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new UsageError('Failed to parse JSON input from stdin')
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UsageError('JSON input from stdin must be an object')
    }
    return parsed as Record<string, unknown>
  }
  const data: Record<string, unknown> = {}
  let stdinUsed = false
  for (const item of items) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new UsageError(`Invalid key/value pair "${item}": expected key=value`)
    const key = item.slice(0, eq)
    let value = item.slice(eq + 1)
    if (value === '-') {
      if (stdinUsed) throw new UsageError('Only one value can be read from stdin')
      stdinUsed = true
      value = (await readAll(io.stdin)).replace(/\r?\n$/, '')
    } else if (value.startsWith('@')) {
      try {
        value = await readFile(value.slice(1), 'utf8')
      } catch {
        throw new UsageError(`Cannot read file "${value.slice(1)}" for key "${key}"`)
      }
    }
    data[key] = value
  }
  return data
}
