import type { MountEntry } from '../mounts.js'
import type { TokenEntry } from '../tokens.js'

/** Lease states. `pending`: intent written, credential may or may not exist yet. */
export type LeaseState = 'pending' | 'active' | 'revoking' | 'irrevocable'

/** A lease as the API shows it (`sys/leases/lookup`). */
export interface LeaseInfo {
  id: string
  path: string
  mountPath: string
  state: LeaseState
  issueTime: number
  expireTime: number
  lastRenewal: number | null
  renewable: boolean
  /** Seconds left (0 when due). */
  ttl: number
  /** Sanitised last revocation error, if any. */
  revokeError: string | null
  attempts: number
}

export interface IssueInput {
  mount: MountEntry
  /** Request path the secret was issued at, e.g. `database/creds/readonly` (the lease id prefix). */
  path: string
  /** Token that asked; the lease dies with it. */
  token: TokenEntry
  /** Seconds. */
  ttl: number
  /** Seconds from issue; renewals never extend past issue + maxTtl. */
  maxTtl: number
  /**
   * Epoch ms the lease may never outlive (a JIT grant's end): the expiry and max are lowered to
   * it before `create` runs, so the credential is made with the right expiry in one round trip.
   * An extension of the grant gives the time back (`raiseCap`), up to `maxTtl`.
   */
  notAfter?: number
  renewable: boolean
  /**
   * What the backend needs to revoke the secret later, even after its role is gone (e.g.
   * `{ db: 'pg1', username: 'v-...', revocationStatements: [...] }`). Sealed by the barrier.
   * Never put the password here.
   */
  internal: Record<string, unknown>
  /** Groups revocation work so one dead target cannot starve others (e.g. `database/:pg1`). */
  targetKey: string
  /**
   * Creates the credential. Runs only after the pending lease row is durable. If it throws, the
   * manager revokes (backend.revokeSecret with `internal`) and removes the lease, then rethrows.
   * Receives the lease id and the expiry (epoch ms) to bake into the credential.
   */
  create(leaseId: string, expireTime: number): Promise<void>
}

/**
 * The lease manager (src/core/leases/manager.ts). Leases are rows indexed by (state, expires_at),
 * by token and by id prefix; the expiry worker claims due rows in batches; nothing is held in
 * memory per lease and startup does not read leases.
 */
export interface LeaseManager {
  /** Intent first: writes a pending lease, runs `create`, marks it active. Returns the lease id. */
  issue(input: IssueInput): Promise<{ leaseId: string; ttl: number; expireTime: number }>
  lookup(leaseId: string): Promise<LeaseInfo | undefined>
  /** Lists direct children of a prefix (`database/creds/ro/` → lease suffixes and sub-prefixes/). */
  list(prefix: string): Promise<string[]>
  renew(leaseId: string, incrementSeconds: number): Promise<{ ttl: number; warnings: string[] }>
  /** Revokes now (backend first, then the row). Unknown ids succeed. */
  revoke(leaseId: string): Promise<void>
  /**
   * Revokes every lease whose id starts with `prefix` (a prefix without a trailing slash that is
   * itself a lease id revokes just that lease). With `force`, rows are removed even when the
   * backend fails; the summary says how many such failures were swallowed.
   */
  revokePrefix(prefix: string, opts?: { force?: boolean }): Promise<RevokeSummary>
  /** Revokes every lease owned by these tokens (token revocation hook). */
  revokeByTokens(tokenIds: string[]): Promise<void>
  /**
   * Lowers the expiry of these active leases to `expireTime` (never raises it; also caps their
   * max) and tells their backends best-effort through `renewSecret`. Used by JIT access grants.
   */
  capExpiry(leaseIds: string[], expireTime: number): Promise<void>
  /**
   * Undoes `capExpiry` up to a later `expireTime` (a JIT grant was extended): raises the max of
   * these active leases, never past the max they were issued with (role and mount max TTL), and
   * renews through `renewSecret` those whose expiry the cap had cut, up to the new max.
   */
  raiseCap(leaseIds: string[], expireTime: number): Promise<void>
  /** The backend data of a live lease (for evidence-of-use sampling); undefined when gone. */
  secretOf?(
    leaseId: string,
  ): Promise<{ mountAccessor: string; internal: Record<string, unknown> } | undefined>
  count(opts?: { state?: LeaseState }): Promise<number>
  irrevocable(limit?: number): Promise<LeaseInfo[]>
  /** Background worker: claims due leases in batches and revokes them. */
  worker(): { start(): void; stop(): Promise<void> }
  /**
   * Revokes every lease of a mount (unmount hook). Leases whose revocation fails become
   * `irrevocable` with their error, so the unmount is never blocked and nothing is silently lost.
   */
  revokeByMount(mountAccessor: string): Promise<RevokeSummary>
  /** Revokes leases whose token no longer exists; returns how many were found. */
  tidy(): Promise<number>
  /** Lease counts by mount path (optionally of one state). */
  countByMount(opts?: { state?: LeaseState }): Promise<Record<string, number>>
}

/** Outcome of a bulk revocation. */
export interface RevokeSummary {
  revoked: number
  /** Backend revocations that failed (kept for retry, or removed anyway when forced). */
  failed: number
  /** First failure, sanitised. */
  firstError?: string
}
