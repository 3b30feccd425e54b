import { readFile, writeFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { UsageError } from '../args.js'
import { command, group, type Command, type CommandContext } from '../command.js'
import { readAll } from '../io.js'
import { formatPolicyText } from '../policy-format.js'

/** Policy text from a file, or stdin for `-`. */
async function policySource(ctx: CommandContext, file: string): Promise<string> {
  if (file === '-') return readAll(ctx.io.stdin)
  try {
    return await readFile(file, 'utf8')
  } catch {
    throw new UsageError(`Cannot read policy file "${file}"`)
  }
}

const write = command({
  name: 'policy write',
  flags: [],
  help: `Usage: stint policy write [options] <name> <file | ->

  Uploads an ACL policy (HCL or JSON) from a file, or from stdin with "-".

    $ stint policy write ci ci.hcl`,
  args: [2, 2],
  async run(ctx) {
    const [name, file] = ctx.positionals as [string, string]
    const policy = await policySource(ctx, file)
    const client = await ctx.client()
    ctx.doing('uploading policy')
    const { body } = await client.request('PUT', `sys/policies/acl/${name}`, {
      body: { policy },
    })
    ctx.out.warnings(body?.warnings)
    ctx.out.info(`Success! Uploaded policy: ${name}`)
    return 0
  },
})

const read = command({
  name: 'policy read',
  flags: [],
  help: `Usage: stint policy read [options] <name>

  Prints a policy's text.`,
  args: [1, 1],
  async run(ctx) {
    const name = ctx.positionals[0]!
    const client = await ctx.client()
    ctx.doing(`finding policy "${name}"`)
    const { status, body } = await client.request('GET', `sys/policies/acl/${name}`, {
      allow: [404],
    })
    if (status === 404 || !body?.data) {
      ctx.io.stderr.write(`No policy named: ${name}\n`)
      return 2
    }
    const text = String(body.data.policy ?? body.data.rules ?? '')
    if (ctx.out.format !== 'table' || ctx.out.field !== undefined) ctx.out.secret(body)
    else ctx.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    return 0
  },
})

const list = command({
  name: 'policy list',
  flags: [],
  help: `Usage: stint policy list [options]

  Lists the names of the ACL policies.`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('listing policies')
    const { body } = await client.list('sys/policies/acl')
    const keys: string[] = (body?.data?.keys ?? []).map(String)
    if (ctx.out.format !== 'table' || ctx.out.field !== undefined) ctx.out.keys(keys, keys)
    else ctx.io.stdout.write(keys.map((k) => `${k}\n`).join(''))
    return 0
  },
})

const del = command({
  name: 'policy delete',
  flags: [],
  help: `Usage: stint policy delete [options] <name>

  Deletes a policy. Tokens that reference it keep working without its grants.`,
  args: [1, 1],
  async run(ctx) {
    const name = ctx.positionals[0]!
    const client = await ctx.client()
    ctx.doing('deleting policy')
    await client.request('DELETE', `sys/policies/acl/${name}`)
    ctx.out.info(`Success! Deleted policy: ${name}`)
    return 0
  },
})

const fmt = command({
  name: 'policy fmt',
  flags: [],
  help: `Usage: stint policy fmt [options] <file | ->

  Formats a policy file in place (no server needed), as "vault policy fmt" does. The file must
  parse as a policy; a syntax error is reported and the file is left unchanged. Only the layout
  changes: indentation (two spaces per level), spacing and alignment of "=", trailing whitespace
  and repeated blank lines. Comments, the order of the path blocks and every value (including a
  legacy policy = "write") are kept as written. With "-", the policy is read from stdin and the
  formatted text printed to stdout.

    $ stint policy fmt ci.hcl`,
  args: [1, 1],
  async run(ctx) {
    const file = ctx.positionals[0]!
    const text = await policySource(ctx, file)
    const label = file === '-' ? 'stdin' : basename(file)
    ctx.doing(`formatting policy ${file === '-' ? 'from stdin' : label}`)
    // The server's own parser (WebAssembly), loaded only by this command.
    const { parsePolicy } = await import('../../core/policy/parse.js')
    await parsePolicy(label, text)
    const formatted = formatPolicyText(text)
    if (!(await sameDocument(text, formatted))) {
      throw new Error('formatting would change what the policy says; the file was left unchanged')
    }
    if (file === '-') {
      ctx.io.stdout.write(formatted)
      return 0
    }
    if (formatted !== text) await writeFile(file, formatted, 'utf8')
    ctx.out.info(`Success! Formatted policy: ${file}`)
    return 0
  },
})

/** Whether two policy texts parse to the same document (a guard on the layout-only promise). */
async function sameDocument(before: string, after: string): Promise<boolean> {
  const { decodeBase64, parseHclDocument } = await import('../../core/policy/parse.js')
  const parse = async (text: string) => {
    const source = decodeBase64(text) ?? text
    return source.trimStart().startsWith('{')
      ? (JSON.parse(source) as unknown)
      : await parseHclDocument(source)
  }
  try {
    return isDeepStrictEqual(await parse(before), await parse(after))
  } catch {
    return false
  }
}

export const policyCommand: Command = group(
  'policy',
  `Usage: stint policy <subcommand> [options] [args]

  Manages ACL policies.

Subcommands:
  write     Upload a policy
  read      Print a policy
  list      List policies
  delete    Delete a policy
  fmt       Check a policy file and format it in place`,
  { write, read, list, delete: del, fmt },
)
