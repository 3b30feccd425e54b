import type { CoreServices } from '../core/services.js'
import type { IdentityStore } from '../identity/types.js'

/** What a login method is handed: storage and the barrier for its config, tokens, identity. */
export type LoginDeps = Pick<
  CoreServices,
  'storage' | 'seal' | 'tokens' | 'mountTtls' | 'logger'
> & {
  identity: Pick<IdentityStore, 'resolveAlias' | 'entity' | 'policiesFor'>
}
