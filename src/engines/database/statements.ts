import type { PluginDialect, Render } from '../../../plugins/contract.js'

/** The only placeholders a statement template may use. `name` and `username` are the same value. */
export const PLACEHOLDERS = ['name', 'username', 'password', 'expiration'] as const
export type Placeholder = (typeof PLACEHOLDERS)[number]

/** Values substituted into a statement. Generated values only, from a restricted alphabet. */
export type StatementValues = Partial<Record<Placeholder, string>>

type Segment =
  | { kind: 'text'; text: string }
  /** `dollar`: the value sits inside a PostgreSQL `$$ ... $$` body, where `$$` would end it. */
  | { kind: 'value'; name: Placeholder; quote: string; dollar: boolean }

/** One statement, split and checked: text plus placeholders that each sit inside quotes. */
export interface StatementTemplate {
  segments: Segment[]
}

/** A statement template is bad (unknown placeholder, placeholder outside quotes, open quote). */
export class StatementError extends Error {
  override readonly name = 'StatementError'
}

const PLACEHOLDER = /^\{\{\s*([A-Za-z_.]*)\s*\}\}/
const VALUE_ALPHABET: Record<Placeholder, RegExp> = {
  name: /^[A-Za-z0-9._-]+$/,
  username: /^[A-Za-z0-9._-]+$/,
  // Printable ASCII without ' " ` and \ (password policies may use the rest).
  password: /^[\x21\x23-\x26\x28-\x5b\x5d-\x5f\x61-\x7e]+$/,
  expiration: /^[0-9 :+.-]+$/,
}

/**
 * Splits statement strings on `;` (outside quotes, comments and `$$` bodies) and checks every
 * placeholder: it must be one of {{name}}, {{username}}, {{password}}, {{expiration}}, and it must
 * sit inside a string literal (`'...'`) or, for {{name}}/{{username}} only, a quoted identifier
 * (`"..."` on PostgreSQL, `` `...` `` on MySQL). So a value can only ever be a literal or an
 * identifier, never SQL. Messages name the field and the placeholder, never a value.
 */
export function parseStatements(
  statements: string[],
  dialect: PluginDialect,
  field: string,
): StatementTemplate[] {
  const out: StatementTemplate[] = []
  for (const text of statements) {
    for (const statement of splitStatement(text, dialect, field)) out.push(statement)
  }
  return out
}

function splitStatement(text: string, dialect: PluginDialect, field: string): StatementTemplate[] {
  const result: StatementTemplate[] = []
  let segments: Segment[] = []
  let buffer = ''
  let quote: string | undefined
  let inDollar = false
  const flushText = () => {
    if (buffer) segments.push({ kind: 'text', text: buffer })
    buffer = ''
  }
  const endStatement = () => {
    flushText()
    const hasContent = segments.some((s) => s.kind === 'value' || s.text.trim() !== '')
    if (hasContent) result.push({ segments: trimSegments(segments) })
    segments = []
  }
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (text.startsWith('{{', i)) {
      const m = PLACEHOLDER.exec(text.slice(i))
      const name = m?.[1]
      if (!m || !name) throw new StatementError(`${field}: malformed placeholder`)
      if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
        throw new StatementError(
          `${field}: unknown placeholder {{${name.slice(0, 40)}}}; allowed: {{name}}, {{username}}, {{password}}, {{expiration}}`,
        )
      }
      const placeholder = name as Placeholder
      if (quote === undefined) {
        throw new StatementError(
          `${field}: {{${placeholder}}} must be inside quotes ('...' or a quoted identifier)`,
        )
      }
      if (quote !== "'" && placeholder !== 'name' && placeholder !== 'username') {
        throw new StatementError(`${field}: {{${placeholder}}} may only appear inside '...'`)
      }
      flushText()
      segments.push({ kind: 'value', name: placeholder, quote, dollar: inDollar })
      i += m[0].length
      continue
    }
    if (quote !== undefined) {
      buffer += ch
      if (quote === "'" && dialect.backslashEscapes && ch === '\\' && i + 1 < text.length) {
        buffer += text[i + 1]
        i += 2
        continue
      }
      if (ch === quote) {
        if (text[i + 1] === quote) {
          buffer += quote
          i += 2
          continue
        }
        quote = undefined
      }
      i += 1
      continue
    }
    if (dialect.dollarQuoting && text.startsWith('$$', i)) {
      inDollar = !inDollar
      buffer += '$$'
      i += 2
      continue
    }
    if (ch === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i)
      const stop = end === -1 ? text.length : end
      buffer += text.slice(i, stop)
      i = stop
      continue
    }
    if (ch === "'" || dialect.identifierQuotes.includes(ch)) {
      quote = ch
      buffer += ch
      i += 1
      continue
    }
    if (ch === ';' && !inDollar) {
      endStatement()
      i += 1
      continue
    }
    buffer += ch
    i += 1
  }
  if (quote !== undefined) throw new StatementError(`${field}: unterminated quote`)
  if (inDollar) throw new StatementError(`${field}: unterminated $$ body`)
  endStatement()
  return result
}

function trimSegments(segments: Segment[]): Segment[] {
  const out = segments.map((s) => ({ ...s }))
  const first = out[0]
  if (first?.kind === 'text') first.text = first.text.trimStart()
  const last = out[out.length - 1]
  if (last?.kind === 'text') last.text = last.text.trimEnd()
  return out.filter((s) => s.kind === 'value' || s.text !== '')
}

/**
 * Renders parsed statements with the given values, escaping each for the quoting it sits in.
 * Values must come from Stint's generators; anything outside their alphabet is refused.
 */
export function renderStatements(
  templates: StatementTemplate[],
  values: StatementValues,
  dialect: PluginDialect,
): string[] {
  return templates.map((t) =>
    t.segments
      .map((s) => {
        if (s.kind === 'text') return s.text
        const value = values[s.name]
        if (value === undefined) {
          throw new StatementError(`{{${s.name}}} has no value in this statement`)
        }
        if (!VALUE_ALPHABET[s.name].test(value)) {
          throw new StatementError(`generated {{${s.name}}} has characters outside its alphabet`)
        }
        if (s.dollar && value.includes('$')) {
          throw new StatementError(
            `generated {{${s.name}}} contains '$', which could end the $$ body it sits in: use a password policy without '$'`,
          )
        }
        return escapeFor(value, s.quote, dialect)
      })
      .join(''),
  )
}

function escapeFor(value: string, quote: string, dialect: PluginDialect): string {
  let out = value.split(quote).join(quote + quote)
  if (quote === "'" && dialect.backslashEscapes) out = out.split('\\').join('\\\\')
  return out
}

/** A `Render` for one user, as plugins receive it (for their built-in default statements). */
export function renderer(values: StatementValues, dialect: PluginDialect): Render {
  return (templates) =>
    renderStatements(parseStatements(templates, dialect, 'statement'), values, dialect)
}

/**
 * `YYYY-MM-DD HH:MM:SS+0000` in UTC, the format Vault passes to {{expiration}}; PostgreSQL's
 * `VALID UNTIL` and MySQL's datetime parsing both accept it.
 */
export function formatExpiration(at: Date): string {
  const iso = at.toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+0000`
}
