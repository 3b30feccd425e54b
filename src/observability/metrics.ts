import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { sql, type Storage } from '../storage/storage.js'

/** Prometheus text exposition content type (what `sys/metrics?format=prometheus` returns). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** One finished HTTP request, labelled by route pattern (never the raw path). */
export interface RequestObservation {
  /** Source of the matched PathDef pattern, or `unmatched`. */
  route: string
  mountType: string
  operation: string
  method: string
  status: number
  durationSeconds: number
}

/**
 * Stint's metrics, on a registry of their own (not prom-client's global one), so several cores in
 * one process (tests) never share counters. Gauges that need storage (tokens, leases, seal) are
 * computed at scrape time, never per request.
 *
 * Other services report through these functions: the lease manager calls
 * `observeRevocation(lagMs)` after a revocation and `revocationFailure(mountPath)` when one
 * fails (the composition root connects them to the lease manager's callbacks).
 */
export interface StintMetrics {
  registry: Registry
  observeRequest(o: RequestObservation): void
  /** Time from a lease's expiry to its revocation, in milliseconds. */
  observeRevocation(lagMs: number): void
  revocationFailure(mount: string): void
  auditFailure(device: string): void
  /**
   * A stored policy (`acl` or `password`) failed to parse when loaded: `invalid` text, or the
   * parser was `unavailable`. An ACL policy that does not parse grants nothing: alert on this.
   */
  policyLoadFailure(failure: { type: string; reason: string }): void
  /** Prometheus text of every instrument. */
  render(): Promise<string>
}

export interface MetricsDeps {
  storage: Storage
  sealed: () => boolean
}

export function createMetrics(deps: MetricsDeps): StintMetrics {
  const { storage, sealed } = deps
  const registry = new Registry()
  const registers = [registry]

  const requests = new Counter({
    name: 'stint_http_requests_total',
    help: 'HTTP API requests by route pattern, mount type, operation, method and status.',
    labelNames: ['route', 'mount_type', 'operation', 'method', 'status'],
    registers,
  })
  const latency = new Histogram({
    name: 'stint_http_request_duration_seconds',
    help: 'HTTP API request latency by route pattern, mount type, operation and method.',
    labelNames: ['route', 'mount_type', 'operation', 'method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  const revocationLag = new Histogram({
    name: 'stint_lease_revocation_lag_seconds',
    help: 'Delay between a lease expiring and its credential being revoked.',
    buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  })
  const revocationFailures = new Counter({
    name: 'stint_lease_revocation_failures_total',
    help: 'Failed revocation attempts by mount.',
    labelNames: ['mount'],
    registers,
  })
  const auditFailures = new Counter({
    name: 'stint_audit_failures_total',
    help: 'Audit entries an enabled device failed to record, by device path.',
    labelNames: ['device'],
    registers,
  })
  const policyLoadFailures = new Counter({
    name: 'stint_policy_load_failures_total',
    help: 'Stored policies that failed to parse when loaded, by type (acl, password) and reason (invalid, unavailable).',
    labelNames: ['type', 'reason'],
    registers,
  })
  new Gauge({
    name: 'stint_sealed',
    help: '1 when the server is sealed, 0 when unsealed.',
    registers,
    collect() {
      this.set(sealed() ? 1 : 0)
    },
  })
  new Gauge({
    name: 'stint_tokens',
    help: 'Tokens in storage (service tokens; batch tokens are not stored).',
    registers,
    async collect() {
      const row = await storage.db
        .selectFrom('tokens')
        .select(sql<number>`count(*)`.as('n'))
        .executeTakeFirst()
        .catch(() => undefined)
      this.set(Number(row?.n ?? 0))
    },
  })
  new Gauge({
    name: 'stint_leases',
    help: 'Leases by mount and state (pending, active, revoking, irrevocable).',
    labelNames: ['mount', 'state'],
    registers,
    async collect() {
      this.reset()
      const rows = await sql<{ mount_path: string; state: string; n: number }>`
        select mount_path, state, count(*) as n from leases group by mount_path, state`
        .execute(storage.db)
        .then((r) => r.rows)
        .catch(() => [])
      for (const r of rows) this.set({ mount: r.mount_path, state: r.state }, Number(r.n))
    },
  })

  const children = new Map<string, { count: { inc(): void }; time: { observe(v: number): void } }>()
  return {
    registry,
    observeRequest(o) {
      // Label sets are few (route patterns × statuses): keep their children, skip re-hashing.
      const key = `${o.route}\0${o.mountType}\0${o.operation}\0${o.method}\0${o.status}`
      let child = children.get(key)
      if (!child) {
        const labels = {
          route: o.route,
          mount_type: o.mountType,
          operation: o.operation,
          method: o.method,
        }
        child = {
          count: requests.labels({ ...labels, status: String(o.status) }),
          time: latency.labels(labels),
        }
        if (children.size > 5000) children.clear()
        children.set(key, child)
      }
      child.count.inc()
      child.time.observe(o.durationSeconds)
    },
    observeRevocation: (lagMs) => revocationLag.observe(Math.max(0, lagMs) / 1000),
    revocationFailure: (mount) => revocationFailures.inc({ mount }),
    auditFailure: (device) => auditFailures.inc({ device }),
    policyLoadFailure: ({ type, reason }) => policyLoadFailures.inc({ type, reason }),
    render: () => registry.metrics(),
  }
}
