import type { DatabasePlugin } from '../../../plugins/contract.js'
import { postgresPlugin } from '../../../plugins/postgres/plugin.js'
import {
  createMysqlPlugin,
  mysqlLegacyDialect,
  mysqlPlugin,
} from '../../../plugins/mysql/plugin.js'

const mysqlLegacy = createMysqlPlugin(mysqlLegacyDialect)

/** Vault's plugin names → Stint's built-in plugins (the mysql variants share one implementation). */
const PLUGINS: Record<string, DatabasePlugin> = {
  'postgresql-database-plugin': postgresPlugin,
  'mysql-database-plugin': mysqlPlugin,
  'mysql-aurora-database-plugin': mysqlLegacy,
  'mysql-rds-database-plugin': mysqlLegacy,
  'mysql-legacy-database-plugin': mysqlLegacy,
}

export const PLUGIN_NAMES = Object.keys(PLUGINS)

export function pluginFor(name: string): DatabasePlugin | undefined {
  return Object.hasOwn(PLUGINS, name) ? PLUGINS[name] : undefined
}
