import type { Logger } from '../core/logger.js'
import type { LogicalRequest } from '../core/request.js'
import type { StintMetrics } from './metrics.js'

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
export function createRequestObserver(deps: {
  metrics: Pick<StintMetrics, 'observeRequest'>
  logger: Logger
}): (done: FinishedRequest) => void {
  const { metrics, logger } = deps
  return function observeRequest({ req, method, status, durationSeconds, requestId }) {
    // The pipeline names the route once it matched one; anything else is `unmatched`.
    const route = req ? (req.route ?? 'unmatched') : 'invalid'
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
    if (status < 500 && !logger.isLevelEnabled('debug')) return
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
    if (status >= 500) logger.warn(line, 'request failed')
    else logger.debug(line, 'request')
  }
}
