import { matchPath, type Core } from '../core/core.js'
import type { Backend, LogicalRequest } from '../core/request.js'
import { metricsFor } from './metrics.js'

/** One finished /v1 request, as the HTTP layer saw it. */
export interface FinishedRequest {
  requestId: string
  method: string
  status: number
  durationSeconds: number
  /** The logical request, when the HTTP one could be turned into one. */
  req?: LogicalRequest
}

/**
 * After each /v1 request: counts it in the metrics and writes one structured log line (request
 * id, method, mount, route pattern, operation, status and duration). It never logs the raw path,
 * the query string, headers or the body (any of them can carry secrets).
 */
export function createRequestObserver(core: Core): (done: FinishedRequest) => void {
  const metrics = metricsFor(core)
  return function observeRequest({ req, method, status, durationSeconds, requestId }) {
    const route = req ? routeOf(core, req) : 'invalid'
    const mountType = req?.mount?.type ?? ''
    metrics.observeRequest({
      route,
      mountType,
      operation: req?.operation ?? '',
      method,
      status,
      durationSeconds,
    })
    // One line per request at debug level (the audit log is the record of requests); failures warn.
    if (status < 500 && !core.logger.isLevelEnabled('debug')) return
    const line = {
      request_id: requestId,
      method,
      mount_point: req?.mount?.path ?? '',
      mount_type: mountType,
      route,
      operation: req?.operation,
      status,
      duration_ms: Math.round(durationSeconds * 1e6) / 1e3,
      remote_address: req?.remoteAddress,
    }
    if (status >= 500) core.logger.warn(line, 'request failed')
    else core.logger.debug(line, 'request')
  }
}

/** `<pattern source>` of the PathDef that served the request, or `unmatched`. */
export function routeOf(core: Core, req: LogicalRequest): string {
  if (req.route !== undefined) return req.route
  if (req.relativePath === undefined) return 'unmatched'
  let backend: Backend | undefined
  if (req.path === 'sys' || req.path.startsWith('sys/')) backend = core.sys
  else if (req.mount) backend = core.mounts.get(req.mount.path)?.backend
  const hit = backend ? matchPath(backend.paths, req.relativePath) : undefined
  return hit ? hit.def.pattern.source : 'unmatched'
}
