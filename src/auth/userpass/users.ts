import { randomUUID } from 'node:crypto'
import type { Barrier } from '../../core/barrier.js'
import { badRequest } from '../../core/errors.js'
import { nowMs, type Storage } from '../../storage/storage.js'
import { DEFAULT_TOKEN_FIELDS, type TokenFields } from '../token-fields.js'

declare module '../../storage/tables.js' {
  interface Tables {
    userpass_users: UserRow
  }
}

interface UserRow {
  id: string
  mount_accessor: string
  username: string
  /** argon2id PHC string; never the password. */
  password_hash: string
  token_fields: string
  /** Sealed by the barrier, bound to this row. */
  totp_seed: string | null
  /** Last TOTP time step accepted: codes at or before it are replays. */
  totp_last_step: number | null
  created_at: number
  updated_at: number
}

export interface User {
  id: string
  username: string
  passwordHash: string
  fields: TokenFields
  totpEnrolled: boolean
  totpLastStep: number | null
}

const SEED_TABLE = 'userpass_users'
const SEED_COLUMN = 'totp_seed'

/** The users of one userpass mount. */
export function createUserStore(deps: {
  storage: Storage
  barrier: Pick<Barrier, 'encrypt' | 'decrypt'>
  mountAccessor: string
}) {
  const { db } = deps.storage
  const accessor = deps.mountAccessor

  const get = async (username: string): Promise<User | undefined> => {
    const row = await db
      .selectFrom('userpass_users')
      .selectAll()
      .where('mount_accessor', '=', accessor)
      .where('username', '=', username)
      .executeTakeFirst()
    return row && fromRow(row)
  }

  return {
    get,

    async list(): Promise<string[]> {
      const rows = await db
        .selectFrom('userpass_users')
        .select('username')
        .where('mount_accessor', '=', accessor)
        .orderBy('username')
        .execute()
      return rows.map((r) => r.username)
    },

    async create(username: string, passwordHash: string, fields: TokenFields): Promise<void> {
      const now = nowMs()
      try {
        await db
          .insertInto('userpass_users')
          .values({
            id: randomUUID(),
            mount_accessor: accessor,
            username,
            password_hash: passwordHash,
            token_fields: JSON.stringify(fields),
            totp_seed: null,
            totp_last_step: null,
            created_at: now,
            updated_at: now,
          })
          .execute()
      } catch {
        throw badRequest(`user "${username}" already exists`)
      }
    },

    async update(
      user: User,
      changes: { passwordHash?: string; fields?: TokenFields },
    ): Promise<void> {
      await db
        .updateTable('userpass_users')
        .set({
          ...(changes.passwordHash ? { password_hash: changes.passwordHash } : {}),
          ...(changes.fields ? { token_fields: JSON.stringify(changes.fields) } : {}),
          updated_at: nowMs(),
        })
        .where('id', '=', user.id)
        .execute()
    },

    async delete(username: string): Promise<void> {
      await db
        .deleteFrom('userpass_users')
        .where('mount_accessor', '=', accessor)
        .where('username', '=', username)
        .execute()
    },

    async deleteAll(): Promise<void> {
      await db.deleteFrom('userpass_users').where('mount_accessor', '=', accessor).execute()
    },

    /** Stores a new TOTP seed (sealed) and forgets the replay marker of the old one. */
    async setTotpSeed(user: User, seed: string | null): Promise<void> {
      await db
        .updateTable('userpass_users')
        .set({
          totp_seed:
            seed === null ? null : deps.barrier.encrypt(SEED_TABLE, SEED_COLUMN, user.id, seed),
          totp_last_step: null,
          updated_at: nowMs(),
        })
        .where('id', '=', user.id)
        .execute()
    },

    async totpSeed(user: User): Promise<string | undefined> {
      const row = await db
        .selectFrom('userpass_users')
        .select('totp_seed')
        .where('id', '=', user.id)
        .executeTakeFirst()
      if (!row?.totp_seed) return undefined
      return deps.barrier.decrypt(SEED_TABLE, SEED_COLUMN, user.id, row.totp_seed)
    },

    /**
     * Records `step` as the last accepted TOTP step, only if it is later than the stored one.
     * One conditional UPDATE, so two nodes racing with the same code cannot both win.
     */
    async claimTotpStep(user: User, step: number): Promise<boolean> {
      const result = await db
        .updateTable('userpass_users')
        .set({ totp_last_step: step })
        .where('id', '=', user.id)
        .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
        .executeTakeFirst()
      return Number(result.numUpdatedRows) === 1
    },
  }
}

export type UserStore = ReturnType<typeof createUserStore>

function fromRow(r: UserRow): User {
  return {
    id: r.id,
    username: r.username,
    passwordHash: r.password_hash,
    fields: { ...DEFAULT_TOKEN_FIELDS, ...(JSON.parse(r.token_fields) as Partial<TokenFields>) },
    totpEnrolled: r.totp_seed !== null,
    totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
  }
}
