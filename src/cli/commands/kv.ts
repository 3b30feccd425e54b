import { UsageError } from '../args.js'
import { command, group, type Command, type CommandContext } from '../command.js'
import { parseDataArgs } from '../data-args.js'
import { requireV2, resolveKvTarget, versionsFlag, type KvTarget } from '../kv-path.js'
import type { Envelope } from '../output.js'
import { noValue } from './generic.js'
import { kvMetadataCommand } from './kv-metadata.js'

const PATH_HELP = `  The path is <mount>/<key> (stint kv get secret/app) or, with -mount, the key alone
  (stint kv get -mount=secret app). KV v1 and v2 mounts are detected automatically.

  -mount=<path>    The KV mount (the path argument is then the key inside it).`

/** Prints a v2 section header followed by a blank line, as Vault's kv commands do. */
function section(ctx: CommandContext, title: string, first = false): void {
  ctx.out.info(`${first ? '' : '\n'}${'='.repeat(6)} ${title} ${'='.repeat(6)}`)
}

/** `kv put`/`kv patch` answers with the new version's metadata. */
function printWriteResult(ctx: CommandContext, target: KvTarget, body: Envelope | null): number {
  if (!body) {
    ctx.out.info(`Success! Data written to: ${target.display}`)
    return 0
  }
  if (ctx.out.format === 'table' && ctx.out.field === undefined) {
    section(ctx, 'Secret Path', true)
    ctx.out.info(target.display)
    section(ctx, 'Metadata')
  }
  ctx.out.secret(body)
  return 0
}

const get = command({
  name: 'kv get',
  flags: ['mount', 'version'],
  help: `Usage: stint kv get [options] <path>

  Reads a secret. On KV v2 prints the version's metadata, then its data.

${PATH_HELP}
  -version=<n>     Version to read (default: latest; v2 only).`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    const version = ctx.str('version')
    if (version !== undefined && !/^\d+$/.test(version))
      throw new UsageError('-version must be a number')
    if (version !== undefined) requireV2(target, 'get -version')
    ctx.doing(`reading ${target.display}`)
    const { status, body } = await client.request('GET', target.api('data'), {
      query: version ? { version } : undefined,
      allow: [404],
    })
    if (target.version === 1) {
      if (status === 404 || !body) return noValue(ctx, target.display)
      ctx.out.secret(body)
      return 0
    }
    const metadata = body?.data?.metadata
    const data = body?.data?.data
    if (!metadata) return noValue(ctx, target.display)
    if (ctx.out.format !== 'table') {
      if (ctx.out.field !== undefined) ctx.out.secret({ data: data ?? {} })
      else ctx.out.keyValues([], body)
      return status === 404 ? 2 : 0
    }
    if (ctx.out.field !== undefined) {
      if (!data) return noValue(ctx, target.display)
      ctx.out.secret({ data })
      return 0
    }
    ctx.out.warnings(body.warnings)
    section(ctx, 'Secret Path', true)
    ctx.out.info(target.display)
    section(ctx, 'Metadata')
    ctx.out.secret({ data: metadata })
    if (!data) {
      const why = metadata.destroyed ? 'destroyed' : 'deleted'
      ctx.io.stderr.write(`\nVersion ${String(metadata.version)} of ${target.display} is ${why}\n`)
      return 2
    }
    section(ctx, 'Data')
    ctx.out.secret({ data })
    return 0
  },
})

const put = command({
  name: 'kv put',
  flags: ['mount', 'cas'],
  help: `Usage: stint kv put [options] <path> key=value... | -

  Writes a secret (a new version on KV v2). Values: key=value, key=@file, key=- (stdin), or a
  lone "-" to read a JSON object from stdin.

${PATH_HELP}
  -cas=<n>         Check-and-set: write only if the current version is n (0: only if absent).`,
  args: [2, Infinity],
  async run(ctx) {
    const [path, ...items] = ctx.positionals as [string, ...string[]]
    const data = await parseDataArgs(ctx.io, items)
    const cas = ctx.str('cas')
    if (cas !== undefined && !/^-?\d+$/.test(cas)) throw new UsageError('-cas must be a number')
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, path)
    ctx.doing(`writing data to ${target.display}`)
    const body =
      target.version === 2
        ? {
            data,
            ...(cas !== undefined && Number(cas) >= 0 ? { options: { cas: Number(cas) } } : {}),
          }
        : data
    const result = await client.request('PUT', target.api('data'), { body })
    return printWriteResult(ctx, target, result.status === 204 ? null : result.body)
  },
})

const patch = command({
  name: 'kv patch',
  flags: ['mount', 'cas'],
  help: `Usage: stint kv patch [options] <path> key=value...

  Merges new keys into the latest version of a KV v2 secret (a JSON merge patch), making a new
  version. Exits 2 with "No value found" if the secret does not exist (or its latest version is
  deleted).

${PATH_HELP}
  -cas=<n>         Check-and-set against the current version.`,
  args: [2, Infinity],
  async run(ctx) {
    const [path, ...items] = ctx.positionals as [string, ...string[]]
    const data = await parseDataArgs(ctx.io, items)
    const cas = ctx.str('cas')
    if (cas !== undefined && !/^\d+$/.test(cas)) throw new UsageError('-cas must be a number')
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, path)
    requireV2(target, 'patch')
    ctx.doing(`patching ${target.display}`)
    const body = { data, ...(cas !== undefined ? { options: { cas: Number(cas) } } : {}) }
    const result = await client.request('PATCH', target.api('data'), {
      body,
      mergePatch: true,
      allow: [404],
    })
    // 404: no secret (or its latest version is deleted or destroyed), as `kv get` reports it.
    if (result.status === 404) return noValue(ctx, target.display)
    return printWriteResult(ctx, target, result.status === 204 ? null : result.body)
  },
})

const del = command({
  name: 'kv delete',
  flags: ['mount', 'versions'],
  help: `Usage: stint kv delete [options] <path>

  Deletes a secret. On KV v2 this is a soft delete of the latest version (or of -versions),
  which "kv undelete" reverses.

${PATH_HELP}
  -versions=<n,...>  Versions to delete (v2).`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    const versions = versionsFlag(ctx, false)
    if (versions) requireV2(target, 'delete -versions')
    ctx.doing(`deleting ${target.display}`)
    if (versions) {
      const { status } = await client.request('PUT', target.api('delete'), {
        body: { versions },
        allow: [404],
      })
      if (status === 404) return noValue(ctx, target.display)
    } else {
      await client.request('DELETE', target.api('data'))
    }
    ctx.out.info(`Success! Data deleted (if it existed) at: ${target.display}`)
    return 0
  },
})

/** `kv undelete` and `kv destroy`: a v2 versions operation. */
function versionsCommand(name: 'undelete' | 'destroy', help: string, done: string): Command {
  return command({
    name: `kv ${name}`,
    flags: ['mount', 'versions'],
    help,
    args: [1, 1],
    async run(ctx) {
      const versions = versionsFlag(ctx, true)!
      const client = await ctx.client()
      const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
      requireV2(target, name)
      ctx.doing(`${name === 'destroy' ? 'destroying' : 'undeleting'} ${target.display}`)
      const { status } = await client.request('PUT', target.api(name), {
        body: { versions },
        allow: [404],
      })
      if (status === 404) return noValue(ctx, target.display)
      ctx.out.info(`Success! ${done} at: ${target.display}`)
      return 0
    },
  })
}

const undelete = versionsCommand(
  'undelete',
  `Usage: stint kv undelete -versions=<n,...> [options] <path>

  Restores soft-deleted versions of a KV v2 secret.

${PATH_HELP}
  -versions=<n,...>  Versions to restore (required).`,
  'Restored versions',
)

const destroy = versionsCommand(
  'destroy',
  `Usage: stint kv destroy -versions=<n,...> [options] <path>

  Permanently removes the data of versions of a KV v2 secret (metadata is kept).

${PATH_HELP}
  -versions=<n,...>  Versions to destroy (required).`,
  'Destroyed versions',
)

const list = command({
  name: 'kv list',
  flags: ['mount'],
  help: `Usage: stint kv list [options] <path>

  Lists the keys under a path of a KV mount (folders end in "/").

${PATH_HELP}`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    const path = target.api('metadata')
    ctx.doing(`listing ${path}`)
    const result = await client.list(path, { allow: [404] })
    const keys = result.body?.data?.keys
    if (result.status === 404 || !Array.isArray(keys) || keys.length === 0) {
      return noValue(ctx, path.endsWith('/') ? path : `${path}/`)
    }
    if (ctx.out.field !== undefined) ctx.out.secret(result.body)
    else ctx.out.keys(keys.map(String), keys)
    return 0
  },
})

export const kvCommand: Command = group(
  'kv',
  `Usage: stint kv <subcommand> [options] [args]

  Reads and writes secrets in KV v1 and v2 mounts.

    $ stint kv put secret/app password=hunter2
    $ stint kv get -version=1 secret/app
    $ stint kv get -mount=secret -field=password app

Subcommands:
  get         Read a secret (v2: a version)
  put         Write a secret (v2: a new version)
  patch       Merge keys into the latest version (v2)
  delete      Delete a secret (v2: soft delete)
  undelete    Restore soft-deleted versions (v2)
  destroy     Permanently destroy versions (v2)
  list        List keys
  metadata    Read, write, patch or delete a secret's metadata (v2)`,
  {
    get,
    put,
    patch,
    delete: del,
    undelete,
    destroy,
    list,
    metadata: kvMetadataCommand,
  },
)
