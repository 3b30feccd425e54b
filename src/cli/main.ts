import { UsageError } from './args.js'
import type { Command } from './command.js'
import { processIo, type CliIo } from './io.js'

/** A command whose module is imported on first use, so `stint status` loads only `status`. */
const lazy =
  (load: () => Promise<Command>): Command =>
  async (argv, io) =>
    (await load())(argv, io)

/**
 * Top-level commands. Each one gets its arguments and the I/O to use (streams, environment,
 * home directory) and returns the exit code: 0 ok, 1 error, 2 usage (or "no value found").
 * A feature adds its command with one line here; its module loads only when it runs.
 */
export const commands: Record<string, Command> = {
  server: lazy(async () => (await import('./commands/server.js')).serverCommand),
  status: lazy(async () => (await import('./commands/status.js')).statusCommand),
  operator: lazy(async () => (await import('./commands/operator.js')).operatorCommand),
  login: lazy(async () => (await import('./commands/login.js')).loginCommand),
  read: lazy(async () => (await import('./commands/generic.js')).readCommand),
  write: lazy(async () => (await import('./commands/generic.js')).writeCommand),
  list: lazy(async () => (await import('./commands/generic.js')).listCommand),
  delete: lazy(async () => (await import('./commands/generic.js')).deleteCommand),
  patch: lazy(async () => (await import('./commands/generic.js')).patchCommand),
  kv: lazy(async () => (await import('./commands/kv.js')).kvCommand),
  token: lazy(async () => (await import('./commands/token.js')).tokenCommand),
  policy: lazy(async () => (await import('./commands/policy.js')).policyCommand),
  secrets: lazy(async () => (await import('./commands/mounts.js')).secretsCommand),
  auth: lazy(async () => (await import('./commands/mounts.js')).authCommand),
  lease: lazy(async () => (await import('./commands/lease.js')).leaseCommand),
  access: lazy(async () => (await import('./commands/access.js')).accessCommand),
  audit: lazy(async () => (await import('./commands/audit.js')).auditCommand),
}

const usage = `Usage: stint <command> [args]

Common commands:
  read        Read data and retrieve secrets
  write       Write data, configuration, and secrets
  delete      Delete secrets and configuration
  list        List data or secrets
  login       Authenticate locally
  server      Start a Stint server
  status      Print seal and HA status

Other commands:
  access      Request, approve and end just-in-time access
  audit       Interact with audit devices and verify audit logs
  auth        Interact with auth methods
  kv          Interact with the KV secrets engine
  lease       Interact with leases
  operator    Perform operator-specific tasks
  patch       Patch data, configuration, and secrets
  policy      Interact with policies
  secrets     Interact with secrets engines
  token       Interact with tokens

Run "stint <command> -h" for a command's options.
`

/** Runs the CLI with the given I/O (tests pass buffers and a fake environment). */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '-h' || name === '--help' || name === '-help' || name === 'help') {
    const extra = Object.keys(commands).filter((c) => !usage.includes(`  ${c} `))
    const text = usage + (extra.length ? `\nMore commands: ${extra.sort().join(', ')}\n` : '')
    if (name) io.stdout.write(text)
    else io.stderr.write(text)
    return name ? 0 : 2
  }
  const command = commands[name]
  if (!command) {
    io.stderr.write(`Unknown command "${name}".\n\n${usage}`)
    return 2
  }
  try {
    return await command(rest, io)
  } catch (err) {
    io.stderr.write(`Error: ${(err as Error).message}\n`)
    return err instanceof UsageError ? 2 : 1
  }
}

/** Runs the CLI on the real process. */
export function main(argv: string[]): Promise<number> {
  return run(argv, processIo())
}

const isEntry = process.argv[1] && /(?:cli[\\/]main\.[jt]s|stint(?:\.js)?)$/.test(process.argv[1])
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`Error: ${(err as Error).message}`)
      process.exit(1)
    },
  )
}
