import { randomBytes } from 'node:crypto'

/** Knobs of the lease manager and its expiry worker. Defaults follow OpenBao where it has one. */
export interface LeaseSettings {
  /** Identifies this node in row claims. */
  nodeId: string
  /** Milliseconds between polls for due leases. */
  tickMs: number
  /** Most rows claimed by one poll. */
  batchSize: number
  /** Revocations in flight at once on this node. */
  concurrency: number
  /**
   * Revocations in flight per target (`target_key`), so one slow target cannot take every slot.
   * A batch (see `revokeBatchSize`) is one revocation in flight: one connection, one transaction.
   */
  perTargetLimit: number
  /**
   * Most leases of one target handed to a backend's `revokeSecrets` at once. Backends without it
   * revoke one lease per slot, as before. 1 turns batching off.
   */
  revokeBatchSize: number
  /** Failed revocations before a lease becomes `irrevocable` (OpenBao: 6). */
  maxAttempts: number
  /** First retry delay; doubles per attempt with ±50% jitter (OpenBao: 10 s). */
  backoffBaseMs: number
  /** Irrevocable leases are retried this rarely (OpenBao: 24 h). */
  irrevocableRetryMs: number
  /** A `pending` row older than this is a crashed issue: recovery revokes it (default 60 s). */
  pendingGraceMs: number
  /** How long a claim protects a row from other nodes (a dead node's claims lapse after it). */
  claimMs: number
}

export function defaultLeaseSettings(): LeaseSettings {
  return {
    nodeId: randomBytes(6).toString('hex'),
    tickMs: 250,
    batchSize: 200,
    concurrency: 32,
    perTargetLimit: 16,
    revokeBatchSize: 50,
    maxAttempts: 6,
    backoffBaseMs: 10_000,
    irrevocableRetryMs: 24 * 3600_000,
    pendingGraceMs: 60_000,
    claimMs: 60_000,
  }
}

/** Delay before retry number `attempts` (1-based): base × 2^(attempts−1), ±50% jitter. */
export function backoffMs(settings: LeaseSettings, attempts: number): number {
  const exp = settings.backoffBaseMs * 2 ** Math.min(attempts - 1, 20)
  return Math.round(exp * (0.5 + Math.random()))
}
