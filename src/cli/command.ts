import { parseArgs, UsageError, type ParsedArgs } from './args.js'
import { createClient, type StintClient } from './client.js'
import type { CliIo } from './io.js'
import { createOutput, type Output } from './output.js'
import { readTokenFile } from './token-file.js'

/** A CLI command: takes its arguments and the process's (or a test's) I/O, returns the exit code. */
export type Command = (argv: string[], io: CliIo) => Promise<number>

const GLOBAL_BOOLEANS = ['tls-skip-verify', 'help', 'h']
const GLOBAL_FLAGS = ['address', 'format', 'field', 'ca-cert', ...GLOBAL_BOOLEANS]

/** Flags every command accepts. */
export const GLOBAL_FLAGS_HELP = `Global options:
  -address=<url>      Server address (else STINT_ADDR, VAULT_ADDR, http://127.0.0.1:8200).
  -format=<fmt>       Output format: table (default), json or yaml.
  -field=<name>       Print only this field's raw value.
  -ca-cert=<file>     PEM CA certificate to verify the server's TLS certificate.
  -tls-skip-verify    Do not verify the server's TLS certificate (insecure).
`

/** What a command's body gets: parsed flags, output, and a lazily built API client. */
export interface CommandContext {
  io: CliIo
  args: ParsedArgs
  positionals: string[]
  out: Output
  client(): Promise<StintClient>
  /** A string flag, or undefined; a flag given without a value is a usage error. */
  str(name: string): string | undefined
  /** Every value of a repeatable string flag (`-policy=a -policy=b`, also `a,b`). */
  list(name: string): string[]
  /** A repeatable `-name=key=value` flag as a map, or undefined when absent. */
  map(name: string): Record<string, string> | undefined
  /** A boolean flag (`-x`, `-x=true`, `-x=false`), or `fallback` when absent. */
  bool(name: string, fallback?: boolean): boolean
  /** Labels what the command is doing, for error messages: `Error <doing>: ...`. */
  doing(action: string): void
}

export interface CommandSpec {
  /** Full command name for messages, e.g. `kv get`. */
  name: string
  /** Help text printed for `-h`/`--help` (global options are appended). */
  help: string
  /**
   * Flags that take a value. When given (even empty), any flag that is neither here, in
   * `booleans` nor global is a usage error, so a typo such as `-verison=2` is never ignored.
   */
  flags?: string[]
  /** Flags that never take the next word as their value. */
  booleans?: string[]
  /** Allowed positional argument count, `[min, max]` (max may be Infinity). */
  args?: [number, number]
  /** The command body; returns the exit code. */
  run(ctx: CommandContext): Promise<number>
}

/** Builds a command from a spec: flag parsing, `-h`, argument counts and error printing. */
export function command(spec: CommandSpec): Command {
  return async function runCommand(argv, io) {
    const parsed = parseArgs(argv, [...(spec.booleans ?? []), ...GLOBAL_BOOLEANS])
    if (parsed.flags.help === true || parsed.flags.h === true) {
      io.stdout.write(`${spec.help.trimEnd()}\n\n${GLOBAL_FLAGS_HELP}`)
      return 0
    }
    let action = ''
    try {
      if (spec.flags) {
        const known = new Set([...spec.flags, ...(spec.booleans ?? []), ...GLOBAL_FLAGS])
        const unknown = Object.keys(parsed.flags).find((f) => !known.has(f))
        if (unknown !== undefined)
          throw new UsageError(`flag provided but not defined: -${unknown}`)
      }
      const [min, max] = spec.args ?? [0, 0]
      const count = parsed.positionals.length
      if (count < min) {
        throw new UsageError(`Not enough arguments (expected ${min}, got ${count})`)
      }
      if (count > max) {
        throw new UsageError(`Too many arguments (expected ${max}, got ${count})`)
      }
      const ctx = await createContext(io, parsed, (a) => (action = a))
      return await spec.run(ctx)
    } catch (err) {
      if (err instanceof UsageError) return usageFailure(io, spec, err.message)
      // ApiResponseError messages carry the URL, status code and the server's errors.
      io.stderr.write(`${action ? `Error ${action}` : 'Error'}: ${(err as Error).message}\n`)
      return 1
    }
  }
}

/**
 * A command with subcommands (`kv get`, `token create`...). The first positional picks the
 * subcommand; `-h` or no subcommand prints the group's help.
 */
export function group(name: string, help: string, subcommands: Record<string, Command>): Command {
  return async function runGroup(argv, io) {
    const [sub, ...rest] = argv
    if (sub === '-h' || sub === '--help' || sub === '-help') {
      io.stdout.write(`${help.trimEnd()}\n`)
      return 0
    }
    const chosen = sub ? subcommands[sub] : undefined
    if (!chosen) {
      if (sub) io.stderr.write(`Unknown subcommand "${name} ${sub}".\n\n`)
      io.stderr.write(`${help.trimEnd()}\n`)
      return 2
    }
    return chosen(rest, io)
  }
}

function usageFailure(io: CliIo, spec: CommandSpec, message: string): number {
  io.stderr.write(`${message}\n\nRun "stint ${spec.name} -h" for usage.\n`)
  return 2
}

async function createContext(
  io: CliIo,
  args: ParsedArgs,
  setAction: (action: string) => void,
): Promise<CommandContext> {
  const str = (name: string): string | undefined => {
    const value = args.flags[name]
    if (value === undefined) return undefined
    if (typeof value !== 'string') throw new UsageError(`Flag -${name} needs a value`)
    return value
  }
  const format = str('format') ?? io.env.STINT_FORMAT ?? io.env.VAULT_FORMAT ?? 'table'
  const out = await createOutput(io, format, str('field'))
  let client: StintClient | undefined
  const ctx: CommandContext = {
    io,
    args,
    positionals: args.positionals,
    out,
    str,
    list(name) {
      return (args.all[name] ?? []).flatMap((v) => {
        if (typeof v !== 'string') throw new UsageError(`Flag -${name} needs a value`)
        return v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      })
    },
    map(name) {
      const values = args.all[name]
      if (!values) return undefined
      const map: Record<string, string> = {}
      for (const item of values) {
        const eq = typeof item === 'string' ? item.indexOf('=') : -1
        if (eq <= 0) throw new UsageError(`Flag -${name} takes key=value`)
        map[(item as string).slice(0, eq)] = (item as string).slice(eq + 1)
      }
      return map
    },
    bool(name, fallback = false) {
      const value = args.flags[name]
      if (value === undefined) return fallback
      if (typeof value === 'boolean') return value
      if (/^(1|t|true|yes)$/i.test(value)) return true
      if (/^(0|f|false|no)$/i.test(value)) return false
      throw new UsageError(`Flag -${name} takes true or false, not "${value}"`)
    },
    doing: setAction,
    async client() {
      if (client) return client
      const env = io.env
      const address = str('address') ?? env.STINT_ADDR ?? env.VAULT_ADDR ?? 'http://127.0.0.1:8200'
      const token = env.STINT_TOKEN || env.VAULT_TOKEN || (await readTokenFile(io.home))
      const skip = args.flags['tls-skip-verify']
      client = createClient({
        address,
        token,
        caCert: str('ca-cert') ?? env.STINT_CACERT ?? env.VAULT_CACERT,
        tlsSkipVerify:
          skip === true ||
          skip === 'true' ||
          /^(1|true)$/i.test(env.STINT_SKIP_VERIFY ?? env.VAULT_SKIP_VERIFY ?? ''),
      })
      return client
    },
  }
  return ctx
}
