import { UsageError } from './args.js'
import type { CliIo } from './io.js'

export type Format = 'table' | 'json' | 'yaml'

/** A Vault response envelope as the CLI sees it (every field optional). */
export interface Envelope {
  lease_id?: string
  lease_duration?: number
  renewable?: boolean
  data?: Record<string, unknown> | null
  auth?: AuthBlock | null
  warnings?: string[] | null
  [key: string]: unknown
}

export interface AuthBlock {
  client_token?: string
  accessor?: string
  policies?: string[]
  token_policies?: string[]
  identity_policies?: string[]
  metadata?: Record<string, string> | null
  lease_duration?: number
  renewable?: boolean
}

/**
 * Prints command results in the chosen `-format`, or one raw value with `-field`.
 * Tables go to stdout; warnings and notices to stderr so scripts can parse stdout.
 */
export interface Output {
  readonly format: Format
  readonly field: string | undefined
  /** A line of human text (skipped for json/yaml, where only data is printed). */
  info(text: string): void
  /** Structured data: a Key/Value table, or the object itself as json/yaml. */
  keyValues(pairs: Array<[string, unknown]>, structured: unknown): void
  /** A column table (e.g. `secrets list`); json/yaml print `structured`. */
  columns(header: string[], rows: unknown[][], structured: unknown): void
  /** A list of keys (`Keys` / `----`). */
  keys(keys: string[], structured?: unknown): void
  /** A whole response envelope, as `vault read` prints it. `showToken` prints the auth token. */
  secret(envelope: Envelope, options?: { showToken?: boolean }): void
  /** Prints a value raw (the `-field` contract), failing if it is absent. */
  raw(value: unknown, name: string): void
  /** Prints warnings from the server to stderr. */
  warnings(warnings: unknown): void
}

/** An output for `format`; the YAML library loads only when `-format=yaml` asks for it. */
export async function createOutput(
  io: CliIo,
  format: string,
  field: string | undefined,
): Promise<Output> {
  if (format !== 'table' && format !== 'json' && format !== 'yaml') {
    throw new UsageError(`Invalid output format: ${format} (use table, json or yaml)`)
  }
  const yaml = format === 'yaml' ? await import('yaml') : undefined
  const out = (text: string) => io.stdout.write(text)
  const structured = (value: unknown) =>
    out(yaml ? yaml.stringify(value ?? null) : `${JSON.stringify(value ?? null, null, 2)}\n`)

  const output: Output = {
    format,
    field,
    info(text) {
      if (format === 'table') out(`${text}\n`)
    },
    keyValues(pairs, value) {
      if (field !== undefined) {
        const hit = pairs.find(([k]) => k === field)
        return output.raw(hit?.[1], field)
      }
      if (format !== 'table') return structured(value)
      out(
        renderTable(
          ['Key', 'Value'],
          pairs.map(([k, v]) => [k, formatValue(v)]),
        ),
      )
    },
    columns(header, rows, value) {
      if (format !== 'table') return structured(value)
      out(
        renderTable(
          header,
          rows.map((r) => r.map(formatValue)),
        ),
      )
    },
    keys(keys, value) {
      if (format !== 'table') return structured(value ?? keys)
      out(
        renderTable(
          ['Keys'],
          keys.map((k) => [k]),
        ),
      )
    },
    secret(envelope, options = {}) {
      if (field === undefined) output.warnings(envelope.warnings)
      const pairs = secretPairs(envelope, options.showToken ?? false)
      if (field !== undefined) {
        // The token is printed when explicitly asked for by name (`-field=token`).
        const all = options.showToken ? pairs : secretPairs(envelope, true)
        const hit = all.find(([k]) => k === field)
        return output.raw(hit?.[1], field)
      }
      // json/yaml print the envelope, minus the token unless it is the requested output.
      const shown =
        envelope.auth?.client_token && !options.showToken
          ? { ...envelope, auth: { ...envelope.auth, client_token: undefined } }
          : envelope
      output.keyValues(pairs, shown)
    },
    raw(value, name) {
      if (value === undefined) throw new FieldMissingError(name)
      const text =
        typeof value === 'string' ? value : yaml ? yaml.stringify(value) : JSON.stringify(value)
      const tty = (io.stdout as { isTTY?: boolean }).isTTY
      out(tty ? `${text}\n` : text)
    },
    warnings(warnings) {
      if (!Array.isArray(warnings) || warnings.length === 0) return
      io.stderr.write(
        `WARNING! The following warnings were returned from Stint:\n\n${warnings
          .map((w) => `  * ${String(w)}`)
          .join('\n')}\n\n`,
      )
    },
  }
  return output
}

/** `-field` named a field the response does not have. */
export class FieldMissingError extends Error {
  constructor(field: string) {
    super(`Field "${field}" not present in secret`)
  }
}

/** The rows `vault read` shows for a response: lease, auth, then data keys in order. */
export function secretPairs(envelope: Envelope, showToken: boolean): Array<[string, unknown]> {
  const pairs: Array<[string, unknown]> = []
  if (envelope.lease_id) pairs.push(['lease_id', envelope.lease_id])
  if (envelope.lease_duration && envelope.lease_id) {
    pairs.push(['lease_duration', humanDuration(envelope.lease_duration)])
    pairs.push(['lease_renewable', envelope.renewable ?? false])
  } else if (envelope.lease_duration) {
    // KV v1 reports a TTL without a lease: Vault calls it the refresh interval.
    pairs.push(['refresh_interval', humanDuration(envelope.lease_duration)])
  }
  const auth = envelope.auth
  if (auth) {
    if (showToken) pairs.push(['token', auth.client_token])
    pairs.push(['token_accessor', auth.accessor])
    pairs.push(['token_duration', auth.lease_duration ? humanDuration(auth.lease_duration) : '∞'])
    pairs.push(['token_renewable', auth.renewable ?? false])
    pairs.push(['token_policies', auth.token_policies ?? auth.policies ?? []])
    pairs.push(['identity_policies', auth.identity_policies ?? []])
    pairs.push(['policies', auth.policies ?? []])
    for (const [k, v] of Object.entries(auth.metadata ?? {}).sort())
      pairs.push([`token_meta_${k}`, v])
  }
  for (const [k, v] of Object.entries(envelope.data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    pairs.push([k, v])
  }
  return pairs
}

/** Aligned columns with a dashed rule under the header, like Vault's tables. */
export function renderTable(header: string[], rows: string[][]): string {
  const all = [header, header.map((h) => '-'.repeat(h.length)), ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  return (
    all
      .map((r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 4)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}

/** Values as Vault prints them in tables: lists `[a b]`, maps `map[k:v]`, null and `''` `n/a`. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined || value === '') return 'n/a'
  if (typeof value === 'string') return value
  if (Array.isArray(value)) return `[${value.map(formatValue).join(' ')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : 1,
    )
    return `map[${entries.map(([k, v]) => `${k}:${formatValue(v)}`).join(' ')}]`
  }
  return String(value)
}

/** Seconds as Go-style short durations: `768h`, `1h30m`, `45s`. */
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return '0s'
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s'
}
