import { badRequest } from '../../core/errors.js'
import type { PathDef } from '../../core/request.js'
import { PROMETHEUS_CONTENT_TYPE, type StintMetrics } from '../../observability/metrics.js'

/**
 * `GET sys/metrics`: needs a token whose policy grants read on `sys/metrics`. With
 * `format=prometheus` the Prometheus text exposition; otherwise a JSON summary of the same values.
 */
export function metricsPaths(metrics: Pick<StintMetrics, 'render' | 'registry'>): PathDef[] {
  return [
    {
      pattern: /^metrics\/?$/,
      operations: {
        read: async (req) => {
          const format = req.query.format ?? ''
          if (format === 'prometheus') {
            return { raw: { contentType: PROMETHEUS_CONTENT_TYPE, body: await metrics.render() } }
          }
          if (format !== '' && format !== 'json')
            throw badRequest('format must be prometheus or json')
          const all = await metrics.registry.getMetricsAsJSON()
          return {
            body: {
              metrics: all.map((m) => ({
                name: m.name,
                type: m.type,
                help: m.help,
                values: m.values,
              })),
            },
          }
        },
      },
    },
  ]
}
