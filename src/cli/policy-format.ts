import type { Policy, PolicyRule } from '../core/policy/parse.js'

/**
 * Prints a parsed policy as normalised HCL: one `path` block per rule, in the order written,
 * legacy `policy = "..."` expanded into `capabilities`, durations in seconds.
 */
export function formatPolicy(policy: Policy): string {
  return policy.rules.map(formatRule).join('\n')
}

function formatRule(rule: PolicyRule): string {
  const lines = [`path ${quote(rule.path)} {`]
  lines.push(`  capabilities = [${rule.capabilities.map(quote).join(', ')}]`)
  if (rule.allowedParameters)
    lines.push(...formatParameters('allowed_parameters', rule.allowedParameters))
  if (rule.deniedParameters)
    lines.push(...formatParameters('denied_parameters', rule.deniedParameters))
  if (rule.requiredParameters) {
    lines.push(`  required_parameters = [${rule.requiredParameters.map(quote).join(', ')}]`)
  }
  if (rule.minWrappingTtl !== undefined)
    lines.push(`  min_wrapping_ttl = "${rule.minWrappingTtl}s"`)
  if (rule.maxWrappingTtl !== undefined)
    lines.push(`  max_wrapping_ttl = "${rule.maxWrappingTtl}s"`)
  lines.push('}')
  return `${lines.join('\n')}\n`
}

function formatParameters(name: string, params: Record<string, unknown[]>): string[] {
  const entries = Object.entries(params)
  if (entries.length === 0) return [`  ${name} = {}`]
  return [
    `  ${name} = {`,
    ...entries.map(([key, values]) => `    ${quote(key)} = [${values.map(hclValue).join(', ')}]`),
    '  }',
  ]
}

function hclValue(value: unknown): string {
  if (typeof value === 'string') return quote(value)
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

/** An HCL quoted string; `${` and `%{` are escaped so templates stay literal. */
function quote(text: string): string {
  return JSON.stringify(text).replace(/\$\{/g, '$${').replace(/%\{/g, '%%{')
}
