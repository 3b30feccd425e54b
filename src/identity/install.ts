import type { Core } from '../core/core.js'
import type { BackendFactory } from '../core/mounts.js'
import { permissionDenied } from '../core/errors.js'
import { createIdentityStore } from './store.js'
import { createIdentityBackend } from './backend.js'

/**
 * Creates the identity store and plugs it into the core: `core.identity`, identity policies on
 * every request, a guard that refuses tokens of disabled entities, and alias clean-up when an
 * auth mount is disabled. Returns the factory of the `identity/` backend.
 */
export function installIdentity(core: Core): BackendFactory {
  const store = createIdentityStore({ storage: core.storage })
  core.identity = store
  core.identityPolicies = (entityId) => store.policiesFor(entityId)
  core.guards.push(function refuseDisabledEntity(ctx) {
    const entityId = ctx.req.token?.entityId
    if (!entityId) return
    return store.isDisabled(entityId).then((disabled) => {
      if (disabled) throw permissionDenied()
    })
  })
  core.mounts.onBeforeDisable(async (entry) => {
    if (entry.kind === 'auth') await store.deleteAliasesForMount(entry.accessor)
  })
  return () => createIdentityBackend({ store, mounts: core.mounts })
}
