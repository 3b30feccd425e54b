import type { Core } from '../core/core.js'
import type { PathDef } from '../core/request.js'
import { auditPaths } from '../engines/sys/audit.js'
import { metricsFor } from '../observability/metrics.js'
import { createAuditBroker, type AuditService } from './broker.js'

/**
 * Creates the audit broker, makes it the core's audit sink, loads devices after every unseal and
 * closes them (with a signed checkpoint) before every seal. Returns the sys/audit paths.
 */
export function installAudit(core: Core): { broker: AuditService; paths: PathDef[] } {
  const broker = createAuditBroker({
    storage: core.storage,
    barrier: core.seal.barrier,
    logger: core.logger,
    onFailure: (path) => metricsFor(core).auditFailure(path),
  })
  core.audit = broker
  core.seal.hooks(
    () => broker.load(),
    () => broker.unload(),
  )
  return { broker, paths: auditPaths(core, broker) }
}
