import type { CoreServices } from '../../core/services.js'
import { badRequest } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'
import type { MountEntry } from '../../core/mounts.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import type { KvStore } from './store.js'
import { checkData, checkPath } from './kv-fields.js'

type Params = Record<string, string>

/**
 * KV version 1 (reference §7.2): one unversioned map per path. Reads report the mount's default
 * TTL, or the secret's own `ttl` key, as `lease_duration` without registering a lease.
 */
export function kvV1Paths(deps: {
  store: KvStore
  core: Pick<CoreServices, 'mountTtls'>
  mount: MountEntry
}): PathDef[] {
  const { store, core, mount } = deps

  const read = async (_req: LogicalRequest, params: Params): Promise<LogicalResponse | null> => {
    const path = checkPath(params.path ?? '', 'secret')
    const hit = await store.read(path, 0)
    if (!hit?.data) return null
    let ttl = core.mountTtls(mount).defaultTtl
    const own = hit.data.ttl ?? hit.data.lease
    if (own !== undefined) {
      try {
        ttl = parseDuration(own, 'ttl')
      } catch {
        // Checked on write; a value stored by an older version falls back to the mount TTL.
      }
    }
    return { data: hit.data, secret: { leaseId: '', ttl, renewable: false } }
  }

  const write = async (req: LogicalRequest, params: Params) => {
    const path = checkPath(params.path ?? '', 'secret')
    const data = checkData(req.data)
    if (Object.keys(data).length === 0) throw badRequest('missing data fields')
    if (data.ttl !== undefined) parseDuration(data.ttl, 'ttl')
    await store.write(path, () => data, { singleVersion: true })
    return null
  }

  const remove = async (_req: LogicalRequest, params: Params) => {
    await store.deleteAll(checkPath(params.path ?? '', 'secret'))
    return null
  }

  const list = async (_req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const folder = checkPath(params.path ?? '', 'folder')
    return { data: { keys: await store.list(folder) } }
  }

  const exists = async (_req: LogicalRequest, params: Params) => {
    const path = params.path ?? ''
    try {
      checkPath(path, 'secret')
    } catch {
      return false
    }
    return (await store.getMetadata(path)) !== undefined
  }

  return [
    {
      pattern: /^(?<path>.*)$/,
      operations: { read, list, create: write, update: write, delete: remove },
      existence: exists,
    },
  ]
}
