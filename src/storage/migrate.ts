import { Migrator, type Migration } from 'kysely'
import { migrations } from '../../schema/index.js'
import { columnTypes } from '../../schema/column-types.js'
import type { Storage } from './storage.js'

/** Applies every pending migration from `schema/`; safe to run on several nodes at once. */
export async function migrate(storage: Storage): Promise<void> {
  const types = columnTypes(storage.dialect)
  const provider = {
    async getMigrations(): Promise<Record<string, Migration>> {
      return Object.fromEntries(
        migrations.map((m) => [
          m.name,
          { up: (db) => m.up(db as never, types) } satisfies Migration,
        ]),
      )
    },
  }
  const migrator = new Migrator({
    db: storage.db,
    provider,
    migrationTableName: 'stint_migrations',
    migrationLockTableName: 'stint_migrations_lock',
  })
  const { error, results } = await migrator.migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new Error(`storage migration ${failed} failed: ${(error as Error).message ?? error}`)
  }
}
