/**
 * Lays out policy text the way `vault policy fmt` (hclwrite) does, without changing what it says:
 * comments, block order, legacy `policy = "..."` and every value are kept as written. Only the
 * layout changes:
 *
 * - lines are indented two spaces per open `{`, `[` or `(` (a line starting with closers is
 *   dedented), and trailing whitespace is trimmed;
 * - `key = value` lines get one space either side of `=`, and consecutive attribute lines at the
 *   same depth have their `=` aligned;
 * - runs of blank lines become one, leading and trailing blank lines go, and the text ends with
 *   one newline.
 *
 * Quoted strings (with `\"` escapes and `${...}` templates), `#`, `//` and `/* *\/` comments and
 * heredocs (`<<EOT`, `<<-EOT`) are never looked into for brackets; the lines of a heredoc body or
 * of a multi-line block comment are copied unchanged. The result is stable: formatting it again
 * gives the same text.
 */
export function formatPolicyText(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n')
  const scanner = new Scanner()
  const out: OutLine[] = []
  for (const line of lines) {
    if (!scanner.atLineStartIsCode()) {
      // Inside a heredoc or a block comment: copied as is.
      out.push({ text: line, verbatim: true })
      scanner.scanLine(line)
      continue
    }
    const body = line.trim()
    const depth = scanner.depth
    const closers = /^[}\])]+/.exec(body)?.[0].length ?? 0
    const end = scanner.scanLine(body)
    const level = Math.max(0, depth - closers)
    const attribute = ATTRIBUTE.exec(body)
    if (body === '') {
      out.push({ text: '', verbatim: false, blank: true })
    } else if (end.inComment) {
      // The line ends inside a block comment: what follows the opener is comment text, kept.
      out.push({ text: line.trimStart(), verbatim: false, level, keepTrailing: true })
    } else if (attribute) {
      const [, key, rest] = attribute as unknown as [string, string, string]
      out.push({ text: body, verbatim: false, level, key, rest })
    } else {
      out.push({ text: body, verbatim: false, level })
    }
  }
  alignAttributes(out)
  const rendered: string[] = []
  for (const line of out) {
    if (line.verbatim) {
      rendered.push(line.text)
      continue
    }
    if (line.blank) {
      const previous = rendered[rendered.length - 1]
      if (previous !== undefined && previous !== '') rendered.push('')
      continue
    }
    const indent = '  '.repeat(line.level ?? 0)
    const content =
      line.key !== undefined
        ? `${line.key.padEnd(line.width ?? line.key.length)} =${line.rest ? ` ${line.rest}` : ''}`
        : line.text
    rendered.push(line.keepTrailing ? indent + content : (indent + content).trimEnd())
  }
  while (rendered.length > 0 && rendered[rendered.length - 1] === '') rendered.pop()
  return rendered.length === 0 ? '' : `${rendered.join('\n')}\n`
}

/** `key = rest` at the start of a line: an identifier or a quoted string, then `=` (not `==`, `=>`). */
const ATTRIBUTE = /^([A-Za-z_][\w-]*|"(?:[^"\\]|\\.)*")[ \t]*=(?![=>])[ \t]*(.*)$/

interface OutLine {
  text: string
  /** Copied unchanged (heredoc body, block comment continuation). */
  verbatim: boolean
  blank?: boolean
  level?: number
  /** For `key = value` lines: the key, the value as written, and the aligned key width. */
  key?: string
  rest?: string
  width?: number
  /** The line ends inside a block comment: its trailing whitespace is comment text. */
  keepTrailing?: boolean
}

/** Aligns `=` within runs of consecutive attribute lines at the same indentation level. */
function alignAttributes(lines: OutLine[]): void {
  let run: OutLine[] = []
  const close = () => {
    const width = Math.max(0, ...run.map((l) => l.key!.length))
    for (const l of run) l.width = width
    run = []
  }
  for (const line of lines) {
    if (line.key !== undefined && (run.length === 0 || run[0]!.level === line.level)) {
      run.push(line)
      continue
    }
    close()
    if (line.key !== undefined) run.push(line)
  }
  close()
}

type Mode =
  | { kind: 'string' }
  | { kind: 'template'; braces: number }
  | { kind: 'block-comment' }
  | { kind: 'heredoc'; marker: string }

/**
 * Follows HCL's lexical structure line by line: bracket depth outside strings and comments, and
 * whether the next line starts inside a heredoc or a block comment.
 */
class Scanner {
  depth = 0
  private stack: Mode[] = []
  private pendingHeredoc: string | undefined

  /** True when the next line starts in code (not in a heredoc body or a block comment). */
  atLineStartIsCode(): boolean {
    const top = this.stack[this.stack.length - 1]
    return top?.kind !== 'heredoc' && top?.kind !== 'block-comment'
  }

  /** Scans one line; reports whether it ends inside a block comment. */
  scanLine(line: string): { inComment: boolean } {
    const top = this.stack[this.stack.length - 1]
    if (top?.kind === 'heredoc') {
      if (line.trim() === top.marker) this.stack.pop()
      return { inComment: false }
    }
    let i = 0
    while (i < line.length) {
      const mode = this.stack[this.stack.length - 1]
      const ch = line[i]!
      const two = line.slice(i, i + 2)
      if (mode?.kind === 'block-comment') {
        if (two === '*/') {
          this.stack.pop()
          i += 2
        } else i++
        continue
      }
      if (mode?.kind === 'string') {
        if (ch === '\\') i += 2
        else if (ch === '"') {
          this.stack.pop()
          i++
        } else if (line.startsWith('$${', i) || line.startsWith('%%{', i)) i += 3
        else if (line.startsWith('${', i) || line.startsWith('%{', i)) {
          this.stack.push({ kind: 'template', braces: 0 })
          i += 2
        } else i++
        continue
      }
      // Code: the top level, or a `${...}` template inside a string.
      if (ch === '#' || two === '//') break
      if (two === '/*') {
        this.stack.push({ kind: 'block-comment' })
        i += 2
        continue
      }
      if (ch === '"') {
        this.stack.push({ kind: 'string' })
        i++
        continue
      }
      if (mode?.kind !== 'template') {
        const heredoc = /^<<-?([A-Za-z_][\w-]*)[ \t]*$/.exec(line.slice(i))
        if (heredoc) {
          this.pendingHeredoc = heredoc[1]
          break
        }
      }
      if (mode?.kind === 'template') {
        if (ch === '{') mode.braces++
        else if (ch === '}') {
          if (mode.braces === 0) this.stack.pop()
          else mode.braces--
        }
      } else if (ch === '{' || ch === '[' || ch === '(') this.depth++
      else if (ch === '}' || ch === ']' || ch === ')') this.depth = Math.max(0, this.depth - 1)
      i++
    }
    // Quoted strings end with their line (HCL has no multi-line quoted strings).
    while (this.stack.length > 0) {
      const kind = this.stack[this.stack.length - 1]!.kind
      if (kind !== 'string' && kind !== 'template') break
      this.stack.pop()
    }
    const inComment = this.stack[this.stack.length - 1]?.kind === 'block-comment'
    if (this.pendingHeredoc !== undefined) {
      this.stack.push({ kind: 'heredoc', marker: this.pendingHeredoc })
      this.pendingHeredoc = undefined
    }
    return { inComment }
  }
}
