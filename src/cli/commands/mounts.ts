import { UsageError } from '../args.js'
import { command, group, type Command, type CommandContext } from '../command.js'

type Kind = 'secrets' | 'auth'

interface KindInfo {
  api: string
  noun: string
  example: string
}

const KINDS: Record<Kind, KindInfo> = {
  secrets: {
    api: 'sys/mounts',
    noun: 'secrets engine',
    example: 'stint secrets enable -path=kv -version=2 kv',
  },
  auth: { api: 'sys/auth', noun: 'auth method', example: 'stint auth enable -path=ci jwt' },
}

/** The fields of a `sys/mounts` / `sys/auth` entry that listings show. */
interface MountInfo {
  type?: string
  accessor?: string
  description?: string
  options?: Record<string, string> | null
  config?: { default_lease_ttl?: number; max_lease_ttl?: number }
}

const TTL_FLAGS = `  -description=<text>         Description shown in listings.
  -default-lease-ttl=<dur>    Default lease TTL (e.g. 1h; "system" for the server's).
  -max-lease-ttl=<dur>        Maximum lease TTL.`

/** `/path/` → `path/`, refusing empty paths and `..` segments. */
function mountPath(raw: string): string {
  const path = raw.replace(/^\/+/, '').replace(/\/*$/, '/')
  if (path === '/' || path.split('/').includes('..')) throw new UsageError(`Invalid path "${raw}"`)
  return path
}

/** The `config` object shared by enable and tune. */
function ttlConfig(ctx: CommandContext): Record<string, unknown> {
  const config: Record<string, unknown> = {}
  const def = ctx.str('default-lease-ttl')
  const max = ctx.str('max-lease-ttl')
  if (def !== undefined) config.default_lease_ttl = def
  if (max !== undefined) config.max_lease_ttl = max
  return config
}

function enable(kind: Kind): Command {
  const { api, noun, example } = KINDS[kind]
  return command({
    name: `${kind} enable`,
    flags: [
      'path',
      'description',
      'default-lease-ttl',
      'max-lease-ttl',
      'options',
      ...(kind === 'secrets' ? ['version'] : []),
    ],
    help: `Usage: stint ${kind} enable [options] <type>

  Enables a ${noun} at a path (default: its type).

    $ ${example}

  -path=<path>                Where to mount it.
${TTL_FLAGS}${kind === 'secrets' ? '\n  -version=<n>                KV version (kv engines only).' : ''}
  -options=<k=v>              Engine options (repeatable).`,
    args: [1, 1],
    async run(ctx) {
      const type = ctx.positionals[0]!
      const path = mountPath(ctx.str('path') ?? type)
      const body: Record<string, unknown> = { type }
      const description = ctx.str('description')
      if (description !== undefined) body.description = description
      const config = ttlConfig(ctx)
      if (Object.keys(config).length) body.config = config
      const options = ctx.map('options') ?? {}
      const version = kind === 'secrets' ? ctx.str('version') : undefined
      if (version !== undefined) {
        if (!/^[12]$/.test(version)) throw new UsageError('-version must be 1 or 2')
        options.version = version
      }
      if (Object.keys(options).length) body.options = options
      const client = await ctx.client()
      ctx.doing(`enabling ${noun}`)
      await client.request('POST', `${api}/${path}`, { body })
      ctx.out.info(`Success! Enabled the ${type} ${noun} at: ${path}`)
      return 0
    },
  })
}

function disable(kind: Kind): Command {
  const { api, noun } = KINDS[kind]
  return command({
    name: `${kind} disable`,
    flags: [],
    help: `Usage: stint ${kind} disable [options] <path>

  Disables the ${noun} at a path.${
    kind === 'secrets'
      ? ' Every lease issued under it is revoked first.'
      : ' Every token it issued is revoked.'
  }`,
    args: [1, 1],
    async run(ctx) {
      const path = mountPath(ctx.positionals[0]!)
      const client = await ctx.client()
      ctx.doing(`disabling ${noun} at ${path}`)
      await client.request('DELETE', `${api}/${path}`)
      ctx.out.info(`Success! Disabled the ${noun} (if it existed) at: ${path}`)
      return 0
    },
  })
}

function list(kind: Kind): Command {
  const { api, noun } = KINDS[kind]
  return command({
    name: `${kind} list`,
    flags: [],
    help: `Usage: stint ${kind} list [options]

  Lists the enabled ${noun}s.

  -detailed    Also show TTLs, options and UUIDs.`,
    booleans: ['detailed'],
    async run(ctx) {
      const client = await ctx.client()
      ctx.doing(`listing ${noun}s`)
      const { body } = await client.request('GET', api)
      const mounts = (body?.data ?? {}) as Record<string, MountInfo>
      const paths = Object.keys(mounts).sort()
      const detailed = ctx.bool('detailed')
      const header = detailed
        ? ['Path', 'Type', 'Accessor', 'Default TTL', 'Max TTL', 'Options', 'Description']
        : ['Path', 'Type', 'Accessor', 'Description']
      const rows = paths.map((p) => {
        const m = mounts[p]!
        const base = [p, m.type, m.accessor]
        const ttl = (v: unknown) => (v ? String(v) : 'system')
        return detailed
          ? [
              ...base,
              ttl(m.config?.default_lease_ttl),
              ttl(m.config?.max_lease_ttl),
              m.options ?? 'n/a',
              m.description || 'n/a',
            ]
          : [...base, m.description || 'n/a']
      })
      if (ctx.out.field !== undefined) throw new UsageError('-field is not supported here')
      ctx.out.columns(header, rows, mounts)
      return 0
    },
  })
}

function tune(kind: Kind): Command {
  const { api, noun } = KINDS[kind]
  return command({
    name: `${kind} tune`,
    flags: ['description', 'default-lease-ttl', 'max-lease-ttl', 'options'],
    help: `Usage: stint ${kind} tune [options] <path>

  Changes the settings of the ${noun} at a path.

${TTL_FLAGS}
  -options=<k=v>              Options to set (repeatable).`,
    args: [1, 1],
    async run(ctx) {
      const path = mountPath(ctx.positionals[0]!)
      const body = ttlConfig(ctx)
      const description = ctx.str('description')
      if (description !== undefined) body.description = description
      const options = ctx.map('options')
      if (options) body.options = options
      if (Object.keys(body).length === 0)
        throw new UsageError('Nothing to tune: give at least one option')
      const client = await ctx.client()
      ctx.doing(`tuning ${noun} ${path}`)
      await client.request('POST', `${api}/${path}tune`, { body })
      ctx.out.info(`Success! Tuned the ${noun} at: ${path}`)
      return 0
    },
  })
}

function mountCommand(kind: Kind): Command {
  const { noun } = KINDS[kind]
  return group(
    kind,
    `Usage: stint ${kind} <subcommand> [options] [args]

  Manages ${noun}s.

Subcommands:
  enable     Enable a ${noun}
  disable    Disable a ${noun}
  list       List ${noun}s
  tune       Change a ${noun}'s settings`,
    { enable: enable(kind), disable: disable(kind), list: list(kind), tune: tune(kind) },
  )
}

export const secretsCommand: Command = mountCommand('secrets')
export const authCommand: Command = mountCommand('auth')
