import type { CoreServices } from '../../core/services.js'
import type { PasswordPolicyStore } from '../../core/password-policy/store.js'
import type { Backend, PathDef } from '../../core/request.js'
import { sealPaths } from './seal.js'
import { mountPaths } from './mounts.js'
import { capabilityPaths } from './capabilities.js'
import { policyPaths } from './policies.js'
import { passwordPolicyPaths } from './password-policies.js'

export type SysDeps = Pick<
  CoreServices,
  'seal' | 'policies' | 'tokens' | 'storage' | 'mounts' | 'mountTtls' | 'aclFor' | 'authenticate'
> & { passwordPolicies: PasswordPolicyStore }

/**
 * The sys/ backend, assembled from one path group per concern. Features that add sys/ endpoints
 * (leases, audit, metrics, access requests) hand their group in as `extraSysPaths`.
 */
export function createSysBackend(core: SysDeps, extraSysPaths: PathDef[] = []): Backend {
  return {
    paths: [
      ...sealPaths(core),
      ...mountPaths(core),
      ...capabilityPaths(core),
      ...policyPaths({ policies: core.policies }),
      ...passwordPolicyPaths({ policies: core.passwordPolicies }),
      ...extraSysPaths,
    ],
  }
}
