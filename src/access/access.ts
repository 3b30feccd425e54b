import type { RequestGuard } from '../core/core.js'
import type { PathDef } from '../core/request.js'
import type { CoreServices } from '../core/services.js'
import { intervalWorker, type Worker } from '../core/workers.js'
import type { IdentityStore } from '../identity/types.js'
import { createRuleStore } from './rules.js'
import { createRequestStore } from './requests.js'
import { createNotifiers, type NotifierOptions } from './notifiers.js'
import { createAccessService } from './service.js'
import { accessPaths } from './paths.js'
import { createPeople } from './deciders.js'
import { createPresenter } from './presentation.js'
import { createEvidence } from './evidence.js'
import { createGrants } from './grants.js'
import { createGrantGuard } from './guard.js'
import { createSweeper } from './sweeper.js'

export interface AccessInstallOptions {
  /** How long before the end an `expiring_soon` event is sent (ms, default 5 min). */
  expiringSoonMs?: number
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
  /** One pass of the sweeper (tests drive it directly). */
  tick(): Promise<void>
  /** The pipeline guard: guarded paths need a live grant. */
  guard: RequestGuard
  /** Sweeps pending, starting and ending grants; delivers notifications. */
  worker: Worker
  /** `sys/access/*`. */
  paths: PathDef[]
}

/**
 * JIT access, assembled from one part per job: who asks and decides (deciders.ts), the pure
 * state machine (transitions.ts), the transitions with side effects (grants.ts), the request
 * guard (guard.ts), the sweeper (sweeper.ts), evidence of use (evidence.ts), presentation
 * (presentation.ts) and the operations behind `sys/access/*` (service.ts, paths.ts).
 */
export function createAccess(deps: AccessDeps, options: AccessInstallOptions = {}): Access {
  const rules = createRuleStore({ storage: deps.storage })
  const requests = createRequestStore({ storage: deps.storage })
  const notifiers = createNotifiers({
    storage: deps.storage,
    barrier: deps.seal.barrier,
    logger: deps.logger,
    options: options.notifiers,
  })
  const people = createPeople({ ...deps, rules })
  const view = createPresenter({ mounts: deps.mounts, requests, viewerOf: people.viewerOf })
  const sampleSessions = createEvidence({ ...deps, requests })
  const grants = createGrants({ ...deps, rules, requests, notifiers, view, sampleSessions })
  const guardGrant = createGrantGuard({ ...deps, rules, requests, endGrant: grants.endGrant })
  const sweeper = createSweeper({
    rules,
    requests,
    notifiers,
    grants,
    sampleSessions,
    logger: deps.logger,
    expiringSoonMs: options.expiringSoonMs,
  })
  const service = createAccessService({ ...deps, rules, requests, people, grants })
  return {
    service,
    tick: () => sweeper.tick(),
    guard: (ctx) => (rules.mayGuard(ctx.req.path) ? guardGrant(ctx) : undefined),
    worker: intervalWorker(
      () => sweeper.tick(),
      options.tickMs ?? 1000,
      (err) => deps.logger.warn({ err: (err as Error).name }, 'access worker tick failed'),
    ),
    paths: accessPaths({ service, view, rules, requests, notifiers }),
  }
}
