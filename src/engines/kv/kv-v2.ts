import { nowMs } from '../../storage/storage.js'
import { ApiError, badRequest } from '../../core/errors.js'
import { optionalBool, optionalInt } from '../../core/fields.js'
import { parseDuration } from '../../core/duration.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import type { KvMetadata, KvStore, KvVersionInfo, WritePlan } from './store.js'
import {
  checkCustomMetadata,
  checkData,
  checkPath,
  goDuration,
  parseCas,
  parseVersions,
  rfc3339,
} from './kv-fields.js'
import { mergePatch } from './merge-patch.js'
import { subkeys } from './subkeys.js'

type Params = Record<string, string>

/**
 * KV version 2 paths, relative to the mount: `config`, `data/`, `delete/`, `undelete/`,
 * `destroy/`, `metadata/` and `subkeys/`, answering as Vault does (reference §7.1).
 */
export function kvV2Paths(store: KvStore): PathDef[] {
  const secretPath = (params: Params) => checkPath(params.path ?? '', 'secret')
  const exists = async (_req: LogicalRequest, params: Params) => {
    // An invalid path "does not exist"; the handler then answers 400 after the ACL check.
    const path = params.path ?? ''
    try {
      checkPath(path, 'secret')
    } catch {
      return false
    }
    return (await store.getMetadata(path)) !== undefined
  }

  const readConfig = async (): Promise<LogicalResponse> => {
    const config = await store.getConfig()
    return {
      data: {
        cas_required: config.casRequired,
        delete_version_after: goDuration(config.deleteVersionAfter),
        max_versions: config.maxVersions,
      },
    }
  }

  const writeConfig = async (req: LogicalRequest) => {
    const current = await store.getConfig()
    const d = req.data
    await store.setConfig({
      maxVersions: optionalInt(d.max_versions, 'max_versions') ?? current.maxVersions,
      casRequired: optionalBool(d.cas_required, 'cas_required') ?? current.casRequired,
      deleteVersionAfter:
        d.delete_version_after === undefined
          ? current.deleteVersionAfter
          : parseDuration(d.delete_version_after, 'delete_version_after'),
    })
    return null
  }

  const readData = async (req: LogicalRequest, params: Params): Promise<LogicalResponse | null> => {
    const path = secretPath(params)
    const version = optionalInt(req.data.version, 'version') ?? 0
    const hit = await store.read(path, version)
    if (!hit?.info) return null
    const metadata = versionMetadata(hit.meta, hit.info)
    if (isGone(hit.info) || !hit.data) return { status: 404, data: { data: null, metadata } }
    return { data: { data: hit.data, metadata } }
  }

  const casCheck = (cas: number | undefined, meta: KvMetadata | undefined, required: boolean) => {
    if (cas === undefined && (required || meta?.casRequired)) {
      throw badRequest('check-and-set parameter required for this call')
    }
    if (cas !== undefined && cas !== (meta?.currentVersion ?? 0)) {
      throw badRequest('check-and-set parameter did not match the current version')
    }
  }

  const writeData = async (req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const path = secretPath(params)
    const data = checkData(req.data.data)
    const cas = parseCas(req.data.options)
    const plan: WritePlan = ({ meta, config }) => {
      casCheck(cas, meta, config.casRequired)
      return data
    }
    const { meta, info } = await store.write(path, plan)
    return { data: versionMetadata(meta, info) }
  }

  const patchData = async (req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const path = secretPath(params)
    const patch = checkData(req.data.data)
    const cas = parseCas(req.data.options)
    const plan: WritePlan = ({ meta, config, data, currentInfo }) => {
      if (!meta || !currentInfo || !data || isGone(currentInfo)) throw new ApiError(404)
      casCheck(cas, meta, config.casRequired)
      return checkData(mergePatch(data, patch))
    }
    const { meta, info } = await store.write(path, plan, { needsCurrent: true })
    return { data: versionMetadata(meta, info) }
  }

  const deleteLatest = async (_req: LogicalRequest, params: Params) => {
    const path = secretPath(params)
    const meta = await store.getMetadata(path)
    if (meta && meta.currentVersion > 0) {
      await store.setDeletion(path, [meta.currentVersion], nowMs())
    }
    return null
  }

  /** Checks that every requested version is stored for the path, so a typo changes nothing. */
  const knownVersions = async (req: LogicalRequest, params: Params) => {
    const path = secretPath(params)
    const versions = parseVersions(req.data.versions)
    const meta = await store.getMetadata(path)
    if (!meta) throw new ApiError(404)
    const stored = new Set((await store.versions(path)).map((v) => v.version))
    const unknown = versions.filter((v) => !stored.has(v))
    if (unknown.length > 0) throw badRequest(`unknown version(s): ${unknown.join(', ')}`)
    return { path, versions }
  }

  const deleteVersions = async (req: LogicalRequest, params: Params) => {
    const { path, versions } = await knownVersions(req, params)
    await store.setDeletion(path, versions, nowMs())
    return null
  }

  const undeleteVersions = async (req: LogicalRequest, params: Params) => {
    const { path, versions } = await knownVersions(req, params)
    await store.setDeletion(path, versions, 0)
    return null
  }

  const destroyVersions = async (req: LogicalRequest, params: Params) => {
    const { path, versions } = await knownVersions(req, params)
    await store.destroy(path, versions)
    return null
  }

  const readMetadata = async (
    _req: LogicalRequest,
    params: Params,
  ): Promise<LogicalResponse | null> => {
    const path = secretPath(params)
    const meta = await store.getMetadata(path)
    if (!meta) return null
    const versions: Record<string, unknown> = {}
    for (const v of await store.versions(path)) {
      versions[String(v.version)] = {
        created_time: rfc3339(v.createdAt),
        deletion_time: rfc3339(v.deletionTime),
        destroyed: v.destroyed,
      }
    }
    return {
      data: {
        cas_required: meta.casRequired,
        created_time: rfc3339(meta.createdAt),
        current_version: meta.currentVersion,
        custom_metadata: meta.customMetadata,
        delete_version_after: goDuration(meta.deleteVersionAfter),
        max_versions: meta.maxVersions,
        oldest_version: meta.oldestVersion,
        updated_time: rfc3339(meta.updatedAt),
        versions,
      },
    }
  }

  const metadataChanges = (d: Record<string, unknown>) => ({
    maxVersions: optionalInt(d.max_versions, 'max_versions'),
    casRequired: optionalBool(d.cas_required, 'cas_required'),
    deleteVersionAfter:
      d.delete_version_after === undefined
        ? undefined
        : parseDuration(d.delete_version_after, 'delete_version_after'),
    customMetadata: checkCustomMetadata(d.custom_metadata),
  })

  const writeMetadata = async (req: LogicalRequest, params: Params) => {
    const path = secretPath(params)
    await store.putMetadata(path, metadataChanges(req.data))
    return null
  }

  const patchMetadata = async (req: LogicalRequest, params: Params) => {
    const path = secretPath(params)
    const meta = await store.getMetadata(path)
    if (!meta) throw new ApiError(404)
    const changes = metadataChanges({ ...req.data, custom_metadata: undefined })
    if (req.data.custom_metadata !== undefined) {
      const merged = mergePatch(meta.customMetadata ?? {}, req.data.custom_metadata)
      changes.customMetadata = checkCustomMetadata(merged)
    }
    await store.putMetadata(path, changes)
    return null
  }

  const deleteMetadata = async (_req: LogicalRequest, params: Params) => {
    await store.deleteAll(secretPath(params))
    return null
  }

  const listMetadata = async (_req: LogicalRequest, params: Params): Promise<LogicalResponse> => {
    const folder = checkPath(params.path ?? '', 'folder')
    return { data: { keys: await store.list(folder) } }
  }

  const readSubkeys = async (
    req: LogicalRequest,
    params: Params,
  ): Promise<LogicalResponse | null> => {
    const path = secretPath(params)
    const version = optionalInt(req.data.version, 'version') ?? 0
    const depth = optionalInt(req.data.depth, 'depth') ?? 0
    const hit = await store.read(path, version)
    if (!hit?.info) return null
    const metadata = versionMetadata(hit.meta, hit.info)
    if (isGone(hit.info) || !hit.data) return { status: 404, data: { subkeys: null, metadata } }
    return { data: { subkeys: subkeys(hit.data, depth), metadata } }
  }

  return [
    { pattern: /^config$/, operations: { read: readConfig, update: writeConfig } },
    {
      pattern: /^data\/(?<path>.*)$/,
      operations: {
        read: readData,
        create: writeData,
        update: writeData,
        patch: patchData,
        delete: deleteLatest,
      },
      existence: exists,
    },
    { pattern: /^delete\/(?<path>.*)$/, operations: { update: deleteVersions } },
    { pattern: /^undelete\/(?<path>.*)$/, operations: { update: undeleteVersions } },
    { pattern: /^destroy\/(?<path>.*)$/, operations: { update: destroyVersions } },
    {
      pattern: /^metadata\/(?<path>.*)$/,
      operations: {
        read: readMetadata,
        list: listMetadata,
        create: writeMetadata,
        update: writeMetadata,
        patch: patchMetadata,
        delete: deleteMetadata,
      },
      existence: exists,
    },
    { pattern: /^subkeys\/(?<path>.*)$/, operations: { read: readSubkeys } },
  ]
}

/** Soft-deleted (deletion time reached, including `delete_version_after`) or destroyed. */
function isGone(info: KvVersionInfo): boolean {
  return info.destroyed || (info.deletionTime > 0 && info.deletionTime <= nowMs())
}

function versionMetadata(meta: KvMetadata, info: KvVersionInfo): Record<string, unknown> {
  return {
    created_time: rfc3339(info.createdAt),
    custom_metadata: meta.customMetadata,
    deletion_time: rfc3339(info.deletionTime),
    destroyed: info.destroyed,
    version: info.version,
  }
}
