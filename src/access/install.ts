import type { Core } from '../core/core.js'
import type { PathDef } from '../core/request.js'
import { createRuleStore } from './rules.js'
import { createRequestStore } from './requests.js'
import { createNotifiers, type NotifierOptions } from './notifiers.js'
import { createAccessService, type AccessOptions } from './service.js'
import { accessPaths } from './paths.js'

export interface AccessInstallOptions extends AccessOptions {
  notifiers?: NotifierOptions
  /** Background tick interval in ms (default 1000). */
  tickMs?: number
}

const services = new WeakMap<Core, ReturnType<typeof createAccessService>>()

/** The access service installed on a core (tests drive its worker with `tick()`). */
export function accessServiceOf(core: Core): ReturnType<typeof createAccessService> | undefined {
  return services.get(core)
}

/** Adds JIT access to a core: the request guard, the background worker and sys/access paths. */
export function installAccess(
  core: Core,
  options: AccessInstallOptions = {},
): { paths: PathDef[]; service: ReturnType<typeof createAccessService> } {
  const rules = createRuleStore({ storage: core.storage })
  const requests = createRequestStore({ storage: core.storage })
  const notifiers = createNotifiers({
    storage: core.storage,
    barrier: core.seal.barrier,
    logger: core.logger,
    options: options.notifiers,
  })
  const service = createAccessService({ core, rules, requests, notifiers, options })
  services.set(core, service)
  core.guards.push((ctx) => (rules.mayGuard(ctx.req.path) ? service.guard(ctx) : undefined))

  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  core.addWorker({
    start() {
      timer ??= setInterval(() => {
        running ??= service
          .tick()
          .catch((err: unknown) =>
            core.logger.warn({ err: (err as Error).name }, 'access worker tick failed'),
          )
          .finally(() => (running = undefined))
      }, options.tickMs ?? 1000)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      await running
    },
  })
  return { paths: accessPaths({ service, rules, requests, notifiers }), service }
}
