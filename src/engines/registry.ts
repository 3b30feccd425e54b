import type { Core } from '../core/core.js'
import type { Backend, PathDef } from '../core/request.js'
import { installLeases } from '../core/leases/install.js'
import { leasePaths } from './sys/leases.js'
import { createTokenBackend } from '../auth/token/backend.js'
import { createJwtBackend } from '../auth/jwt/backend.js'
import { createAppRoleBackend } from '../auth/approle/backend.js'
import { installIdentity } from '../identity/install.js'
import { createUserpassBackend } from '../auth/userpass/backend.js'
import { createKvBackend } from './kv/index.js'
import { createDatabaseBackend } from './database/index.js'
import { installAudit } from '../audit/install.js'
import { metricsPaths } from './sys/metrics.js'
import { metricsFor } from '../observability/metrics.js'
import { installAccess } from '../access/install.js'

/**
 * Wires every built-in feature into a core: secrets engine and auth method types, services
 * (leases, identity, audit) and the extra `sys/` path groups they serve. New features add their
 * lines here; nothing else in the core needs to change. Returns the extra sys/ paths.
 */
export function registerBuiltins(core: Core): PathDef[] {
  const sysPaths: PathDef[] = []
  const empty = (): Backend => ({ paths: [] })

  // Crash-recovery tests shorten the pending grace period (default 60 s) through the environment.
  const pendingGraceMs = Number(process.env.STINT_LEASE_PENDING_GRACE_MS) || undefined
  installLeases(core, pendingGraceMs ? { pendingGraceMs } : undefined)
  sysPaths.push(...leasePaths(core))

  core.registerEngine('system', () => core.sys!)
  core.registerEngine('identity', installIdentity(core))
  core.registerEngine('cubbyhole', empty)
  core.registerAuthMethod('token', (mount) => createTokenBackend(core, mount))
  core.registerAuthMethod('userpass', (mount) => createUserpassBackend({ core, mount }))
  core.registerAuthMethod('jwt', (mount) => createJwtBackend(core, mount))
  core.registerAuthMethod('oidc', (mount) => createJwtBackend(core, mount))
  core.registerAuthMethod('approle', (mount) => createAppRoleBackend(core, mount))
  core.registerEngine('kv', (mount) => createKvBackend(core, mount))
  core.registerEngine('generic', (mount) => createKvBackend(core, mount, 1))
  core.registerEngine('database', (mount) => createDatabaseBackend(core, mount))

  sysPaths.push(...installAudit(core).paths, ...metricsPaths(core))
  // A stored ACL policy that no longer parses grants nothing: count it where alerts can see it.
  core.policies.onLoadFailure((failure) => metricsFor(core).policyLoadFailure(failure))
  sysPaths.push(...installAccess(core).paths)

  return sysPaths
}
