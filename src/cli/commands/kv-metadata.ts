import { UsageError } from '../args.js'
import { command, group, type Command, type CommandContext } from '../command.js'
import { requireV2, resolveKvTarget } from '../kv-path.js'
import { noValue } from './generic.js'

const PATH_HELP = `  -mount=<path>    The KV mount (the path argument is then the key inside it).`

/** `max_versions`, `cas_required`, `delete_version_after`: only the flags that were given. */
function settingsFromFlags(ctx: CommandContext): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  const maxVersions = ctx.str('max-versions')
  if (maxVersions !== undefined) {
    if (!/^\d+$/.test(maxVersions)) throw new UsageError('-max-versions must be a number')
    body.max_versions = Number(maxVersions)
  }
  if (ctx.args.flags['cas-required'] !== undefined) body.cas_required = ctx.bool('cas-required')
  const after = ctx.str('delete-version-after')
  if (after !== undefined) body.delete_version_after = after
  return body
}

const get = command({
  name: 'kv metadata get',
  flags: ['mount'],
  help: `Usage: stint kv metadata get [options] <path>

  Prints a KV v2 secret's metadata and the state of each version.

${PATH_HELP}`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    requireV2(target, 'metadata get')
    const path = target.api('metadata')
    ctx.doing(`reading ${path}`)
    const { status, body } = await client.request('GET', path, { allow: [404] })
    if (status === 404 || !body?.data) return noValue(ctx, path)
    if (ctx.out.format !== 'table' || ctx.out.field !== undefined) {
      ctx.out.secret(body)
      return 0
    }
    const { versions, ...rest } = body.data as Record<string, unknown>
    ctx.out.info(`=== Metadata Path ===\n${path}\n\n========== Metadata ==========`)
    ctx.out.secret({ data: rest })
    const entries = Object.entries((versions ?? {}) as Record<string, Record<string, unknown>>)
    entries.sort(([a], [b]) => Number(a) - Number(b))
    for (const [version, info] of entries) {
      ctx.out.info(`\n====== Version ${version} ======`)
      ctx.out.secret({ data: info })
    }
    return 0
  },
})

const put = command({
  name: 'kv metadata put',
  flags: ['mount', 'max-versions', 'delete-version-after', 'custom-metadata'],
  help: `Usage: stint kv metadata put [options] <path>

  Sets a KV v2 secret's metadata (creating it if needed).

${PATH_HELP}
  -max-versions=<n>            Versions to keep (0: the mount's setting).
  -cas-required                Require check-and-set on every write.
  -delete-version-after=<dur>  Soft-delete versions after this long (e.g. 720h; 0s: never).
  -custom-metadata=<k=v>       Custom metadata (repeatable).`,
  booleans: ['cas-required'],
  args: [1, 1],
  async run(ctx) {
    const body = settingsFromFlags(ctx)
    const custom = ctx.map('custom-metadata')
    if (custom) body.custom_metadata = custom
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    requireV2(target, 'metadata put')
    const path = target.api('metadata')
    ctx.doing(`writing ${path}`)
    await client.request('PUT', path, { body })
    ctx.out.info(`Success! Data written to: ${path}`)
    return 0
  },
})

const patch = command({
  name: 'kv metadata patch',
  flags: [
    'mount',
    'max-versions',
    'delete-version-after',
    'custom-metadata',
    'remove-custom-metadata',
  ],
  help: `Usage: stint kv metadata patch [options] <path>

  Changes some of an existing KV v2 secret's metadata (a JSON merge patch): only the given
  settings change, and -custom-metadata keys are merged into the existing ones. Exits 2 with
  "No value found" if the secret has no metadata.

    $ stint kv metadata patch -max-versions=5 secret/app
    $ stint kv metadata patch -custom-metadata=owner=b -remove-custom-metadata=old secret/app

${PATH_HELP}
  -max-versions=<n>              Versions to keep (0: the mount's setting).
  -cas-required                  Require check-and-set on every write (=false: stop requiring).
  -delete-version-after=<dur>    Soft-delete versions after this long (e.g. 720h; 0s: never).
  -custom-metadata=<k=v>         Custom metadata to add or change (repeatable).
  -remove-custom-metadata=<key>  Custom metadata key to remove (repeatable).`,
  booleans: ['cas-required'],
  args: [1, 1],
  async run(ctx) {
    const body = settingsFromFlags(ctx)
    const custom: Record<string, string | null> = { ...ctx.map('custom-metadata') }
    for (const key of ctx.list('remove-custom-metadata')) custom[key] = null
    if (Object.keys(custom).length > 0) body.custom_metadata = custom
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    requireV2(target, 'metadata patch')
    const path = target.api('metadata')
    ctx.doing(`patching ${path}`)
    const { status } = await client.request('PATCH', path, {
      body,
      mergePatch: true,
      allow: [404],
    })
    if (status === 404) return noValue(ctx, path)
    ctx.out.info(`Success! Data written to: ${path}`)
    return 0
  },
})

const del = command({
  name: 'kv metadata delete',
  flags: ['mount'],
  help: `Usage: stint kv metadata delete [options] <path>

  Permanently deletes a KV v2 secret: every version and its metadata.

${PATH_HELP}`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const target = await resolveKvTarget(ctx, client, ctx.positionals[0]!)
    requireV2(target, 'metadata delete')
    const path = target.api('metadata')
    ctx.doing(`deleting ${path}`)
    await client.request('DELETE', path)
    ctx.out.info(`Success! Data deleted (if it existed) at: ${path}`)
    return 0
  },
})

export const kvMetadataCommand: Command = group(
  'kv metadata',
  `Usage: stint kv metadata <subcommand> [options] <path>

  Manages KV v2 secret metadata.

Subcommands:
  get       Read metadata and version states
  put       Set max versions, cas_required, delete_version_after, custom metadata
  patch     Change some metadata of an existing secret (merging custom metadata)
  delete    Delete the secret and all its versions`,
  { get, put, patch, delete: del },
)
