import type { CoreServices } from '../core/services.js'
import { grantHolderOf, type TokenEntry } from '../core/tokens.js'
import type { IdentityStore } from '../identity/types.js'
import type { AccessRule, RuleStore } from './rules.js'
import type { AccessRequest, Actor } from './requests.js'

/**
 * Who is asking, who may decide, and what each may see. Every fact used here was verified by
 * the server: the token's entity and its groups, the claims its auth method verified at login,
 * and the second factor of that login; never the token's caller-written `meta`.
 */

/** One person is one entity, across every alias; a token without one is only itself. */
export const personOf = (actor: Actor) => actor.entityId || actor.key
export const samePerson = (a: Actor, b: Actor) => a.key === b.key || personOf(a) === personOf(b)

/** Only verified facts reach auto-approval (never token `meta` or request bodies). */
export const verified = (actor: Actor) => ({
  groups: actor.groups,
  claims: actor.metadata,
  authMount: actor.authMount ?? '',
  entityMetadata: actor.entityMetadata ?? {},
})

/** Whether the actor may act for the rule's approvers (a member of one of its groups, or root). */
export function approverOf(rule: AccessRule | undefined, actor: Actor, token: TokenEntry): boolean {
  return (
    rule?.approvals.some((f) => actor.groups.includes(f.group)) === true ||
    token.policies.includes('root')
  )
}

/**
 * The approvals that count: each person once, whichever alias or token they approved with,
 * and never the requester's own unless the rule allows self-approval.
 */
export function countedApprovers(
  rule: AccessRule,
  request: AccessRequest,
  decisions: Array<{ decision: string; actor: Actor }>,
): Actor[] {
  const seen = new Set<string>()
  return decisions
    .filter(
      (d) =>
        d.decision === 'approve' &&
        (rule.allowSelfApproval || !samePerson(d.actor, request.requester)),
    )
    .map((d) => d.actor)
    .filter((a) => !seen.has(personOf(a)) && seen.add(personOf(a)))
}

export type PeopleDeps = Pick<CoreServices, 'aclFor' | 'mounts'> & {
  identity: Pick<IdentityStore, 'entity' | 'groupsFor'>
  rules: Pick<RuleStore, 'get'>
}

/** What a token may see of requests, and which it may decide. */
export interface Viewer {
  actor: Actor
  /** Every request (sudo on `sys/access/requests`, or root). */
  seesAll: boolean
  decides(r: AccessRequest): Promise<boolean>
  sees(r: AccessRequest): Promise<boolean>
}

export function createPeople(deps: PeopleDeps) {
  const { identity, mounts, rules } = deps

  /** Who is asking: the grant holder, the entity's groups and what the server verified. */
  async function actorOf(token: TokenEntry): Promise<Actor> {
    const entity = token.entityId ? await identity.entity(token.entityId) : undefined
    const groups = token.entityId ? await identity.groupsFor(token.entityId) : []
    const loginMount = token.login ? mounts.byAccessor(token.login.mount)?.entry.path : ''
    return {
      key: grantHolderOf(token),
      entityId: token.entityId,
      displayName: token.displayName,
      metadata: token.login?.claims ?? {},
      authMount: loginMount ?? '',
      entityMetadata: entity?.metadata ?? {},
      groups: groups.map((g) => g.name),
      mfa: token.mfa === 'totp',
    }
  }

  /**
   * What a token may see: its own requests and those it may decide; every request only with
   * `sudo` on `sys/access/requests` (auditors), or root.
   */
  async function viewerOf(token: TokenEntry): Promise<Viewer> {
    const actor = await actorOf(token)
    const { acl } = await deps.aclFor(token)
    const seesAll = acl.root || acl.capabilities('sys/access/requests').includes('sudo')
    const ruleOf = new Map<string, Promise<AccessRule | undefined>>()
    const decides = async (r: AccessRequest) => {
      if (!ruleOf.has(r.ruleName)) ruleOf.set(r.ruleName, rules.get(r.ruleName))
      return approverOf(await ruleOf.get(r.ruleName), actor, token)
    }
    return {
      actor,
      seesAll,
      decides,
      async sees(r) {
        return seesAll || r.requester.key === actor.key || (await decides(r))
      },
    }
  }

  return { actorOf, viewerOf }
}

export type People = ReturnType<typeof createPeople>
