import { readFile } from 'node:fs/promises'
import { UsageError } from '../args.js'
import { command, group, type Command } from '../command.js'

const verify = command({
  name: 'audit verify',
  help: `Usage: stint audit verify [options] <file> [more files, oldest first]

  Checks the hash chain and signatures of audit log files (no server needed). Rotated files
  given in order are checked as one sequence. Reports the first edited, deleted, reordered or
  inserted entry by file and line; exits 0 when the log is intact, 1 when it is not.

  -key=<ed25519:...|@file>   The device's public key, from "GET sys/audit/<path>/public-key".
                             Without it the key written in the log is trusted (weaker).

    $ stint audit verify -key=ed25519:kr6c... /var/log/stint/audit.log.1 /var/log/stint/audit.log`,
  args: [1, Infinity],
  async run(ctx) {
    // The verifier is the server's own code, loaded only by this command.
    const { toLogFile, verifyAuditLog } = await import('../../audit/verify.js')
    let key = ctx.str('key')
    if (key?.startsWith('@')) key = (await readFile(key.slice(1), 'utf8')).trim()
    const files: Array<ReturnType<typeof toLogFile>> = []
    for (const name of ctx.positionals) {
      let text: string
      try {
        text = await readFile(name, 'utf8')
      } catch {
        throw new UsageError(`Cannot read audit file "${name}"`)
      }
      files.push(toLogFile(name, text))
    }
    ctx.doing('verifying the audit log')
    const result = verifyAuditLog(files, key)
    for (const w of result.warnings) ctx.io.stderr.write(`Warning: ${w}\n`)
    const summary = { ok: result.ok, entries: result.entries, checkpoints: result.checkpoints }
    if (!result.ok) {
      const p = result.problem!
      ctx.out.keyValues(
        [
          ['result', 'TAMPERED'],
          ['file', p.file],
          ['line', p.line],
          ['reason', p.reason],
        ],
        { ...summary, problem: p, warnings: result.warnings },
      )
      return 1
    }
    ctx.out.keyValues(
      [
        ['result', 'intact'],
        ['entries', result.entries],
        ['checkpoints', result.checkpoints],
      ],
      { ...summary, warnings: result.warnings },
    )
    return 0
  },
})

const list = command({
  name: 'audit list',
  help: `Usage: stint audit list [options]

  Lists the enabled audit devices (needs sudo on sys/audit).`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('listing audit devices')
    const { body } = await client.request('GET', 'sys/audit')
    const devices = (body?.data ?? {}) as Record<
      string,
      { type?: string; description?: string; options?: object }
    >
    const rows = Object.entries(devices).map(([path, d]) => [
      path,
      d.type ?? '',
      d.description ?? '',
    ])
    if (rows.length === 0 && ctx.out.format === 'table') {
      ctx.out.info('No audit devices are enabled.')
      return 0
    }
    ctx.out.columns(['Path', 'Type', 'Description'], rows, devices)
    return 0
  },
})

const enable = command({
  name: 'audit enable',
  help: `Usage: stint audit enable [options] <type> [key=value ...]

  Enables an audit device: file, socket or http. Options are key=value pairs.

  -path=<path>               Where to enable it (default: the type).
  -description=<text>        Description shown in listings.
  -local                     Do not replicate (accepted for compatibility).

    $ stint audit enable file file_path=/var/log/stint/audit.log
    $ stint audit enable -path=siem socket address=10.0.0.9:9000 socket_type=tcp`,
  booleans: ['local'],
  args: [1, Infinity],
  async run(ctx) {
    const [type, ...pairs] = ctx.positionals as [string, ...string[]]
    const options: Record<string, string> = {}
    for (const pair of pairs) {
      const eq = pair.indexOf('=')
      if (eq <= 0) throw new UsageError(`Option "${pair.split('=')[0]}" must be key=value`)
      options[pair.slice(0, eq)] = pair.slice(eq + 1)
    }
    const path = (ctx.str('path') ?? type).replace(/^\/+|\/+$/g, '')
    if (!path) throw new UsageError('Invalid -path')
    const client = await ctx.client()
    ctx.doing('enabling audit device')
    await client.request('PUT', `sys/audit/${path}`, {
      body: { type, description: ctx.str('description') ?? '', local: ctx.bool('local'), options },
    })
    ctx.out.info(`Success! Enabled the ${type} audit device at: ${path}/`)
    return 0
  },
})

const disable = command({
  name: 'audit disable',
  help: `Usage: stint audit disable [options] <path>

  Disables an audit device; its file ends with a signed close checkpoint.`,
  args: [1, 1],
  async run(ctx) {
    const path = ctx.positionals[0]!.replace(/^\/+|\/+$/g, '')
    const client = await ctx.client()
    ctx.doing('disabling audit device')
    await client.request('DELETE', `sys/audit/${path}`)
    ctx.out.info(`Success! Disabled audit device (if it was enabled) at: ${path}/`)
    return 0
  },
})

export const auditCommand: Command = group(
  'audit',
  `Usage: stint audit <subcommand> [options] [args]

  Manages audit devices and verifies audit logs.

Subcommands:
  disable    Disables an audit device
  enable     Enables an audit device
  list       Lists enabled audit devices
  verify     Verifies an audit log's hash chain and signatures`,
  { verify, list, enable, disable },
)
