/**
 * Storage of the KV engine: its tables (declared next to this code), the shapes the engine works
 * with, and the mapping between the two.
 */

declare module '../../storage/tables.js' {
  interface Tables {
    kv_config: KvConfigRow
    kv_metadata: KvMetadataRow
    kv_versions: KvVersionRow
  }
}

export interface KvConfigRow {
  mount_id: string
  max_versions: number
  cas_required: number
  delete_version_after: number
  updated_at: number
}

export interface KvMetadataRow {
  mount_id: string
  path: string
  id: string
  current_version: number
  oldest_version: number
  max_versions: number
  cas_required: number
  delete_version_after: number
  custom_metadata: string | null
  created_at: number
  updated_at: number
}

export interface KvVersionRow {
  mount_id: string
  path: string
  version: number
  created_at: number
  deletion_time: number
  destroyed: number
  value: string | null
}

/** A mount's KV v2 settings (`<mount>/config`). Durations in seconds. */
export interface KvConfig {
  maxVersions: number
  casRequired: boolean
  deleteVersionAfter: number
}

/** Per-path metadata (`<mount>/metadata/<path>`). Times are epoch ms. */
export interface KvMetadata {
  /** Random per-path id; part of every version's associated data. */
  id: string
  path: string
  currentVersion: number
  oldestVersion: number
  maxVersions: number
  casRequired: boolean
  deleteVersionAfter: number
  customMetadata: Record<string, string> | null
  createdAt: number
  updatedAt: number
}

/** One version's state. `deletionTime` is epoch ms, 0 when not deleted (it may lie in the future). */
export interface KvVersionInfo {
  version: number
  createdAt: number
  deletionTime: number
  destroyed: boolean
}

/** Settings a metadata write may change; `undefined` keeps the current value. */
export type MetadataChanges = Partial<
  Pick<KvMetadata, 'maxVersions' | 'casRequired' | 'deleteVersionAfter' | 'customMetadata'>
>

/** Raised inside a write transaction when another writer changed the path first. */
export class WriteConflict extends Error {
  constructor() {
    super('concurrent write')
    this.name = 'WriteConflict'
  }
}

export function emptyMetadata(id: string, path: string, now: number): KvMetadata {
  return {
    id,
    path,
    currentVersion: 0,
    oldestVersion: 0,
    maxVersions: 0,
    casRequired: false,
    deleteVersionAfter: 0,
    customMetadata: null,
    createdAt: now,
    updatedAt: now,
  }
}

export function toMetadata(row: KvMetadataRow): KvMetadata {
  return {
    id: row.id,
    path: row.path,
    currentVersion: Number(row.current_version),
    oldestVersion: Number(row.oldest_version),
    maxVersions: Number(row.max_versions),
    casRequired: Number(row.cas_required) === 1,
    deleteVersionAfter: Number(row.delete_version_after),
    customMetadata: row.custom_metadata
      ? (JSON.parse(row.custom_metadata) as Record<string, string>)
      : null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  }
}

export function toInfo(
  row: Pick<KvVersionRow, 'version' | 'created_at' | 'deletion_time' | 'destroyed'>,
) {
  return {
    version: Number(row.version),
    createdAt: Number(row.created_at),
    deletionTime: Number(row.deletion_time),
    destroyed: Number(row.destroyed) === 1,
  }
}

/** Lost races: our own conflict, unique violations, deadlocks and serialization failures. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof WriteConflict) return true
  const e = err as { code?: unknown; errno?: unknown; message?: unknown }
  const code = String(e?.code ?? '')
  if (
    [
      '23505',
      '40001',
      '40P01',
      'ER_DUP_ENTRY',
      'ER_LOCK_DEADLOCK',
      'SQLITE_CONSTRAINT_PRIMARYKEY',
    ].includes(code)
  ) {
    return true
  }
  return [1062, 1213].includes(Number(e?.errno))
}
