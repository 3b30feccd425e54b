import { UsageError } from '../args.js'
import { command, group, type Command, type CommandContext } from '../command.js'
import { promptSecret } from '../io.js'

/** A token argument: the value, `-` for a hidden prompt / stdin line, or none. */
async function tokenArg(ctx: CommandContext, arg: string | undefined): Promise<string | undefined> {
  if (arg === '-') return promptSecret(ctx.io, 'Token (will be hidden): ')
  return arg
}

const create = command({
  name: 'token create',
  flags: [
    'policy',
    'ttl',
    'explicit-max-ttl',
    'period',
    'num-uses',
    'display-name',
    'metadata',
    'renewable',
    'role',
    'type',
  ],
  help: `Usage: stint token create [options]

  Creates a child of the current token and prints it (the only time it is shown).

  -policy=<name>            Policy for the token (repeatable; default: the parent's).
  -ttl=<dur>                Initial TTL (e.g. 1h).
  -explicit-max-ttl=<dur>   Hard limit on the token's life.
  -period=<dur>             Periodic token: each renewal resets the TTL to this.
  -num-uses=<n>             Uses before the token is revoked (0: unlimited).
  -display-name=<name>      Display name.
  -metadata=<k=v>           Metadata (repeatable).
  -orphan                   Create an orphan token (no parent).
  -no-default-policy        Do not attach the default policy.
  -renewable=<bool>         Whether the token can be renewed (default true).
  -role=<name>              Create through a token role.
  -type=<service|batch>     Token type.`,
  booleans: ['orphan', 'no-default-policy'],
  async run(ctx) {
    const body: Record<string, unknown> = {}
    const policies = ctx.list('policy')
    if (policies.length) body.policies = policies
    for (const [flag, field] of [
      ['ttl', 'ttl'],
      ['explicit-max-ttl', 'explicit_max_ttl'],
      ['period', 'period'],
      ['display-name', 'display_name'],
      ['type', 'type'],
    ] as const) {
      const value = ctx.str(flag)
      if (value !== undefined) body[field] = value
    }
    const uses = ctx.str('num-uses')
    if (uses !== undefined) {
      if (!/^\d+$/.test(uses)) throw new UsageError('-num-uses must be a number')
      body.num_uses = Number(uses)
    }
    if (ctx.args.flags.renewable !== undefined) body.renewable = ctx.bool('renewable')
    if (ctx.bool('no-default-policy')) body.no_default_policy = true
    const meta = ctx.map('metadata')
    if (meta) body.meta = meta
    const role = ctx.str('role')
    const path = role
      ? `auth/token/create/${role}`
      : ctx.bool('orphan')
        ? 'auth/token/create-orphan'
        : 'auth/token/create'
    const client = await ctx.client()
    ctx.doing('creating token')
    const { body: result } = await client.request('POST', path, { body })
    ctx.out.secret(result, { showToken: true })
    return 0
  },
})

const lookup = command({
  name: 'token lookup',
  flags: [],
  help: `Usage: stint token lookup [options] [token | -]

  Shows a token's properties: the current token with no argument, another token given as an
  argument ("-" prompts for it), or by accessor with -accessor.

  -accessor    The argument is an accessor, not a token.`,
  booleans: ['accessor'],
  args: [0, 1],
  async run(ctx) {
    const byAccessor = ctx.bool('accessor')
    if (byAccessor && ctx.positionals[0] === undefined) {
      throw new UsageError('-accessor needs the accessor as the argument')
    }
    const client = await ctx.client()
    const arg = await tokenArg(ctx, ctx.positionals[0])
    ctx.doing('looking up token')
    const { body } =
      arg === undefined
        ? await client.request('GET', 'auth/token/lookup-self')
        : byAccessor
          ? await client.request('POST', 'auth/token/lookup-accessor', { body: { accessor: arg } })
          : await client.request('POST', 'auth/token/lookup', { body: { token: arg } })
    // lookup returns the token id itself; print it only when asked for by -field=id.
    if (ctx.out.field === 'id') ctx.out.secret(body)
    else ctx.out.secret(hideId(body))
    return 0
  },
})

function hideId(body: { data?: Record<string, unknown> }) {
  if (!body?.data) return body
  const { id: _id, ...rest } = body.data
  return { ...body, data: rest }
}

const renew = command({
  name: 'token renew',
  flags: ['increment', 'i'],
  help: `Usage: stint token renew [options] [token | -]

  Renews the current token (no argument) or the given one.

  -increment=<dur>   Requested new TTL (default: the token's default).

  Renewing by accessor ("vault token renew -accessor") is not available: the server has no
  auth/token/renew-accessor endpoint yet. Renew with the token itself.`,
  booleans: ['accessor'],
  args: [0, 1],
  async run(ctx) {
    if (ctx.bool('accessor')) {
      throw new UsageError(
        '-accessor is not supported by "stint token renew": the server has no ' +
          'auth/token/renew-accessor endpoint; renew with the token itself',
      )
    }
    const client = await ctx.client()
    const arg = await tokenArg(ctx, ctx.positionals[0])
    const body: Record<string, unknown> = {}
    const increment = ctx.str('increment') ?? ctx.str('i')
    if (increment !== undefined) body.increment = increment
    ctx.doing('renewing token')
    const { body: result } =
      arg === undefined
        ? await client.request('PUT', 'auth/token/renew-self', { body })
        : await client.request('PUT', 'auth/token/renew', { body: { ...body, token: arg } })
    ctx.out.secret(result)
    return 0
  },
})

const revoke = command({
  name: 'token revoke',
  flags: ['mode'],
  help: `Usage: stint token revoke [options] [token | -]

  Revokes a token, its child tokens and their leases.

  -self            Revoke the current token.
  -accessor        The argument is an accessor.
  -mode=orphan     Revoke only this token; its children become orphans (needs sudo).`,
  booleans: ['self', 'accessor'],
  args: [0, 1],
  async run(ctx) {
    const client = await ctx.client()
    const self = ctx.bool('self')
    const arg = await tokenArg(ctx, ctx.positionals[0])
    const byAccessor = ctx.bool('accessor')
    if (self && arg !== undefined) throw new UsageError('-self takes no token argument')
    if (self && byAccessor) throw new UsageError('-self and -accessor cannot be used together')
    if (!self && arg === undefined)
      throw new UsageError('Give a token, an accessor with -accessor, or -self')
    const mode = ctx.str('mode')
    if (mode !== undefined && mode !== 'orphan' && mode !== 'path') {
      throw new UsageError('-mode must be "orphan"')
    }
    if (byAccessor && mode === 'orphan') {
      throw new UsageError('-mode=orphan cannot be used with -accessor')
    }
    ctx.doing('revoking token')
    if (self) await client.request('PUT', 'auth/token/revoke-self')
    else if (byAccessor)
      await client.request('PUT', 'auth/token/revoke-accessor', { body: { accessor: arg } })
    else if (mode === 'orphan')
      await client.request('PUT', 'auth/token/revoke-orphan', { body: { token: arg } })
    else await client.request('PUT', 'auth/token/revoke', { body: { token: arg } })
    ctx.out.info('Success! Revoked token (if it existed)')
    return 0
  },
})

const capabilities = command({
  name: 'token capabilities',
  flags: [],
  help: `Usage: stint token capabilities [options] [token] <path>

  Prints the capabilities a token (default: the current one) has on a path.`,
  args: [1, 2],
  async run(ctx) {
    const client = await ctx.client()
    const [first, second] = ctx.positionals
    const path = (second ?? first)!
    const token = second === undefined ? undefined : await tokenArg(ctx, first)
    ctx.doing('listing capabilities')
    const { body } =
      token === undefined
        ? await client.request('POST', 'sys/capabilities-self', { body: { paths: [path] } })
        : await client.request('POST', 'sys/capabilities', { body: { token, paths: [path] } })
    const caps: unknown = body?.data?.[path] ?? body?.data?.capabilities ?? body?.[path] ?? []
    const list = Array.isArray(caps) ? caps.map(String).sort() : []
    if (ctx.out.format !== 'table') ctx.out.keyValues([['capabilities', list]], list)
    else if (ctx.out.field !== undefined) ctx.out.raw(list, ctx.out.field)
    else ctx.io.stdout.write(`${list.join(', ')}\n`)
    return 0
  },
})

export const tokenCommand: Command = group(
  'token',
  `Usage: stint token <subcommand> [options] [args]

  Creates and manages tokens.

Subcommands:
  create          Create a child token
  lookup          Show a token's properties
  renew           Renew a token
  revoke          Revoke a token and its children
  capabilities    Show a token's capabilities on a path`,
  { create, lookup, renew, revoke, capabilities },
)
