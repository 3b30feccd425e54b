import type { RequestContext } from '../core/core.js'
import type { ApiError } from '../core/errors.js'
import type { AuthInfo, LogicalResponse } from '../core/request.js'
import type { TokenEntry } from '../core/tokens.js'
import { hashStructure, hashValue } from './hashing.js'

/** How one device hashes what it writes. */
export interface HashOptions {
  salt: Uint8Array
  /** Hash token accessors too (Vault's `hmac_accessor`, default true). */
  hmacAccessor: boolean
  /** Write everything in clear (Vault's `log_raw`): only for debugging. */
  logRaw: boolean
}

/** A request or response entry in Vault's audit JSON shape (before chaining). */
export type AuditEntry = Record<string, unknown> & { type: 'request' | 'response' }

/** The request entry: who asked for what, written before the handler runs. */
export function requestEntry(ctx: RequestContext, opts: HashOptions, now = new Date()): AuditEntry {
  return {
    time: now.toISOString(),
    type: 'request',
    auth: authBlock(ctx, opts),
    request: requestBlock(ctx, opts),
  }
}

/** The response entry: what the caller got back (every secret hashed), or the error. */
export function responseEntry(
  ctx: RequestContext,
  response: LogicalResponse | null,
  error: ApiError | undefined,
  opts: HashOptions,
  now = new Date(),
): AuditEntry {
  const entry: AuditEntry = {
    time: now.toISOString(),
    type: 'response',
    auth: authBlock(ctx, opts),
    request: requestBlock(ctx, opts),
    response: responseBlock(ctx, response, opts),
  }
  if (error) entry.error = error.errors.join('; ') || `status ${error.status}`
  return entry
}

function hashString(opts: HashOptions, value: string | undefined): string | undefined {
  if (value === undefined || value === '') return value
  return opts.logRaw ? value : hashValue(opts.salt, value)
}

function hashAccessor(opts: HashOptions, value: string | undefined): string | undefined {
  return opts.hmacAccessor ? hashString(opts, value) : value
}

function hashData(opts: HashOptions, data: unknown, keepClear: string[] = []): unknown {
  if (data === undefined || data === null) return undefined
  return opts.logRaw ? data : hashStructure(opts.salt, data, new Set(keepClear))
}

function authBlock(ctx: RequestContext, opts: HashOptions): Record<string, unknown> {
  const token: TokenEntry | undefined = ctx.req.token
  if (!token) return { token_type: 'default' }
  return {
    client_token: hashString(opts, ctx.req.clientToken),
    accessor: hashAccessor(opts, token.accessor),
    display_name: token.displayName,
    policies: ctx.policies.length ? ctx.policies : token.policies,
    token_policies: token.policies,
    metadata: token.meta,
    entity_id: token.entityId,
    token_type: token.type,
    token_ttl: token.creationTtl,
    token_issue_time: new Date(token.creationTime).toISOString(),
    policy_results: {
      allowed: true,
      granting_policies: ctx.grantingPolicies.map((name) => ({
        name,
        namespace_id: 'root',
        type: 'acl',
      })),
    },
  }
}

function requestBlock(ctx: RequestContext, opts: HashOptions): Record<string, unknown> {
  const { req, mount } = ctx
  const data = Object.keys(req.data).length
    ? hashData(opts, req.data, mount?.config.auditNonHmacRequestKeys)
    : undefined
  return {
    id: req.id,
    operation: req.operation,
    mount_point: mount?.path ?? '',
    mount_type: mount?.type ?? '',
    mount_accessor: mount?.accessor ?? '',
    client_token: hashString(opts, req.clientToken),
    client_token_accessor: hashAccessor(opts, req.token?.accessor),
    namespace: { id: 'root' },
    path: req.path,
    data,
    remote_address: req.remoteAddress,
    remote_port: req.remotePort,
  }
}

function responseBlock(
  ctx: RequestContext,
  response: LogicalResponse | null,
  opts: HashOptions,
): Record<string, unknown> {
  const keepClear = ctx.mount?.config.auditNonHmacResponseKeys
  const out: Record<string, unknown> = {
    mount_point: ctx.mount?.path ?? '',
    mount_type: ctx.mount?.type ?? '',
    mount_accessor: ctx.mount?.accessor ?? '',
  }
  if (!response) return out
  if (response.secret) out.secret = { lease_id: response.secret.leaseId }
  if (response.auth) out.auth = responseAuth(response.auth, opts)
  // Unenveloped bodies (sys/init carries keys and the root token) are hashed like data.
  const data = response.data ?? (response.body !== undefined ? response.body : undefined)
  if (data !== undefined && data !== null) out.data = hashData(opts, data, keepClear)
  if (response.warnings?.length) out.warnings = response.warnings
  if (response.status) out.status = response.status
  return out
}

function responseAuth(auth: AuthInfo, opts: HashOptions): Record<string, unknown> {
  return {
    client_token: hashString(opts, auth.clientToken),
    accessor: hashAccessor(opts, auth.accessor),
    policies: auth.policies,
    token_policies: auth.tokenPolicies,
    identity_policies: auth.identityPolicies,
    metadata: auth.metadata,
    entity_id: auth.entityId,
    token_type: auth.tokenType,
    lease_duration: auth.leaseDuration,
    renewable: auth.renewable,
    orphan: auth.orphan,
    num_uses: auth.numUses,
  }
}
