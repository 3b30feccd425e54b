import type { Core } from '../core/core.js'
import type { Backend, PathDef } from '../core/request.js'
import { createTokenBackend } from '../auth/token/backend.js'

/**
 * Wires every built-in feature into a core: secrets engine and auth method types, services
 * (leases, identity, audit) and the extra `sys/` path groups they serve. New features add their
 * lines here; nothing else in the core needs to change. Returns the extra sys/ paths.
 */
export function registerBuiltins(core: Core): PathDef[] {
  const sysPaths: PathDef[] = []
  const empty = (): Backend => ({ paths: [] })

  core.registerEngine('system', () => core.sys!)
  core.registerEngine('identity', empty)
  core.registerEngine('cubbyhole', empty)
  core.registerAuthMethod('token', (mount) => createTokenBackend(core, mount))

  return sysPaths
}
