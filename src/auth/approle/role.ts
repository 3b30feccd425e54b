import { randomUUID } from 'node:crypto'
import type { CoreServices } from '../../core/services.js'
import { namesInMount, nowMs } from '../../storage/storage.js'
import { badRequest } from '../../core/errors.js'
import { parseDuration } from '../../core/duration.js'
import { parseCidrs } from '../../core/cidr.js'
import { optionalBool, optionalInt, optionalString } from '../../core/fields.js'
import {
  DEFAULT_TOKEN_FIELDS,
  parseTokenFields,
  tokenFieldsResponse,
  type TokenFields,
} from '../token-fields.js'

declare module '../../storage/tables.js' {
  interface Tables {
    approle_roles: AppRoleRow
  }
}

interface AppRoleRow {
  mount_id: string
  name: string
  /** Keyed hash of the role id, for login lookups. */
  role_id_hash: string
  /** The role id sealed by the barrier (it is returned by `role/<name>/role-id`). */
  role_id: string
  bind_secret_id: number
  secret_id_bound_cidrs: string
  secret_id_num_uses: number
  secret_id_ttl: number
  local_secret_ids: number
  token_fields: string
  created_at: number
  updated_at: number
}

/** An AppRole role. Durations are seconds; `secretIdNumUses` 0 = unlimited, `secretIdTtl` 0 = none. */
export interface AppRole {
  name: string
  roleId: string
  bindSecretId: boolean
  secretIdBoundCidrs: string[]
  secretIdNumUses: number
  secretIdTtl: number
  localSecretIds: boolean
  token: TokenFields
}

/** Applies a role write (Vault's fields and deprecated names) onto an existing role or defaults. */
export function parseRole(name: string, data: Record<string, unknown>, base?: AppRole): AppRole {
  const cidrs = data.secret_id_bound_cidrs ?? data.bound_cidr_list
  const customRoleId = optionalString(data.role_id, 'role_id')
  const role: AppRole = {
    name,
    roleId: customRoleId ? checkRoleId(customRoleId) : (base?.roleId ?? randomUUID()),
    bindSecretId: optionalBool(data.bind_secret_id, 'bind_secret_id') ?? base?.bindSecretId ?? true,
    secretIdBoundCidrs:
      cidrs !== undefined
        ? parseCidrs(cidrs, 'secret_id_bound_cidrs')
        : (base?.secretIdBoundCidrs ?? []),
    secretIdNumUses:
      optionalInt(data.secret_id_num_uses, 'secret_id_num_uses') ?? base?.secretIdNumUses ?? 0,
    secretIdTtl:
      data.secret_id_ttl !== undefined
        ? parseDuration(data.secret_id_ttl, 'secret_id_ttl')
        : (base?.secretIdTtl ?? 0),
    // Fixed at creation, as in Vault.
    localSecretIds: base
      ? base.localSecretIds
      : (optionalBool(data.local_secret_ids, 'local_secret_ids') ?? false),
    token: parseTokenFields(data, base?.token ?? DEFAULT_TOKEN_FIELDS),
  }
  if (
    !role.bindSecretId &&
    role.secretIdBoundCidrs.length === 0 &&
    role.token.tokenBoundCidrs.length === 0
  ) {
    throw badRequest('at least one constraint should be enabled on the role')
  }
  return role
}

/** A custom role id: printable, bounded, no whitespace at the ends. */
export function checkRoleId(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (value.trim() !== value || value.length > 4096 || /[\0-\x1f\x7f]/.test(value)) {
    throw badRequest('invalid role_id')
  }
  return value
}

/** A role as Vault returns it on read (the role id has its own endpoint). */
export function roleResponse(role: AppRole): Record<string, unknown> {
  return {
    bind_secret_id: role.bindSecretId,
    secret_id_bound_cidrs: role.secretIdBoundCidrs,
    secret_id_num_uses: role.secretIdNumUses,
    secret_id_ttl: role.secretIdTtl,
    local_secret_ids: role.localSecretIds,
    ...tokenFieldsResponse(role.token),
    // Deprecated names Vault still returns.
    policies: role.token.tokenPolicies,
    period: role.token.tokenPeriod,
  }
}

/** Roles of one AppRole mount; the role id is stored sealed and looked up by keyed hash. */
export function createRoleStore(core: Pick<CoreServices, 'storage' | 'seal'>, mountId: string) {
  const db = core.storage.db
  const barrier = core.seal.barrier
  const hashRoleId = (roleId: string) => barrier.hmac('approle-role-id', `${mountId}\0${roleId}`)
  const fromRow = (row: AppRoleRow): AppRole => ({
    name: row.name,
    roleId: barrier.decrypt('approle_roles', 'role_id', `${mountId}/${row.name}`, row.role_id),
    bindSecretId: Number(row.bind_secret_id) === 1,
    secretIdBoundCidrs: JSON.parse(row.secret_id_bound_cidrs) as string[],
    secretIdNumUses: Number(row.secret_id_num_uses),
    secretIdTtl: Number(row.secret_id_ttl),
    localSecretIds: Number(row.local_secret_ids) === 1,
    token: { ...DEFAULT_TOKEN_FIELDS, ...(JSON.parse(row.token_fields) as Partial<TokenFields>) },
  })

  return {
    async get(name: string): Promise<AppRole | undefined> {
      const row = await db
        .selectFrom('approle_roles')
        .selectAll()
        .where('mount_id', '=', mountId)
        .where('name', '=', name)
        .executeTakeFirst()
      return row ? fromRow(row) : undefined
    },
    async byRoleId(roleId: string): Promise<AppRole | undefined> {
      const row = await db
        .selectFrom('approle_roles')
        .selectAll()
        .where('mount_id', '=', mountId)
        .where('role_id_hash', '=', hashRoleId(roleId))
        .executeTakeFirst()
      return row ? fromRow(row) : undefined
    },
    /** Inserts or replaces a role; a role id already used by another role is a 400. */
    async put(role: AppRole, exists: boolean): Promise<void> {
      const hash = hashRoleId(role.roleId)
      const owner = await db
        .selectFrom('approle_roles')
        .select('name')
        .where('mount_id', '=', mountId)
        .where('role_id_hash', '=', hash)
        .executeTakeFirst()
      if (owner && owner.name !== role.name) throw badRequest('role_id already in use')
      const now = nowMs()
      const values = {
        role_id_hash: hash,
        role_id: barrier.encrypt(
          'approle_roles',
          'role_id',
          `${mountId}/${role.name}`,
          role.roleId,
        ),
        bind_secret_id: role.bindSecretId ? 1 : 0,
        secret_id_bound_cidrs: JSON.stringify(role.secretIdBoundCidrs),
        secret_id_num_uses: role.secretIdNumUses,
        secret_id_ttl: role.secretIdTtl,
        local_secret_ids: role.localSecretIds ? 1 : 0,
        token_fields: JSON.stringify(role.token),
        updated_at: now,
      }
      try {
        if (exists) {
          await db
            .updateTable('approle_roles')
            .set(values)
            .where('mount_id', '=', mountId)
            .where('name', '=', role.name)
            .execute()
        } else {
          await db
            .insertInto('approle_roles')
            .values({ mount_id: mountId, name: role.name, created_at: now, ...values })
            .execute()
        }
      } catch {
        // A concurrent write took the name or the role id first.
        throw badRequest('role or role_id already in use')
      }
    },
    async delete(name: string): Promise<void> {
      await db
        .deleteFrom('approle_roles')
        .where('mount_id', '=', mountId)
        .where('name', '=', name)
        .execute()
    },
    list(): Promise<string[]> {
      return namesInMount(core.storage, 'approle_roles', mountId)
    },
    async deleteAll(): Promise<void> {
      await db.deleteFrom('approle_roles').where('mount_id', '=', mountId).execute()
    },
  }
}

export type AppRoleStore = ReturnType<typeof createRoleStore>
