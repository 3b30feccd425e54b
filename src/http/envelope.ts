import type { AuthInfo, LogicalRequest, LogicalResponse } from '../core/request.js'

/** Vault's `auth` block, snake_cased, with the keys clients read. */
export function formatAuth(auth: AuthInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {
    client_token: auth.clientToken,
    accessor: auth.accessor,
    policies: auth.policies,
    token_policies: auth.tokenPolicies,
    metadata: auth.metadata,
    lease_duration: auth.leaseDuration,
    renewable: auth.renewable,
    entity_id: auth.entityId,
    token_type: auth.tokenType,
    orphan: auth.orphan,
    mfa_requirement: null,
    num_uses: auth.numUses,
  }
  if (auth.identityPolicies?.length) out.identity_policies = auth.identityPolicies
  return out
}

/**
 * The success envelope: every key present, `null` when unset. With `injectTopLevel`, the keys of
 * `data` are also copied to the top level (what old clients of sys/mounts, sys/policy... read).
 */
export function envelope(req: LogicalRequest, response: LogicalResponse): Record<string, unknown> {
  const body: Record<string, unknown> = {
    request_id: req.id,
    lease_id: response.secret?.leaseId ?? '',
    renewable: response.secret?.renewable ?? false,
    lease_duration: response.secret?.ttl ?? 0,
    data: response.data ?? null,
    wrap_info: null,
    warnings: response.warnings?.length ? response.warnings : null,
    auth: response.auth ? formatAuth(response.auth) : null,
    mount_type: req.mount?.type ?? '',
  }
  if (response.injectTopLevel && response.data) {
    for (const [k, v] of Object.entries(response.data)) if (!(k in body)) body[k] = v
  }
  return body
}
