import { UsageError } from './args.js'
import type { Command } from './command.js'
import { processIo, type CliIo } from './io.js'
import { serverCommand } from './commands/server.js'
import { statusCommand } from './commands/status.js'
import { operatorCommand } from './commands/operator.js'
import { loginCommand } from './commands/login.js'
import {
  deleteCommand,
  listCommand,
  patchCommand,
  readCommand,
  writeCommand,
} from './commands/generic.js'
import { kvCommand } from './commands/kv.js'
import { tokenCommand } from './commands/token.js'
import { policyCommand } from './commands/policy.js'
import { authCommand, secretsCommand } from './commands/mounts.js'
import { leaseCommand } from './commands/lease.js'

/**
 * Top-level commands. Each one gets its arguments and the I/O to use (streams, environment,
 * home directory) and returns the exit code: 0 ok, 1 error, 2 usage (or "no value found").
 * A feature adds its command with one line here.
 */
export const commands: Record<string, Command> = {
  server: (argv) => serverCommand(argv),
  status: statusCommand,
  operator: operatorCommand,
  login: loginCommand,
  read: readCommand,
  write: writeCommand,
  list: listCommand,
  delete: deleteCommand,
  patch: patchCommand,
  kv: kvCommand,
  token: tokenCommand,
  policy: policyCommand,
  secrets: secretsCommand,
  auth: authCommand,
  lease: leaseCommand,
  access: async (argv, io) => (await import('./commands/access.js')).accessCommand(argv, io),
  audit: async (argv, io) => (await import('./commands/audit.js')).auditCommand(argv, io),
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

const isEntry = process.argv[1] && /(?:main\.ts|stint(?:\.js)?)$/.test(process.argv[1])
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`Error: ${(err as Error).message}`)
      process.exit(1)
    },
  )
}
