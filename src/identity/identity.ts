import type { RequestGuard } from '../core/core.js'
import type { BackendFactory } from '../core/mounts.js'
import type { CoreServices } from '../core/services.js'
import { permissionDenied } from '../core/errors.js'
import { createIdentityStore, type IdentityService } from './store.js'
import { createIdentityBackend } from './backend.js'

export interface Identity {
  store: IdentityService
  /** Refuses tokens whose entity is disabled (a pipeline guard). */
  guard: RequestGuard
  /** The `identity/` backend. */
  backend: BackendFactory
}

/**
 * The identity store and what it brings to a node: the entity guard and the `identity/` backend.
 * The composition root connects its clean-up to auth mounts being disabled.
 */
export function createIdentity(deps: Pick<CoreServices, 'storage' | 'mounts'>): Identity {
  const store = createIdentityStore({ storage: deps.storage })
  return {
    store,
    guard: function refuseDisabledEntity(ctx) {
      const entityId = ctx.req.token?.entityId
      if (!entityId) return
      return store.isDisabled(entityId).then((disabled) => {
        if (disabled) throw permissionDenied()
      })
    },
    backend: () => createIdentityBackend({ store, mounts: deps.mounts }),
  }
}
