import type { Acl } from './policy/acl.js'
import type { PolicyStore } from './policy/store.js'
import type { TokenEntry } from './tokens.js'

/** Turns a token into the policies in force for it and their compiled ACL. */
export interface AccessControl {
  /** Policies in force for a token: its own plus its entity's and groups'. */
  effectivePolicies(token: TokenEntry): Promise<{ all: string[]; identity: string[] }>
  /** The token's compiled ACL and the policy names behind it. */
  aclFor(token: TokenEntry): Promise<{ acl: Acl; policies: string[] }>
  /**
   * The ACL remembered for a token without an entity, while no policy changed since: the request
   * pipeline's fast path, answered without awaiting. `undefined` means ask {@link aclFor}.
   */
  memoFor(token: TokenEntry): { acl: Acl; policies: string[] } | undefined
}

export interface AccessControlDeps {
  policies: Pick<PolicyStore, 'acl' | 'generation'>
  /** Extra policies that come from an entity and its groups (the identity store answers). */
  identityPolicies: (entityId: string) => Promise<string[]>
}

/**
 * A token without an entity has a fixed policy list: its ACL is kept on the (briefly cached)
 * token entry until a policy changes. Entity tokens ask the identity store every time.
 */
export function createAccessControl(deps: AccessControlDeps): AccessControl {
  const { policies, identityPolicies } = deps
  const memo = new WeakMap<TokenEntry, { generation: number; acl: Acl; policies: string[] }>()

  const memoFor = (token: TokenEntry) => {
    const hit = token.entityId ? undefined : memo.get(token)
    return hit && hit.generation === policies.generation() ? hit : undefined
  }
  const effectivePolicies = async (token: TokenEntry) => {
    const identity = token.entityId ? await identityPolicies(token.entityId) : []
    return { all: [...new Set([...token.policies, ...identity])], identity }
  }
  return {
    memoFor,
    effectivePolicies,
    async aclFor(token) {
      const hit = memoFor(token)
      if (hit) return hit
      const generation = policies.generation()
      const { all } = await effectivePolicies(token)
      const acl = await policies.acl(all, { entityId: token.entityId })
      if (!token.entityId) memo.set(token, { generation, acl, policies: all })
      return { acl, policies: all }
    },
  }
}
