import { createHash, randomInt, randomUUID } from 'node:crypto'

/**
 * A small evaluator for the subset of Go's text/template that Vault's `username_template` uses:
 * text with `{{ ... }}` actions; pipelines (`a | f 8`); parenthesised sub-pipelines; string and
 * number literals; the fields `.DisplayName` and `.RoleName`; and the functions printf, truncate,
 * truncate_sha256, random, unix_time, unix_time_millis, timestamp, lowercase, uppercase, replace,
 * sha256, base64 and uuid. Anything else is refused when the template is compiled.
 *
 * @example
 * compileUsernameTemplate('{{ printf "v-%s-%s" (.RoleName | truncate 8) (random 20) | truncate 32 }}')
 *   ({ DisplayName: 'token', RoleName: 'readonly' }) // → 'v-readonly-Ab3...'
 */
export type UsernameTemplate = (input: { DisplayName: string; RoleName: string }) => string

export class TemplateError extends Error {
  override readonly name = 'TemplateError'
}

type Node =
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'field'; name: 'DisplayName' | 'RoleName' }
  | { kind: 'call'; fn: string; args: Node[] }
  | { kind: 'pipeline'; commands: Node[] }

type Value = string | number

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

const FUNCTIONS: Record<string, { min: number; max: number; run: (args: Value[]) => Value }> = {
  printf: { min: 1, max: 16, run: ([format, ...rest]) => printf(str(format), rest) },
  truncate: { min: 2, max: 2, run: ([n, s]) => str(s).slice(0, int(n)) },
  truncate_sha256: {
    min: 2,
    max: 2,
    run: ([n, s]) => {
      const text = str(s)
      const max = int(n)
      if (text.length <= max) return text
      if (max <= 8) throw new TemplateError('truncate_sha256 needs a length above 8')
      return text.slice(0, max - 8) + sha256(text).slice(0, 8)
    },
  },
  random: {
    min: 1,
    max: 1,
    run: ([n]) => {
      const len = int(n)
      if (len < 1 || len > 128) throw new TemplateError('random needs a length from 1 to 128')
      let out = ''
      for (let i = 0; i < len; i++) out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]
      return out
    },
  },
  unix_time: { min: 0, max: 0, run: () => Math.floor(Date.now() / 1000) },
  unix_time_millis: { min: 0, max: 0, run: () => Date.now() },
  timestamp: { min: 1, max: 1, run: ([layout]) => goTimestamp(str(layout), new Date()) },
  lowercase: { min: 1, max: 1, run: ([s]) => str(s).toLowerCase() },
  uppercase: { min: 1, max: 1, run: ([s]) => str(s).toUpperCase() },
  replace: { min: 3, max: 3, run: ([from, to, s]) => str(s).split(str(from)).join(str(to)) },
  sha256: { min: 1, max: 1, run: ([s]) => sha256(str(s)) },
  base64: { min: 1, max: 1, run: ([s]) => Buffer.from(str(s)).toString('base64') },
  uuid: { min: 0, max: 0, run: () => randomUUID() },
}

/** Parses a template once; the returned function renders it (fresh randomness each call). */
export function compileUsernameTemplate(template: string): UsernameTemplate {
  if (template.length > 1024) throw new TemplateError('username_template is too long')
  const parts: Array<string | Node> = []
  let i = 0
  while (i < template.length) {
    const open = template.indexOf('{{', i)
    if (open === -1) {
      parts.push(template.slice(i))
      break
    }
    if (open > i) parts.push(template.slice(i, open))
    const close = template.indexOf('}}', open + 2)
    if (close === -1) throw new TemplateError('username_template has an unclosed {{')
    parts.push(parseAction(template.slice(open + 2, close)))
    i = close + 2
  }
  return (input) =>
    parts.map((p) => (typeof p === 'string' ? p : String(evaluate(p, input)))).join('')
}

function parseAction(source: string): Node {
  const tokens = tokenize(source.replace(/^-\s/, '').replace(/\s-$/, ''))
  let pos = 0
  const peek = () => tokens[pos]
  const next = () => tokens[pos++]

  const parsePipeline = (): Node => {
    const commands = [parseCommand()]
    while (peek() === '|') {
      next()
      commands.push(parseCommand())
    }
    return commands.length === 1 ? commands[0]! : { kind: 'pipeline', commands }
  }
  const parseCommand = (): Node => {
    const head = peek()
    if (head !== undefined && isIdentifier(head)) {
      next()
      const args: Node[] = []
      while (peek() !== undefined && peek() !== '|' && peek() !== ')') args.push(parseOperand())
      return call(head, args)
    }
    const operand = parseOperand()
    if (peek() !== undefined && peek() !== '|' && peek() !== ')') {
      throw new TemplateError('username_template: unexpected value after an operand')
    }
    return operand
  }
  const parseOperand = (): Node => {
    const token = next()
    if (token === undefined) throw new TemplateError('username_template: incomplete expression')
    if (token === '(') {
      const inner = parsePipeline()
      if (next() !== ')') throw new TemplateError('username_template: missing )')
      return inner
    }
    if (token.startsWith('"')) return { kind: 'string', value: JSON.parse(token) as string }
    if (token.startsWith('`')) return { kind: 'string', value: token.slice(1, -1) }
    if (/^-?\d+$/.test(token)) return { kind: 'number', value: Number(token) }
    if (token === '.DisplayName' || token === '.RoleName') {
      return { kind: 'field', name: token.slice(1) as 'DisplayName' | 'RoleName' }
    }
    if (isIdentifier(token)) return call(token, [])
    throw new TemplateError(
      `username_template: unsupported term ${JSON.stringify(token.slice(0, 40))}`,
    )
  }

  const node = parsePipeline()
  if (pos !== tokens.length) throw new TemplateError('username_template: unexpected trailing input')
  return node
}

function call(fn: string, args: Node[]): Node {
  const def = FUNCTIONS[fn]
  if (!def)
    throw new TemplateError(
      `username_template: unknown function ${JSON.stringify(fn.slice(0, 40))}`,
    )
  return { kind: 'call', fn, args }
}

function tokenize(source: string): string[] {
  const tokens: string[] = []
  const re = /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|([()|])|(\.[A-Za-z_]\w*)|(-?\d+)|([A-Za-z_]\w*))/y
  let index = 0
  while (index < source.length) {
    if (/^\s*$/.test(source.slice(index))) break
    re.lastIndex = index
    const m = re.exec(source)
    if (!m) throw new TemplateError('username_template: cannot parse an action')
    tokens.push((m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5] ?? m[6])!)
    index = re.lastIndex
  }
  return tokens
}

const isIdentifier = (token: string) => /^[A-Za-z_]\w*$/.test(token)

function evaluate(
  node: Node,
  input: { DisplayName: string; RoleName: string },
  piped?: Value,
): Value {
  switch (node.kind) {
    case 'string':
    case 'number':
      return node.value
    case 'field':
      return input[node.name]
    case 'pipeline': {
      let value: Value | undefined
      for (const command of node.commands) value = evaluate(command, input, value)
      return value!
    }
    case 'call': {
      const def = FUNCTIONS[node.fn]!
      const args = node.args.map((a) => evaluate(a, input))
      if (piped !== undefined) args.push(piped)
      if (args.length < def.min || args.length > def.max) {
        throw new TemplateError(`username_template: wrong number of arguments for ${node.fn}`)
      }
      return def.run(args)
    }
  }
}

function str(v: Value | undefined): string {
  if (typeof v !== 'string') throw new TemplateError('username_template: expected a string')
  return v
}

function int(v: Value | undefined): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new TemplateError('username_template: expected a non-negative integer')
  }
  return v
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

function printf(format: string, args: Value[]): string {
  let index = 0
  return format.replace(/%([sdv%])/g, (_, verb: string) => {
    if (verb === '%') return '%'
    if (index >= args.length) return '%!' + verb + '(MISSING)'
    return String(args[index++])
  })
}

/** Go reference-time layouts: 2006 01 02 15 04 05 (enough for Vault's documented examples). */
function goTimestamp(layout: string, at: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0')
  const parts: Record<string, string> = {
    '2006': String(at.getUTCFullYear()),
    '01': pad(at.getUTCMonth() + 1),
    '02': pad(at.getUTCDate()),
    '15': pad(at.getUTCHours()),
    '04': pad(at.getUTCMinutes()),
    '05': pad(at.getUTCSeconds()),
  }
  return layout.replace(/2006|01|02|15|04|05/g, (token) => parts[token]!)
}
