import { UsageError } from './args.js'
import type { StintClient } from './client.js'
import type { CommandContext } from './command.js'

/** Where a `kv` command's secret lives: its mount, the key inside it, and the engine version. */
export interface KvTarget {
  /** Mount path with trailing slash, e.g. `secret/`. */
  mount: string
  /** Key relative to the mount, e.g. `app/db`. */
  key: string
  version: 1 | 2
  /** The API path for a v2 sub-tree (`data`, `metadata`, ...) or, for v1, the plain path. */
  api(kind: 'data' | 'metadata' | 'delete' | 'undelete' | 'destroy'): string
  /** What to print as "the secret's path". */
  display: string
}

/**
 * Resolves `kv <cmd> secret/app` or `kv <cmd> -mount=secret app`, detecting KV v1/v2 through
 * `GET sys/internal/ui/mounts/<path>` (`options.version`) as Vault's CLI does. A server that
 * has no such endpoint (404) is taken to serve KV v1 at the first path segment.
 */
export async function resolveKvTarget(
  ctx: CommandContext,
  client: StintClient,
  arg: string,
): Promise<KvTarget> {
  const flagMount = ctx.str('mount')
  const clean = (s: string) => s.replace(/^\/+/, '')
  if (clean(arg).split('/').includes('..')) throw new UsageError('Paths may not contain ".."')
  const full = flagMount ? `${clean(flagMount).replace(/\/+$/, '')}/${clean(arg)}` : clean(arg)
  if (!full || full === '/') throw new UsageError('A secret path is required')
  ctx.doing(`reading mount information for ${full}`)
  const preflight = await client.request('GET', `sys/internal/ui/mounts/${full}`, {
    allow: [404],
  })
  let mount: string
  let version: 1 | 2
  if (preflight.status === 404 || !preflight.body?.data) {
    mount = `${full.split('/')[0]}/`
    version = 1
  } else {
    const data = preflight.body.data
    mount = String(data.path ?? `${full.split('/')[0]}/`)
    if (!mount.endsWith('/')) mount += '/'
    version = String(data.options?.version ?? '1') === '2' ? 2 : 1
  }
  const withSlash = full.endsWith('/') ? full : `${full}/`
  const key =
    withSlash === mount
      ? ''
      : full.startsWith(mount)
        ? full.slice(mount.length)
        : full.slice(full.indexOf('/') + 1)
  return {
    mount,
    key,
    version,
    display: version === 2 ? `${mount}data/${key}` : `${mount}${key}`,
    api(kind) {
      return version === 2 ? `${mount}${kind}/${key}` : `${mount}${key}`
    },
  }
}

/** `-versions=1,2` as numbers (a usage error when malformed or, if `required`, missing). */
export function versionsFlag(ctx: CommandContext, required: boolean): number[] | undefined {
  const raw = ctx.list('versions')
  if (raw.length === 0) {
    if (required) throw new UsageError('No versions provided, use the "-versions" flag')
    return undefined
  }
  return raw.map((v) => {
    if (!/^\d+$/.test(v)) throw new UsageError(`Invalid version "${v}"`)
    return Number(v)
  })
}

/** Fails with a usage error when a v2-only command meets a v1 mount. */
export function requireV2(target: KvTarget, command: string): void {
  if (target.version !== 2) {
    throw new UsageError(
      `"kv ${command}" is only supported on KV version 2 mounts (${target.mount})`,
    )
  }
}
