/**
 * How deep policy text may nest before it is refused, unparsed. A Vault policy nests about 4 deep
 * (`path { allowed_parameters { key = [] } }`); the Go HCL parser overflows its stack near 5,000.
 */
export const MAX_POLICY_NESTING = 64

/**
 * Finds where policy text nests deeper than `maxDepth`, in one cheap pass that runs before any
 * parser sees the text. Returns `line L, column C: ...` for text to refuse, or undefined.
 *
 * The Go HCL parser recurses on brackets, braces and parentheses, on template strings and their
 * `${...}` and `%{...}` sequences (heredocs too), and on chains of `!`, `-`, `?` and `*` (splats):
 * 5,000 of them overflow its stack and kill the Go runtime. So outside strings and comments every
 * opener counts one level, and so does each such operator until a `,` or a line end in a body
 * finishes its expression. The scan follows hclsyntax's lexer (strings, escapes, heredoc markers,
 * comments) and refuses what it cannot follow the same way (a mismatched closer, a line break in
 * a quoted string, an unterminated block comment): those are syntax errors anyway, and refusing
 * them means the scan never counts less than the parser would nest. JSON text counts its
 * brackets outside strings (JSON.stringify overflows on deep values later on).
 */
export function policyNestingError(
  text: string,
  format: 'hcl' | 'json',
  maxDepth = MAX_POLICY_NESTING,
): string | undefined {
  try {
    if (format === 'json') scanJson(text, maxDepth)
    else scanHcl(text, maxDepth)
    return undefined
  } catch (err) {
    if (!(err instanceof NestingError)) throw err
    const before = text.slice(0, err.at)
    const line = before.split('\n').length
    const column = err.at - before.lastIndexOf('\n')
    return `line ${line}, column ${column}: ${err.message}`
  }
}

class NestingError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message)
  }
}

type Frame =
  /** The file's top level, or a `{`, `[` or `(` in an expression or body. */
  | { kind: 'code'; closer: '' | '}' | ']' | ')'; ops: number }
  /** Inside `${ ... }` or `%{ ... }`: code that a `}` ends. */
  | { kind: 'interp'; ops: number }
  | { kind: 'quoted'; ops: number }
  | { kind: 'heredoc'; marker: string; lineStart: boolean; ops: number }

const isIdentStart = (c: string) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_'
const isIdentPart = (c: string) => isIdentStart(c) || (c >= '0' && c <= '9') || c === '-'
const NUMBER = /\d(?:\d|\.|[eE][+-]?\d)*/y
// After `<<` or `<<-`: a run that could be a marker. Non-ASCII is refused (Unicode tables differ).
const MARKER_RUN = /[A-Za-z0-9_\-\u0080-\uffff]*/y
const SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu

function tooDeep(maxDepth: number, at: number): NestingError {
  return new NestingError(
    `nested more than ${maxDepth} levels deep (brackets, braces, templates and chained ` +
      `operators each count)`,
    at,
  )
}

function scanHcl(text: string, maxDepth: number): void {
  const stack: Frame[] = [{ kind: 'code', closer: '', ops: 0 }]
  // Levels in use: every frame but the top level, plus every frame's pending operators.
  let depth = 0
  const push = (frame: Frame, at: number) => {
    stack.push(frame)
    if (++depth > maxDepth) throw tooDeep(maxDepth, at)
  }
  const pop = () => {
    depth -= 1 + stack.pop()!.ops
  }
  const operator = (at: number) => {
    stack[stack.length - 1]!.ops++
    if (++depth > maxDepth) throw tooDeep(maxDepth, at)
  }
  const settle = (frame: Frame) => {
    depth -= frame.ops
    frame.ops = 0
  }
  const n = text.length
  let i = 0
  while (i < n) {
    const top = stack[stack.length - 1]!
    const c = text[i]!
    if (top.kind === 'quoted') {
      if (c === '"') {
        pop()
        i++
      } else if (c === '\\') {
        if (text[i + 1] === '\n' || text[i + 1] === '\r') {
          throw new NestingError('a quoted string must end on the line it starts', i)
        }
        i += 2
      } else if (c === '\n' || c === '\r') {
        throw new NestingError('a quoted string must end on the line it starts', i)
      } else if ((c === '$' || c === '%') && text[i + 1] === '{') {
        if (c === '%') operator(i)
        push({ kind: 'interp', ops: 0 }, i)
        i += 2
      } else if ((c === '$' || c === '%') && text[i + 1] === c && text[i + 2] === '{') {
        i += 3 // `$${` and `%%{` are literal
      } else {
        i++
      }
      continue
    }
    if (top.kind === 'heredoc') {
      if (top.lineStart) {
        const end = text.indexOf('\n', i)
        const line = end === -1 ? '' : text.slice(i, end)
        if (end !== -1 && !/[$%]/.test(line) && line.replace(SPACE, '') === top.marker) {
          pop()
          i = end // the line break ends the attribute, as after any value
          continue
        }
      }
      top.lineStart = false
      if (c === '\n') {
        top.lineStart = true
        i++
      } else if (c === '\r' && text[i + 1] !== '\n') {
        throw new NestingError('a heredoc may not hold a lone carriage return', i)
      } else if ((c === '$' || c === '%') && text[i + 1] === '{') {
        if (c === '%') operator(i)
        push({ kind: 'interp', ops: 0 }, i)
        i += 2
      } else if ((c === '$' || c === '%') && text[i + 1] === c && text[i + 2] === '{') {
        i += 3
      } else {
        i++
      }
      continue
    }
    // Code: the top level, a body, an expression, or inside an interpolation.
    if (isIdentStart(c)) {
      i++
      while (i < n && isIdentPart(text[i]!)) i++
    } else if (c >= '0' && c <= '9') {
      NUMBER.lastIndex = i
      NUMBER.exec(text)
      i = NUMBER.lastIndex
      if (text[i - 1] === '.') i--
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      const end = text.indexOf('\n', i)
      i = end === -1 ? n : end
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      if (end === -1) throw new NestingError('unterminated /* comment', i)
      i = end + 2
    } else if (c === '"') {
      push({ kind: 'quoted', ops: 0 }, i)
      i++
    } else if (c === '<' && text[i + 1] === '<') {
      const dash = text[i + 2] === '-' ? 1 : 0
      MARKER_RUN.lastIndex = i + 2 + dash
      const marker = MARKER_RUN.exec(text)![0]
      const after = i + 2 + dash + marker.length
      const newline = text[after] === '\n' ? 1 : text.startsWith('\r\n', after) ? 2 : 0
      if (/[^ -~]/.test(marker)) {
        throw new NestingError('a heredoc marker must be ASCII letters, digits, _ and -', i)
      }
      if (marker !== '' && isIdentStart(marker[0]!) && newline > 0) {
        push({ kind: 'heredoc', marker, lineStart: true, ops: 0 }, i)
        i = after + newline
      } else {
        i += 2
      }
    } else if (c === '{' || c === '[' || c === '(') {
      push({ kind: 'code', closer: c === '{' ? '}' : c === '[' ? ']' : ')', ops: 0 }, i)
      i++
    } else if (c === '}' || c === ']' || c === ')') {
      const closes = top.kind === 'interp' ? c === '}' : top.closer === c
      if (!closes) throw new NestingError(`unexpected "${c}"`, i)
      const chained = c === ']' && top.ops > 0
      pop()
      // `a[*][*]...` chains like `.*`: a splat (or any operator) in [ ] counts outside it too.
      if (chained) operator(i)
      i++
    } else if (c === '!' || c === '?' || c === '*' || c === '-') {
      operator(i)
      i++
    } else if (c === ',') {
      // An item ends here: operators before it no longer nest.
      settle(top)
      i++
    } else if (c === '\n') {
      // So does an attribute or object item at a line end; not inside [ ], ( ) or ${ }.
      if (top.kind === 'code' && (top.closer === '' || top.closer === '}')) settle(top)
      i++
    } else {
      i++
    }
  }
}

function scanJson(text: string, maxDepth: number): void {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++
    } else if (c === '{' || c === '[') {
      if (++depth > maxDepth) throw tooDeep(maxDepth, i)
    } else if (c === '}' || c === ']') {
      depth = Math.max(0, depth - 1)
    }
  }
}
