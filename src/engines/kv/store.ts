import { randomUUID } from 'node:crypto'
import type { CompiledQuery, Kysely } from 'kysely'
import type { Tables } from '../../storage/tables.js'
import type { Barrier } from '../../core/barrier.js'
import { nowMs, upsert, type Storage } from '../../storage/storage.js'
import {
  WriteConflict,
  emptyMetadata,
  isRetryable,
  toInfo,
  toMetadata,
  type KvConfig,
  type KvMetadata,
  type KvMetadataRow,
  type KvVersionInfo,
  type MetadataChanges,
} from './kv-rows.js'

export { WriteConflict } from './kv-rows.js'
export type { KvConfig, KvMetadata, KvVersionInfo, MetadataChanges } from './kv-rows.js'

/**
 * What a write decides from the path's current state. It may throw (cas mismatch, not found) and
 * returns the new secret data.
 */
export type WritePlan = (current: {
  meta: KvMetadata | undefined
  config: KvConfig
  /** Decrypted data of the current version; only loaded when `needsCurrent` is set. */
  data: Record<string, unknown> | undefined
  currentInfo: KvVersionInfo | undefined
}) => Record<string, unknown>

/**
 * Relational storage of one KV mount: metadata and versions are clear, values are sealed by the
 * barrier with `<metadata id>:<version>` as the row id, so a ciphertext cannot move to another
 * path or version. Listing reads only paths.
 */
export interface KvStore {
  getConfig(): Promise<KvConfig>
  setConfig(config: KvConfig): Promise<void>
  getMetadata(path: string): Promise<KvMetadata | undefined>
  /** Versions still stored for a path (trimmed ones are gone), oldest first, without values. */
  versions(path: string): Promise<KvVersionInfo[]>
  /**
   * Metadata plus one version (0 = current) and its decrypted data; `data` is undefined when the
   * version is destroyed. Undefined when the path has no metadata.
   */
  read(
    path: string,
    version: number,
  ): Promise<{ meta: KvMetadata; info?: KvVersionInfo; data?: Record<string, unknown> } | undefined>
  /**
   * Writes the next version in one transaction: conditional bump of `current_version` (so two
   * writers cannot both win), insert, trim past `max_versions`. Retries on lost races; `plan` is
   * called again each time and decides cas.
   */
  write(
    path: string,
    plan: WritePlan,
    options?: { needsCurrent?: boolean; singleVersion?: boolean },
  ): Promise<{ meta: KvMetadata; info: KvVersionInfo }>
  /** Creates or updates metadata without writing a version. */
  putMetadata(path: string, changes: MetadataChanges): Promise<void>
  /** Sets (`deletionTime` > 0) or clears the deletion time of existing, non-destroyed versions. */
  setDeletion(path: string, versions: number[], deletionTime: number): Promise<void>
  /** Destroys versions: the value is erased, `destroyed` set. */
  destroy(path: string, versions: number[]): Promise<void>
  /** Removes the path's metadata and every version. */
  deleteAll(path: string): Promise<void>
  /** Direct children of a folder (`''` or ending in `/`): keys, and sub-folders ending in `/`. */
  list(folder: string): Promise<string[]>
  /** Removes every row of the mount. */
  cleanup(): Promise<void>
}

const TABLE = 'kv_versions'
/** Upper bound for a prefix range: sorts after any character that can follow the prefix. */
const MAX_CHAR = '\u{10FFFF}'
const LIST_BATCH = 500
const WRITE_ATTEMPTS = 8
const DEFAULT_MAX_VERSIONS = 10
/** Stand-ins for the parameters of the precompiled read queries. */
const PATH_MARK = '\0kv-path\0'
const VERSION_MARK = -7_340_033

type ReadRow = KvMetadataRow & {
  v_version: number | null
  v_created_at: number | null
  v_deletion_time: number | null
  v_destroyed: number | null
  v_value: string | null
}

export function createKvStore(deps: {
  storage: Storage
  barrier: Pick<Barrier, 'encrypt' | 'decrypt'>
  mountId: string
}): KvStore {
  const { storage, barrier, mountId } = deps
  const db = storage.db

  const seal = (meta: { id: string }, version: number, data: Record<string, unknown>) =>
    barrier.encrypt(TABLE, 'value', `${meta.id}:${version}`, JSON.stringify(data))
  const open = (meta: { id: string }, version: number, value: string) =>
    JSON.parse(barrier.decrypt(TABLE, 'value', `${meta.id}:${version}`, value)) as Record<
      string,
      unknown
    >

  const getConfig = async (exec: Kysely<Tables> = db): Promise<KvConfig> => {
    const row = await exec
      .selectFrom('kv_config')
      .selectAll()
      .where('mount_id', '=', mountId)
      .executeTakeFirst()
    return {
      maxVersions: Number(row?.max_versions ?? 0),
      casRequired: Number(row?.cas_required ?? 0) === 1,
      deleteVersionAfter: Number(row?.delete_version_after ?? 0),
    }
  }

  // The read path is the hot one: build and compile its two query shapes once, then only swap
  // the parameters (Kysely's builder and compiler cost more than SQLite's lookup).
  const buildRead = (path: string, version: number | undefined) =>
    db
      .selectFrom('kv_metadata as m')
      .leftJoin('kv_versions as v', (join) => {
        const on = join.onRef('v.mount_id', '=', 'm.mount_id').onRef('v.path', '=', 'm.path')
        return version !== undefined
          ? on.on('v.version', '=', version)
          : on.onRef('v.version', '=', 'm.current_version')
      })
      .selectAll('m')
      .select([
        'v.version as v_version',
        'v.created_at as v_created_at',
        'v.deletion_time as v_deletion_time',
        'v.destroyed as v_destroyed',
        'v.value as v_value',
      ])
      .where('m.mount_id', '=', mountId)
      .where('m.path', '=', path)
  const compiledReads = new Map<boolean, CompiledQuery<ReadRow>>()
  const readQuery = (path: string, version: number): CompiledQuery<ReadRow> => {
    const pinned = version > 0
    let compiled = compiledReads.get(pinned)
    if (!compiled) {
      compiled = buildRead(
        PATH_MARK,
        pinned ? VERSION_MARK : undefined,
      ).compile() as CompiledQuery<ReadRow>
      compiledReads.set(pinned, compiled)
    }
    const parameters = compiled.parameters.map((p) =>
      p === PATH_MARK ? path : p === VERSION_MARK ? version : p,
    )
    return { ...compiled, parameters }
  }

  const metaQuery = (path: string) =>
    db
      .selectFrom('kv_metadata')
      .selectAll()
      .where('mount_id', '=', mountId)
      .where('path', '=', path)

  return {
    getConfig,

    async setConfig(config) {
      const values = {
        mount_id: mountId,
        max_versions: config.maxVersions,
        cas_required: config.casRequired ? 1 : 0,
        delete_version_after: config.deleteVersionAfter,
        updated_at: nowMs(),
      }
      await upsert(
        storage,
        'kv_config',
        values,
        ['mount_id'],
        ['max_versions', 'cas_required', 'delete_version_after', 'updated_at'],
      )
    },

    async getMetadata(path) {
      const row = await metaQuery(path).executeTakeFirst()
      return row ? toMetadata(row) : undefined
    },

    async versions(path) {
      const rows = await db
        .selectFrom('kv_versions')
        .select(['version', 'created_at', 'deletion_time', 'destroyed'])
        .where('mount_id', '=', mountId)
        .where('path', '=', path)
        .orderBy('version')
        .execute()
      return rows.map(toInfo)
    },

    async read(path, version) {
      const result = await db.executeQuery<ReadRow>(readQuery(path, version))
      const row = result.rows[0]
      if (!row) return undefined
      const meta = toMetadata(row)
      if (row.v_version === null || row.v_version === undefined) return { meta }
      const info = toInfo({
        version: row.v_version,
        created_at: row.v_created_at!,
        deletion_time: row.v_deletion_time!,
        destroyed: row.v_destroyed!,
      })
      const data = row.v_value ? open(meta, info.version, row.v_value) : undefined
      return { meta, info, data }
    },

    async write(path, plan, options = {}) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await db.transaction().execute(async (trx) => {
            const config = await getConfig(trx)
            const row = await trx
              .selectFrom('kv_metadata')
              .selectAll()
              .where('mount_id', '=', mountId)
              .where('path', '=', path)
              .executeTakeFirst()
            const meta = row ? toMetadata(row) : undefined
            let data: Record<string, unknown> | undefined
            let currentInfo: KvVersionInfo | undefined
            if (meta && meta.currentVersion > 0 && options.needsCurrent) {
              const current = await trx
                .selectFrom('kv_versions')
                .selectAll()
                .where('mount_id', '=', mountId)
                .where('path', '=', path)
                .where('version', '=', meta.currentVersion)
                .executeTakeFirst()
              if (current) {
                currentInfo = toInfo(current)
                if (current.value) data = open(meta, current.version, current.value)
              }
            }
            const next = plan({ meta, config, data, currentInfo })
            const now = nowMs()
            const previous = meta?.currentVersion ?? 0
            const version = options.singleVersion ? 1 : previous + 1
            const maxVersions = options.singleVersion
              ? 1
              : effectiveMaxVersions(meta?.maxVersions ?? 0, config.maxVersions)
            const trimBelow = version - maxVersions + 1
            let id: string
            let oldest = meta?.oldestVersion ?? 0
            if (trimBelow > 1 && !options.singleVersion) oldest = Math.max(oldest, trimBelow)
            if (!meta) {
              id = randomUUID()
              await trx
                .insertInto('kv_metadata')
                .values({
                  mount_id: mountId,
                  path,
                  id,
                  current_version: version,
                  oldest_version: oldest,
                  max_versions: 0,
                  cas_required: 0,
                  delete_version_after: 0,
                  custom_metadata: null,
                  created_at: now,
                  updated_at: now,
                })
                .execute()
            } else {
              id = meta.id
              const updated = await trx
                .updateTable('kv_metadata')
                .set({ current_version: version, oldest_version: oldest, updated_at: now })
                .where('mount_id', '=', mountId)
                .where('path', '=', path)
                .where('current_version', '=', previous)
                .executeTakeFirst()
              if (Number(updated.numUpdatedRows) !== 1) throw new WriteConflict()
            }
            const deleteAfter = minPositive(
              meta?.deleteVersionAfter ?? 0,
              config.deleteVersionAfter,
            )
            const info: KvVersionInfo = {
              version,
              createdAt: now,
              deletionTime: deleteAfter > 0 ? now + deleteAfter * 1000 : 0,
              destroyed: false,
            }
            if (options.singleVersion) {
              await trx
                .deleteFrom('kv_versions')
                .where('mount_id', '=', mountId)
                .where('path', '=', path)
                .execute()
            } else if (trimBelow > 1) {
              await trx
                .deleteFrom('kv_versions')
                .where('mount_id', '=', mountId)
                .where('path', '=', path)
                .where('version', '<', trimBelow)
                .execute()
            }
            await trx
              .insertInto('kv_versions')
              .values({
                mount_id: mountId,
                path,
                version,
                created_at: info.createdAt,
                deletion_time: info.deletionTime,
                destroyed: 0,
                value: seal({ id }, version, next),
              })
              .execute()
            const written: KvMetadata = {
              ...(meta ?? emptyMetadata(id, path, now)),
              currentVersion: version,
              oldestVersion: oldest,
              updatedAt: now,
            }
            return { meta: written, info }
          })
        } catch (err) {
          if (attempt < WRITE_ATTEMPTS && isRetryable(err)) {
            await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt))
            continue
          }
          throw err
        }
      }
    },

    async putMetadata(path, changes) {
      for (let attempt = 1; ; attempt++) {
        const now = nowMs()
        const set = {
          ...(changes.maxVersions !== undefined && { max_versions: changes.maxVersions }),
          ...(changes.casRequired !== undefined && { cas_required: changes.casRequired ? 1 : 0 }),
          ...(changes.deleteVersionAfter !== undefined && {
            delete_version_after: changes.deleteVersionAfter,
          }),
          ...(changes.customMetadata !== undefined && {
            custom_metadata: changes.customMetadata ? JSON.stringify(changes.customMetadata) : null,
          }),
          updated_at: now,
        }
        try {
          const updated = await db
            .updateTable('kv_metadata')
            .set(set)
            .where('mount_id', '=', mountId)
            .where('path', '=', path)
            .executeTakeFirst()
          if (Number(updated.numUpdatedRows) === 1) return
          await db
            .insertInto('kv_metadata')
            .values({
              mount_id: mountId,
              path,
              id: randomUUID(),
              current_version: 0,
              oldest_version: 0,
              max_versions: 0,
              cas_required: 0,
              delete_version_after: 0,
              custom_metadata: null,
              created_at: now,
              ...set,
            })
            .execute()
          return
        } catch (err) {
          if (attempt < WRITE_ATTEMPTS && isRetryable(err)) continue
          throw err
        }
      }
    },

    async setDeletion(path, versions, deletionTime) {
      if (versions.length === 0) return
      let query = db
        .updateTable('kv_versions')
        .set({ deletion_time: deletionTime })
        .where('mount_id', '=', mountId)
        .where('path', '=', path)
        .where('version', 'in', versions)
        .where('destroyed', '=', 0)
      // A version that is already deleted keeps its first deletion time.
      if (deletionTime > 0) {
        query = query.where((eb) =>
          eb.or([eb('deletion_time', '=', 0), eb('deletion_time', '>', deletionTime)]),
        )
      }
      await query.execute()
    },

    async destroy(path, versions) {
      if (versions.length === 0) return
      await db
        .updateTable('kv_versions')
        .set({ destroyed: 1, value: null })
        .where('mount_id', '=', mountId)
        .where('path', '=', path)
        .where('version', 'in', versions)
        .execute()
    },

    async deleteAll(path) {
      await db.transaction().execute(async (trx) => {
        await trx
          .deleteFrom('kv_versions')
          .where('mount_id', '=', mountId)
          .where('path', '=', path)
          .execute()
        await trx
          .deleteFrom('kv_metadata')
          .where('mount_id', '=', mountId)
          .where('path', '=', path)
          .execute()
      })
    },

    async list(folder) {
      const upper = folder + MAX_CHAR
      const keys: string[] = []
      let from = folder
      // Seek past each sub-folder instead of reading every path below it.
      for (;;) {
        const rows = await db
          .selectFrom('kv_metadata')
          .select('path')
          .where('mount_id', '=', mountId)
          .where('path', '>=', from)
          .where('path', '<', upper)
          .orderBy('path')
          .limit(LIST_BATCH)
          .execute()
        let jumped = false
        for (const { path } of rows) {
          if (!path.startsWith(folder)) continue
          const rest = path.slice(folder.length)
          const slash = rest.indexOf('/')
          if (slash === -1) {
            if (rest) keys.push(rest)
            continue
          }
          const sub = rest.slice(0, slash)
          keys.push(`${sub}/`)
          // '0' is the character right after '/': skips every path under `sub/`.
          from = `${folder}${sub}0`
          jumped = true
          break
        }
        if (!jumped) {
          if (rows.length < LIST_BATCH) break
          from = rows[rows.length - 1]!.path + '\0'
        }
      }
      return [...new Set(keys)].sort()
    },

    async cleanup() {
      await db.deleteFrom('kv_versions').where('mount_id', '=', mountId).execute()
      await db.deleteFrom('kv_metadata').where('mount_id', '=', mountId).execute()
      await db.deleteFrom('kv_config').where('mount_id', '=', mountId).execute()
    },
  }
}

/** Metadata's own limit, else the mount's, else Vault's default of 10. */
export function effectiveMaxVersions(own: number, mount: number): number {
  return own > 0 ? own : mount > 0 ? mount : DEFAULT_MAX_VERSIONS
}

function minPositive(a: number, b: number): number {
  if (a > 0 && b > 0) return Math.min(a, b)
  return a > 0 ? a : b
}
