import type { RequestGuard } from '../core/core.js'
import type { PathDef } from '../core/request.js'
import type { CoreServices } from '../core/services.js'
import { intervalWorker, type Worker } from '../core/workers.js'
import type { IdentityStore } from '../identity/types.js'
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

export type AccessDeps = Pick<
  CoreServices,
  'storage' | 'seal' | 'logger' | 'aclFor' | 'leases' | 'mounts' | 'secondFactors'
> & { identity: Pick<IdentityStore, 'entity' | 'groupsFor'> }

export interface Access {
  service: ReturnType<typeof createAccessService>
  /** The pipeline guard: guarded paths need a live grant. */
  guard: RequestGuard
  /** Sweeps pending, starting and ending grants; delivers notifications. */
  worker: Worker
  /** `sys/access/*`. */
  paths: PathDef[]
}

/** JIT access: rules, requests, notifiers, the request guard, the sweeper and sys/access paths. */
export function createAccess(deps: AccessDeps, options: AccessInstallOptions = {}): Access {
  const rules = createRuleStore({ storage: deps.storage })
  const requests = createRequestStore({ storage: deps.storage })
  const notifiers = createNotifiers({
    storage: deps.storage,
    barrier: deps.seal.barrier,
    logger: deps.logger,
    options: options.notifiers,
  })
  const service = createAccessService({ core: deps, rules, requests, notifiers, options })
  return {
    service,
    guard: (ctx) => (rules.mayGuard(ctx.req.path) ? service.guard(ctx) : undefined),
    worker: intervalWorker(
      () => service.tick(),
      options.tickMs ?? 1000,
      (err) => deps.logger.warn({ err: (err as Error).name }, 'access worker tick failed'),
    ),
    paths: accessPaths({ service, rules, requests, notifiers }),
  }
}
