import { describe, expect, it } from 'vitest'
import { DEFAULT_POLICY_TEXT } from '../../src/core/policy/default-policy.js'
import { MAX_POLICY_NESTING, policyNestingError } from '../../src/core/policy/nesting.js'
import { parsePolicy } from '../../src/core/policy/parse.js'

// Issue 12 item 6: policy text nested thousands deep killed the Go HCL parser for the whole
// process. The nesting check runs before the parser; each shape below hides deep nesting behind
// something the check must read the way hclsyntax's lexer does (strings, comments, heredocs).

const deep = (n = 5_000) => `${'['.repeat(n)}${']'.repeat(n)}`
const evasions: [string, string][] = [
  ['closers inside a string', `x = ["${']'.repeat(100)}", ${deep()}]\n`],
  ['closers inside a # comment', `# ${']'.repeat(100)}\nx = ${deep()}\n`],
  ['closers inside a // comment', `// ${']'.repeat(100)}\nx = ${deep()}\n`],
  ['closers inside a /* */ comment', `/* ${']'.repeat(100)} */ x = ${deep()}\n`],
  ['an escaped quote', `x = "\\"${']'.repeat(100)}"\ny = ${deep()}\n`],
  ['a literal $${ in a string', `x = "$\${${']'.repeat(100)}"\ny = ${deep()}\n`],
  ['a literal %%{ in a string', `x = "%%{${']'.repeat(100)}"\ny = ${deep()}\n`],
  ['closers in a heredoc', `x = <<EOT\n${']'.repeat(100)}\nEOT\ny = ${deep()}\n`],
  ['an indented heredoc', `x = <<-EOT\n  ${']'.repeat(100)}\n  EOT\ny = ${deep()}\n`],
  ['a CRLF heredoc', `x = <<EOT\r\n${']'.repeat(100)}\r\nEOT\r\ny = ${deep()}\r\n`],
  ['an interpolation in a heredoc', `x = <<EOT\n\${${deep()}}\nEOT\n`],
  ['an interpolation in a string', `x = "\${${deep()}}"\n`],
  ['strings nested in interpolations', `x = ${'"${'.repeat(5_000)}1${'}"'.repeat(5_000)}\n`],
  ['a string in an interpolation with a }', `x = "\${"}"}" y = ${deep()}\n`],
  ['a chain of !', `x = ${'!'.repeat(50_000)}true\n`],
  ['a chain of unary minus after a number', `x = 1${'-'.repeat(50_000)}1\n`],
  ['a chain of unary minus in a list', `x = [${'-'.repeat(50_000)}1]\n`],
  ['a chain of conditionals', `x = ${'true ? 1 : '.repeat(20_000)}2\n`],
  ['a chain of [*] splats', `x = a${'[*]'.repeat(20_000)}\n`],
  ['a chain of .* splats', `x = a${'.*'.repeat(20_000)}\n`],
  [
    'nested template directives',
    `x = "${'%{if true}'.repeat(5_000)}${'%{endif}'.repeat(5_000)}"\n`,
  ],
  ['nested blocks', `${'a {\n'.repeat(5_000)}${'}\n'.repeat(5_000)}`],
  ['unclosed openers', `x = ${'('.repeat(5_000)}`],
]

describe('policy nesting check', () => {
  for (const [name, text] of evasions) {
    it(`refuses deep nesting behind ${name}`, () => {
      expect(policyNestingError(text, 'hcl')).toMatch(
        /^line \d+, column \d+: nested more than 64 levels deep/,
      )
    })
  }

  it('refuses what it cannot read the way the parser does', () => {
    expect(policyNestingError('x = [)\n', 'hcl')).toBe('line 1, column 6: unexpected ")"')
    expect(policyNestingError('x = 1 }\n', 'hcl')).toBe('line 1, column 7: unexpected "}"')
    expect(policyNestingError('x = "a\nb"\n', 'hcl')).toMatch(/must end on the line it starts/)
    expect(policyNestingError('x = 1 /* [[[\n', 'hcl')).toMatch(/unterminated \/\* comment/)
    expect(policyNestingError('x = <<ÉOT\nabc\nÉOT\n', 'hcl')).toMatch(/heredoc marker/)
  })

  it('allows exactly the limit and refuses one more', () => {
    const lists = (n: number) => `x = ${'['.repeat(n)}${']'.repeat(n)}\n`
    expect(policyNestingError(lists(MAX_POLICY_NESTING), 'hcl')).toBeUndefined()
    expect(policyNestingError(lists(MAX_POLICY_NESTING + 1), 'hcl')).toBe(
      `line 1, column ${5 + MAX_POLICY_NESTING}: nested more than 64 levels deep ` +
        '(brackets, braces, templates and chained operators each count)',
    )
  })

  it('counts operators only until their item ends, so many short ones pass', () => {
    const negatives = `x = [${Array.from({ length: 500 }, (_, i) => `-${i}`).join(', ')}]\n`
    expect(policyNestingError(negatives, 'hcl')).toBeUndefined()
    const lines = Array.from({ length: 500 }, (_, i) => `a${i} = !true`).join('\n')
    expect(policyNestingError(lines, 'hcl')).toBeUndefined()
    expect(policyNestingError('min-chars = 1\nrule-name--x = 2\n', 'hcl')).toBeUndefined()
  })

  it('passes real policies, which parse as before', async () => {
    const texts = [
      DEFAULT_POLICY_TEXT,
      `
# Comments may hold anything: ] } ) " [[[
path "secret/data/{{identity.entity.id}}/*" {
  capabilities = ["create", "read", "update"] // also ]]]
  /* and ]]] here */
  allowed_parameters = {
    "ttl" = ["1h", "2h"]
    "*"   = []
  }
  comment = <<EOT
A heredoc with ] and } and "quotes" and $\${literal}.
  EOT
}
path "sys/policies/acl/*" {
  capabilities = ["read"]
  control_group = <<-EOT
    indented: ]]]
    EOT
}
`,
    ]
    for (const text of texts) {
      expect(policyNestingError(text, 'hcl')).toBeUndefined()
      const policy = await parsePolicy('real', text)
      expect(policy.rules.length).toBeGreaterThan(0)
    }
  })

  it('counts JSON brackets outside strings only', () => {
    const inString = JSON.stringify({ path: { x: { capabilities: ['read'], c: '['.repeat(500) } } })
    expect(policyNestingError(inString, 'json')).toBeUndefined()
    const deepJson = `{"path": {"x": {"capabilities": ${deep(100_000)}}}}`
    expect(policyNestingError(deepJson, 'json')).toMatch(/nested more than 64 levels deep/)
  })

  it('refuses deep JSON policies with a 400 (JSON.stringify used to overflow on them: a 500)', async () => {
    const text = `{"path": {"x": {"capabilities": [${deep(100_000)}]}}}`
    await expect(parsePolicy('j', text)).rejects.toMatchObject({
      status: 400,
      errors: [expect.stringMatching(/^failed to parse policy: line 1, column \d+: nested more/)],
    })
  })
})
