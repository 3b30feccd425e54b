import type { DatabaseConnection } from '../../../plugins/contract.js'
import { pluginFor } from './plugins.js'
import type { StoredConfig } from './store.js'

/**
 * One pool per connection config, opened lazily and shared by every request. A config written
 * since the pool was opened (its `version` changed, possibly on another node) reopens it.
 */
export function createConnectionCache() {
  const open = new Map<string, { version: number; conn: DatabaseConnection }>()

  return {
    get(config: StoredConfig): DatabaseConnection {
      const cached = open.get(config.name)
      if (cached && cached.version === config.version) return cached.conn
      if (cached) void cached.conn.close().catch(() => {})
      const plugin = pluginFor(config.pluginName)
      if (!plugin) throw new Error(`unknown plugin for connection "${config.name}"`)
      const conn = plugin.connect(config.connection)
      open.set(config.name, { version: config.version, conn })
      return conn
    },

    /** Keeps an already verified connection as the pool for this config version. */
    adopt(config: StoredConfig, conn: DatabaseConnection): void {
      const cached = open.get(config.name)
      if (cached && cached.conn !== conn) void cached.conn.close().catch(() => {})
      open.set(config.name, { version: config.version, conn })
    },

    async drop(name: string): Promise<void> {
      const cached = open.get(name)
      open.delete(name)
      await cached?.conn.close().catch(() => {})
    },

    async closeAll(): Promise<void> {
      const all = [...open.values()]
      open.clear()
      await Promise.all(all.map((c) => c.conn.close().catch(() => {})))
    },
  }
}

export type ConnectionCache = ReturnType<typeof createConnectionCache>
