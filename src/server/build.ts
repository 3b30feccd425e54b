import { Core } from '../core/core.js'
import { createSysBackend } from '../engines/sys/index.js'
import { registerBuiltins } from '../engines/registry.js'
import { openStorage, type Storage } from '../storage/storage.js'
import { migrate } from '../storage/migrate.js'
import { createApp } from '../http/app.js'
import type { Logger } from '../core/logger.js'
import type { Hono } from 'hono'

export interface BuildOptions {
  /** Storage URL (`sqlite:...`, `postgres://...`, `mysql://...`) or an opened storage. */
  storage: string | Storage
  staticUnsealKey?: Uint8Array
  logger?: Logger
  defaultLeaseTtl?: number
  maxLeaseTtl?: number
}

export interface Stint {
  core: Core
  app: Hono
  storage: Storage
  /** Seals, stops workers and closes storage. */
  shutdown(): Promise<void>
}

/** Builds a complete Stint node: storage (migrated), core, backends and the HTTP app. */
export async function buildStint(options: BuildOptions): Promise<Stint> {
  const storage =
    typeof options.storage === 'string' ? openStorage(options.storage) : options.storage
  await migrate(storage)
  const core = new Core({
    storage,
    staticUnsealKey: options.staticUnsealKey,
    logger: options.logger,
    defaultLeaseTtl: options.defaultLeaseTtl,
    maxLeaseTtl: options.maxLeaseTtl,
  })
  core.sys = createSysBackend(core, registerBuiltins(core))
  core.addWorker(tokenExpiryWorker(core))
  await core.seal.autoUnseal()
  const app = createApp(core)
  return {
    core,
    app,
    storage,
    shutdown: async () => {
      await core.seal.seal()
      await storage.close()
    },
  }
}

/** Revokes expired tokens (and, through them, their leases) every few seconds. */
function tokenExpiryWorker(core: Core) {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  const tick = async () => {
    try {
      while ((await core.tokens.expireDue(200)) === 200) {
        /* keep draining */
      }
    } catch (err) {
      core.logger.warn({ err: (err as Error).name }, 'token expiry sweep failed')
    }
  }
  return {
    start() {
      timer ??= setInterval(() => {
        running ??= tick().finally(() => (running = undefined))
      }, 5_000)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      await running
    },
  }
}
