import type { Barrier } from '../../core/barrier.js'
import type { Storage } from '../../storage/storage.js'
import { namesInMount, nowMs, upsert } from '../../storage/storage.js'
import type { ConnectionConfig } from '../../../plugins/contract.js'

declare module '../../storage/tables.js' {
  interface Tables {
    database_configs: DatabaseConfigRow
    database_roles: DatabaseRoleRow
  }
}

interface DatabaseConfigRow {
  id: string
  mount_id: string
  name: string
  plugin_name: string
  /** Barrier ciphertext of the JSON `ConnectionConfig` (URL, admin username and password). */
  sealed: string
  /** JSON `ConfigSettings`: nothing secret. */
  settings: string
  updated_at: number
}

interface DatabaseRoleRow {
  id: string
  mount_id: string
  name: string
  db_name: string
  /** JSON `RoleBody`. */
  body: string
  updated_at: number
}

/** The non-secret part of a connection config. */
export interface ConfigSettings {
  allowedRoles: string[]
  verifyConnection: boolean
  usernameTemplate: string
  passwordPolicy: string
  rootRotationStatements: string[]
}

export interface StoredConfig {
  name: string
  pluginName: string
  connection: ConnectionConfig
  settings: ConfigSettings
  /** Changes on every write; a cached pool older than this is reopened. */
  version: number
}

export interface RoleBody {
  creationStatements: string[]
  revocationStatements: string[]
  rollbackStatements: string[]
  renewStatements: string[]
  /** Seconds; 0 = mount default. */
  defaultTtl: number
  /** Seconds; 0 = mount max. */
  maxTtl: number
}

export interface StoredRole extends RoleBody {
  name: string
  dbName: string
}

/** Connection configs and roles of one `database` mount. Configs are sealed by the barrier. */
export function createDatabaseStore(deps: { storage: Storage; barrier: Barrier; mountId: string }) {
  const { storage, barrier, mountId } = deps
  const db = storage.db
  const configId = (name: string) => `${mountId}:${name}`
  const roleId = (name: string) => `${mountId}:${name}`
  const opened = new Map<string, { sealed: string; connection: ConnectionConfig }>()
  let lastVersion = 0

  return {
    async getConfig(name: string): Promise<StoredConfig | undefined> {
      const row = await db
        .selectFrom('database_configs')
        .selectAll()
        .where('id', '=', configId(name))
        .executeTakeFirst()
      if (!row) return undefined
      // Decrypt once per stored ciphertext: issuance reads the config on every request.
      let connection =
        opened.get(row.id)?.sealed === row.sealed ? opened.get(row.id)!.connection : undefined
      if (!connection) {
        connection = JSON.parse(
          barrier.decrypt('database_configs', 'sealed', row.id, row.sealed),
        ) as ConnectionConfig
        opened.set(row.id, { sealed: row.sealed, connection })
      }
      return {
        name: row.name,
        pluginName: row.plugin_name,
        connection,
        settings: JSON.parse(row.settings) as ConfigSettings,
        version: Number(row.updated_at),
      }
    },

    /** Writes a config; returns its new version. */
    async putConfig(config: Omit<StoredConfig, 'version'>): Promise<number> {
      const id = configId(config.name)
      // Strictly increasing on this node, so two writes in one millisecond still reopen the pool.
      const version = (lastVersion = Math.max(nowMs(), lastVersion + 1))
      await upsert(
        storage,
        'database_configs',
        {
          id,
          mount_id: mountId,
          name: config.name,
          plugin_name: config.pluginName,
          sealed: barrier.encrypt(
            'database_configs',
            'sealed',
            id,
            JSON.stringify(config.connection),
          ),
          settings: JSON.stringify(config.settings),
          updated_at: version,
        },
        ['id'],
        ['plugin_name', 'sealed', 'settings', 'updated_at'],
      )
      return version
    },

    async deleteConfig(name: string): Promise<void> {
      opened.delete(configId(name))
      await db.deleteFrom('database_configs').where('id', '=', configId(name)).execute()
    },

    async listConfigs(): Promise<string[]> {
      const rows = await db
        .selectFrom('database_configs')
        .select('name')
        .where('mount_id', '=', mountId)
        .orderBy('name')
        .execute()
      return rows.map((r) => r.name)
    },

    async getRole(name: string): Promise<StoredRole | undefined> {
      const row = await db
        .selectFrom('database_roles')
        .selectAll()
        .where('id', '=', roleId(name))
        .executeTakeFirst()
      if (!row) return undefined
      return { name: row.name, dbName: row.db_name, ...(JSON.parse(row.body) as RoleBody) }
    },

    async putRole(role: StoredRole): Promise<void> {
      const { name, dbName, ...body } = role
      await upsert(
        storage,
        'database_roles',
        {
          id: roleId(name),
          mount_id: mountId,
          name,
          db_name: dbName,
          body: JSON.stringify(body),
          updated_at: nowMs(),
        },
        ['id'],
        ['db_name', 'body', 'updated_at'],
      )
    },

    async deleteRole(name: string): Promise<void> {
      await db.deleteFrom('database_roles').where('id', '=', roleId(name)).execute()
    },

    listRoles(): Promise<string[]> {
      return namesInMount(storage, 'database_roles', mountId)
    },

    /** Removes everything of this mount (unmount, after its leases were revoked). */
    async deleteAll(): Promise<void> {
      await db.deleteFrom('database_roles').where('mount_id', '=', mountId).execute()
      await db.deleteFrom('database_configs').where('mount_id', '=', mountId).execute()
    },
  }
}

export type DatabaseStore = ReturnType<typeof createDatabaseStore>
