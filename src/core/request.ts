import type { TokenEntry } from './tokens.js'
import type { MountEntry } from './mount-entry.js'

/** Logical operations, as Vault names them. `create` vs `update` is decided by the existence check. */
export type Operation = 'read' | 'list' | 'create' | 'update' | 'patch' | 'delete'

/**
 * A request after HTTP decoding and before any backend sees it. The same object travels through
 * token lookup, the ACL check, access guards, audit and the backend handler.
 */
export interface LogicalRequest {
  /** Request id, also returned to the client as `request_id`. */
  id: string
  operation: Operation
  /** Full logical path without `/v1/` (e.g. `secret/data/app`, `auth/approle/login`). */
  path: string
  /** Body merged with query parameters (GET/DELETE) as Vault does. */
  data: Record<string, unknown>
  /** Raw query parameters (string values only). */
  query: Record<string, string>
  /** Lower-cased request headers. */
  headers: Record<string, string>
  /** The raw client token, if one was sent. Never logged; audit HMACs it. */
  clientToken?: string
  /** The resolved token, once authenticated. */
  token?: TokenEntry
  /** Remote address of the client (for CIDR bindings and audit). */
  remoteAddress: string
  remotePort?: number
  /** The mount that serves this path and the path relative to it; set by the router. */
  mount?: MountEntry
  mountPath?: string
  relativePath?: string
  /** The pattern of the path definition that serves the request (a metrics label). */
  route?: string
  /**
   * Sent as HTTP `HEAD`: a read whose answer is thrown away. Only paths that declare `headSafe`
   * run it; elsewhere it is a 405 and nothing runs (a read may mint a credential).
   */
  head?: boolean
  /**
   * The latest time (epoch ms) a secret issued for this request may live: set by a guard (a JIT
   * grant's end), honoured by the lease manager before the credential is created.
   */
  notAfter?: number
}

/** Lease information a backend attaches to a response that carries a secret. */
export interface SecretInfo {
  leaseId: string
  /** Seconds. */
  ttl: number
  renewable: boolean
}

/** The `auth` block of a login, token create or token renew response. */
export interface AuthInfo {
  clientToken: string
  accessor: string
  policies: string[]
  tokenPolicies: string[]
  identityPolicies?: string[]
  metadata: Record<string, string> | null
  leaseDuration: number
  renewable: boolean
  entityId: string
  tokenType: 'service' | 'batch'
  orphan: boolean
  numUses: number
}

/** What a handler returns. `null`/`undefined` means 204 No Content. */
export interface LogicalResponse {
  data?: Record<string, unknown> | null
  secret?: SecretInfo
  auth?: AuthInfo
  warnings?: string[]
  /** Overrides the HTTP status (e.g. 202, or 404 with a full envelope for deleted KV versions). */
  status?: number
  /** Raw body (e.g. Prometheus text); bypasses the envelope. */
  raw?: { contentType: string; body: string; status?: number }
  /** Keys of `data` also copied to the top level (Vault's backward-compatibility injection). */
  injectTopLevel?: boolean
  /** Replaces the whole JSON body (sys/init, sys/seal-status, sys/health are not enveloped). */
  body?: unknown
}

export type Handler = (req: LogicalRequest) => Promise<LogicalResponse | null | void>

/**
 * One route of a backend, matched against the path relative to the mount.
 *
 * @example
 * { pattern: /^data\/(?<path>.+)$/, operations: { read: readData, update: writeData },
 *   existence: exists }
 */
export interface PathDef {
  /** Anchored regular expression; named groups are passed to handlers through `params`. */
  pattern: RegExp
  operations: Partial<
    Record<
      Operation,
      (
        req: LogicalRequest,
        params: Record<string, string>,
      ) => Promise<LogicalResponse | null | void>
    >
  >
  /**
   * Existence check. When present, a POST/PUT to a missing item is `create` and to an existing one
   * `update` (the ACL needs the matching capability). When absent, writes are `update`, except
   * when the path defines only `create`.
   */
  existence?: (req: LogicalRequest, params: Record<string, string>) => Promise<boolean>
  /** No token needed (login paths). */
  unauthenticated?: boolean
  /** Root-protected: the ACL must grant `sudo` too. */
  sudo?: boolean
  /** Served while sealed (init, unseal, seal-status, health). */
  allowSealed?: boolean
  /** Request may run before the server is initialised (sys/init, sys/health). */
  /**
   * `HEAD` may run this path's read: it has no side effects (status endpoints). Everywhere else
   * `HEAD` is a 405 before any token, ACL or handler runs, as Vault answers it outside sys/health.
   */
  headSafe?: boolean
}

/** A mounted engine or auth method. */
export interface Backend {
  paths: PathDef[]
  /** Called when the mount is disabled, after its leases are revoked: delete the mount's data. */
  cleanup?(): Promise<void>
  /**
   * Revokes one secret this backend issued (leases call this with the data stored at issue time;
   * it must work after the role is gone, and succeed when the secret is already gone).
   */
  revokeSecret?(internal: Record<string, unknown>): Promise<void>
  /**
   * Revokes several secrets at once (the lease manager hands it up to `revokeBatchSize` leases of
   * one mount, e.g. expired leases of one target). Same rules as `revokeSecret` for each item.
   * Resolves with one outcome per item, in order: undefined when revoked (or already gone), else
   * that item's error, so one bad credential fails alone. Rejecting fails every item. Optional:
   * without it, the manager calls `revokeSecret` per lease.
   */
  revokeSecrets?(internals: Record<string, unknown>[]): Promise<Array<Error | undefined>>
  /** Renews one secret; returns nothing or throws. */
  renewSecret?(internal: Record<string, unknown>, newExpireTime: number): Promise<void>
  /** Releases connections and timers (reconfigure, unmount, shutdown). */
  close?(): Promise<void>
  /**
   * Describes what a request to `relativePath` would do, for approvers of an access request
   * (e.g. the target, the role and its rendered creation statements). No secret in it.
   */
  describeAccess?(relativePath: string): Promise<Record<string, unknown> | undefined>
  /** Samples the target for live use of a secret (e.g. open sessions of a database user). */
  inspectSecret?(internal: Record<string, unknown>): Promise<{ sessions: number }>
}
