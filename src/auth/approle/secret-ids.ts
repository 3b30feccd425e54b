import { randomUUID } from 'node:crypto'
import type { CoreServices } from '../../core/services.js'
import { nowMs } from '../../storage/storage.js'
import { badRequest } from '../../core/errors.js'

declare module '../../storage/tables.js' {
  interface Tables {
    approle_secret_ids: SecretIdRow
  }
}

interface SecretIdRow {
  /** Keyed hash of (mount, role, secret id): the secret id itself is never stored. */
  id: string
  mount_id: string
  role_name: string
  accessor: string
  metadata: string
  cidr_list: string
  token_bound_cidrs: string
  /** Uses granted at creation; 0 = unlimited. */
  num_uses: number
  /** Uses left (meaningful when num_uses > 0). */
  remaining_uses: number
  ttl: number
  expires_at: number | null
  created_at: number
  updated_at: number
}

/** A stored secret-id, as much of it as exists: its accessor, bindings and counters. */
export interface SecretIdEntry {
  id: string
  roleName: string
  accessor: string
  metadata: Record<string, string>
  cidrList: string[]
  tokenBoundCidrs: string[]
  numUses: number
  remainingUses: number
  ttl: number
  expiresAt: number | null
  createdAt: number
  updatedAt: number
}

export interface NewSecretId {
  roleName: string
  secretId: string
  metadata: Record<string, string>
  cidrList: string[]
  tokenBoundCidrs: string[]
  numUses: number
  /** Seconds; 0 = never expires. */
  ttl: number
}

/**
 * Secret-ids of one AppRole mount. Lookups go by keyed hash; `consume` spends one use with a
 * conditional UPDATE so a `num_uses=1` secret-id works exactly once under concurrent logins.
 */
export function createSecretIdStore(core: Pick<CoreServices, 'storage' | 'seal'>, mountId: string) {
  const db = core.storage.db
  const hash = (roleName: string, secretId: string) =>
    core.seal.barrier.hmac('approle-secret-id', `${mountId}\0${roleName}\0${secretId}`)
  const base = () => db.selectFrom('approle_secret_ids').selectAll().where('mount_id', '=', mountId)

  return {
    async create(input: NewSecretId): Promise<SecretIdEntry> {
      const now = nowMs()
      const row: SecretIdRow = {
        id: hash(input.roleName, input.secretId),
        mount_id: mountId,
        role_name: input.roleName,
        accessor: randomUUID(),
        metadata: JSON.stringify(input.metadata),
        cidr_list: JSON.stringify(input.cidrList),
        token_bound_cidrs: JSON.stringify(input.tokenBoundCidrs),
        num_uses: input.numUses,
        remaining_uses: input.numUses,
        ttl: input.ttl,
        expires_at: input.ttl > 0 ? now + input.ttl * 1000 : null,
        created_at: now,
        updated_at: now,
      }
      const existing = await db
        .selectFrom('approle_secret_ids')
        .select('id')
        .where('id', '=', row.id)
        .executeTakeFirst()
      if (existing) throw badRequest('SecretID is already registered')
      try {
        await db.insertInto('approle_secret_ids').values(row).execute()
      } catch {
        throw badRequest('SecretID is already registered')
      }
      return fromRow(row)
    },

    /** The secret-id if it exists and has not expired (expired ones are deleted on sight). */
    async find(roleName: string, secretId: string): Promise<SecretIdEntry | undefined> {
      const row = await base().where('id', '=', hash(roleName, secretId)).executeTakeFirst()
      return live(row)
    },

    async byAccessor(roleName: string, accessor: string): Promise<SecretIdEntry | undefined> {
      const row = await base()
        .where('role_name', '=', roleName)
        .where('accessor', '=', accessor)
        .executeTakeFirst()
      return live(row)
    },

    async accessors(roleName: string): Promise<string[]> {
      const now = nowMs()
      const rows = await db
        .selectFrom('approle_secret_ids')
        .select('accessor')
        .where('mount_id', '=', mountId)
        .where('role_name', '=', roleName)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .orderBy('accessor')
        .execute()
      return rows.map((r) => r.accessor)
    },

    /**
     * Spends one use. Returns false when the secret-id is gone, expired or used up (also when a
     * concurrent login took the last use). Exhausted secret-ids are deleted.
     */
    async consume(entry: SecretIdEntry): Promise<boolean> {
      const now = nowMs()
      if (entry.numUses === 0) {
        const still = await db
          .selectFrom('approle_secret_ids')
          .select('id')
          .where('id', '=', entry.id)
          .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
          .executeTakeFirst()
        return still !== undefined
      }
      const result = await db
        .updateTable('approle_secret_ids')
        .set((eb) => ({ remaining_uses: eb('remaining_uses', '-', 1), updated_at: now }))
        .where('id', '=', entry.id)
        .where('remaining_uses', '>', 0)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst()
      if (Number(result.numUpdatedRows) !== 1) return false
      await db
        .deleteFrom('approle_secret_ids')
        .where('id', '=', entry.id)
        .where('remaining_uses', '<=', 0)
        .execute()
      return true
    },

    async delete(id: string): Promise<void> {
      await db.deleteFrom('approle_secret_ids').where('id', '=', id).execute()
    },

    async deleteRole(roleName: string): Promise<void> {
      await db
        .deleteFrom('approle_secret_ids')
        .where('mount_id', '=', mountId)
        .where('role_name', '=', roleName)
        .execute()
    },

    /**
     * Deletes expired secret-ids and, given the role names listed at `listedAt`, secret-ids whose
     * role is gone (only rows older than the listing, so a role created meanwhile keeps its ids).
     */
    async tidy(orphansOf?: { roleNames: string[]; listedAt: number }): Promise<number> {
      const expired = await db
        .deleteFrom('approle_secret_ids')
        .where('mount_id', '=', mountId)
        .where('expires_at', 'is not', null)
        .where('expires_at', '<=', nowMs())
        .executeTakeFirst()
      let orphans = 0n
      if (orphansOf) {
        let query = db
          .deleteFrom('approle_secret_ids')
          .where('mount_id', '=', mountId)
          .where('created_at', '<', orphansOf.listedAt)
        if (orphansOf.roleNames.length > 0)
          query = query.where('role_name', 'not in', orphansOf.roleNames)
        orphans = (await query.executeTakeFirst()).numDeletedRows
      }
      return Number(expired.numDeletedRows + orphans)
    },

    async deleteAll(): Promise<void> {
      await db.deleteFrom('approle_secret_ids').where('mount_id', '=', mountId).execute()
    },
  }

  async function live(row: SecretIdRow | undefined): Promise<SecretIdEntry | undefined> {
    if (!row) return undefined
    const entry = fromRow(row)
    if (entry.expiresAt !== null && entry.expiresAt <= nowMs()) {
      await db.deleteFrom('approle_secret_ids').where('id', '=', entry.id).execute()
      return undefined
    }
    return entry
  }
}

export type SecretIdStore = ReturnType<typeof createSecretIdStore>

function fromRow(row: SecretIdRow): SecretIdEntry {
  return {
    id: row.id,
    roleName: row.role_name,
    accessor: row.accessor,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    cidrList: JSON.parse(row.cidr_list) as string[],
    tokenBoundCidrs: JSON.parse(row.token_bound_cidrs) as string[],
    numUses: Number(row.num_uses),
    remainingUses: Number(row.remaining_uses),
    ttl: Number(row.ttl),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  }
}
