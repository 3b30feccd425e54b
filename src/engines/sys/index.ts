import type { Core } from '../../core/core.js'
import type { Backend, PathDef } from '../../core/request.js'
import { sealPaths } from './seal.js'
import { mountPaths } from './mounts.js'
import { capabilityPaths } from './capabilities.js'
import { policyPaths } from './policies.js'
import { passwordPolicyPaths, passwordPolicyStore } from './password-policies.js'

/**
 * The sys/ backend, assembled from one path group per concern. Features that add sys/ endpoints
 * (leases, audit, access requests) append their group through `extraSysPaths`.
 */
export function createSysBackend(core: Core, extraSysPaths: PathDef[] = []): Backend {
  return {
    paths: [
      ...sealPaths(core),
      ...mountPaths(core),
      ...capabilityPaths(core),
      ...policyPaths({ policies: core.policies }),
      ...passwordPolicyPaths({ policies: passwordPolicyStore(core) }),
      ...extraSysPaths,
    ],
  }
}
