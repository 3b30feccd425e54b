import { command, type Command, type CommandContext } from '../command.js'
import { parseDataArgs } from '../data-args.js'
import type { ApiResult } from '../client.js'
import { UsageError } from '../args.js'
import { secretPairs, type Envelope } from '../output.js'

/**
 * Prints a response body, or `success` when the server answered 204. A body with nothing to
 * tabulate (only `warnings`, as `write sys/policy/X` can answer) prints its warnings and then
 * `success`, as Vault does, rather than an empty table; `-format=json`/`yaml` still print it.
 */
function printResult(ctx: CommandContext, result: ApiResult, success: string): number {
  const body = result.body as Envelope | null
  if (result.status === 204 || !body) {
    ctx.out.info(success)
    return 0
  }
  if (
    ctx.out.format === 'table' &&
    ctx.out.field === undefined &&
    secretPairs(body, false).length === 0
  ) {
    ctx.out.warnings(body.warnings)
    ctx.out.info(success)
    return 0
  }
  ctx.out.secret(body)
  return 0
}

const SECRET_KEY = /token|secret|password|passphrase|jwt|key|totp|otp/i

/** key=value arguments as query parameters; secret-looking keys are refused (URLs get logged). */
async function queryArgs(ctx: CommandContext, items: string[]): Promise<Record<string, string>> {
  const query: Record<string, string> = {}
  for (const [k, v] of Object.entries(await parseDataArgs(ctx.io, items))) {
    if (SECRET_KEY.test(k)) {
      throw new UsageError(
        `Refusing to send "${k}" in a URL query string; use "stint write" to send it in the body`,
      )
    }
    query[k] = String(v)
  }
  return query
}

/** Prints Vault's "No value found" and exits 2, as `vault read` does. */
export function noValue(ctx: CommandContext, path: string): number {
  ctx.io.stderr.write(`No value found at ${path}\n`)
  return 2
}

export const readCommand: Command = command({
  name: 'read',
  flags: [],
  help: `Usage: stint read [options] <path> [key=value...]

  Reads data from Stint at the given path (key=value pairs become query parameters).

    $ stint read secret/data/app
    $ stint read -field=password database/creds/readonly`,
  args: [1, Infinity],
  async run(ctx) {
    const [path, ...rest] = ctx.positionals as [string, ...string[]]
    const client = await ctx.client()
    ctx.doing(`reading ${path}`)
    const query = await queryArgs(ctx, rest)
    const result = await client.request('GET', path, { query, allow: [404] })
    if (result.status === 404 || !result.body) return noValue(ctx, path)
    ctx.out.secret(result.body)
    return 0
  },
})

export const writeCommand: Command = command({
  name: 'write',
  flags: [],
  booleans: ['force', 'f'],
  help: `Usage: stint write [options] <path> [key=value... | -]

  Writes data to Stint at the given path. Values may be key=value, key=@file (read from a file)
  or key=- (read from stdin); a lone "-" reads a JSON object from stdin.

    $ stint write sys/policies/acl/ci policy=@ci.hcl
    $ echo '{"type":"kv"}' | stint write sys/mounts/kv -
    $ stint write -f sys/leases/tidy

  -force, -f    Allow the write with no key=value data (for endpoints that take none). Stint
                already sends an empty body when no data is given; the flag is accepted for
                compatibility with "vault write -f".`,
  args: [1, Infinity],
  async run(ctx) {
    const [path, ...rest] = ctx.positionals as [string, ...string[]]
    // -force/-f only allows an empty write, which is always allowed: check its value, no more.
    ctx.bool('force')
    ctx.bool('f')
    const body = await parseDataArgs(ctx.io, rest)
    const client = await ctx.client()
    ctx.doing(`writing to ${path}`)
    const result = await client.request('PUT', path, { body })
    return printResult(ctx, result, `Success! Data written to: ${path}`)
  },
})

export const patchCommand: Command = command({
  name: 'patch',
  flags: [],
  help: `Usage: stint patch [options] <path> [key=value... | -]

  Sends a JSON merge patch (PATCH, application/merge-patch+json) to the given path.`,
  args: [1, Infinity],
  async run(ctx) {
    const [path, ...rest] = ctx.positionals as [string, ...string[]]
    const body = await parseDataArgs(ctx.io, rest)
    const client = await ctx.client()
    ctx.doing(`patching ${path}`)
    const result = await client.request('PATCH', path, { body, mergePatch: true })
    return printResult(ctx, result, `Success! Data written to: ${path}`)
  },
})

export const listCommand: Command = command({
  name: 'list',
  flags: [],
  help: `Usage: stint list [options] <path>

  Lists the keys at the given path.

    $ stint list secret/metadata/`,
  args: [1, 1],
  async run(ctx) {
    const path = ctx.positionals[0]!
    const client = await ctx.client()
    ctx.doing(`listing ${path}`)
    const result = await client.list(path, { allow: [404] })
    const keys = result.body?.data?.keys
    if (result.status === 404 || !Array.isArray(keys) || keys.length === 0) {
      return noValue(ctx, path.endsWith('/') ? path : `${path}/`)
    }
    if (ctx.out.field !== undefined) {
      ctx.out.secret(result.body)
      return 0
    }
    ctx.out.keys(keys.map(String), keys)
    return 0
  },
})

export const deleteCommand: Command = command({
  name: 'delete',
  flags: [],
  help: `Usage: stint delete [options] <path> [key=value...]

  Deletes the data at the given path (key=value pairs become query parameters).`,
  args: [1, Infinity],
  async run(ctx) {
    const [path, ...rest] = ctx.positionals as [string, ...string[]]
    const client = await ctx.client()
    ctx.doing(`deleting ${path}`)
    const query = await queryArgs(ctx, rest)
    const result = await client.request('DELETE', path, { query })
    return printResult(ctx, result, `Success! Data deleted (if it existed) at: ${path}`)
  },
})
