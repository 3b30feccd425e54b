/** Parsed command line: Vault-style flags (`-name=value`, `-name value`, `--name`) and positionals. */
export interface ParsedArgs {
  /** The last value given for each flag. */
  flags: Record<string, string | boolean>
  /** Every value given for each flag, in order (for repeatable flags such as `-policy`). */
  all: Record<string, Array<string | boolean>>
  positionals: string[]
}

/**
 * Parses Vault-style arguments. `booleanFlags` never take the next word as their value.
 * A lone `-` is a positional (stdin); `--` ends flag parsing.
 */
export function parseArgs(argv: string[], booleanFlags: string[] = []): ParsedArgs {
  const flags: Record<string, string | boolean> = {}
  const all: Record<string, Array<string | boolean>> = {}
  const positionals: string[] = []
  const bools = new Set([...booleanFlags, 'help', 'h'])
  const set = (name: string, value: string | boolean) => {
    flags[name] = value
    ;(all[name] ??= []).push(value)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg)
      continue
    }
    const body = arg.replace(/^--?/, '')
    const eq = body.indexOf('=')
    if (eq >= 0) {
      set(body.slice(0, eq), body.slice(eq + 1))
    } else if (bools.has(body)) {
      set(body, true)
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) {
      set(body, argv[++i]!)
    } else {
      set(body, true)
    }
  }
  return { flags, all, positionals }
}

/** Thrown for bad usage: the CLI prints it and exits with status 2, as Vault does. */
export class UsageError extends Error {}
