/**
 * The identity store (src/identity/store.ts) as the rest of Stint uses it. Entities are machine or
 * human identities; aliases tie an entity to an auth mount's name for it (a repository for jwt, a
 * role for AppRole, a username for userpass); groups collect entities for policies and approvals.
 */
export interface IdentityStore {
  /**
   * Finds the entity behind (mount accessor, alias name), creating entity and alias on first
   * login. Alias metadata (e.g. CI claims) is refreshed on every login. Returns the entity id.
   */
  resolveAlias(input: {
    mountAccessor: string
    mountType: string
    name: string
    metadata?: Record<string, string>
  }): Promise<string>
  /** Policies the entity gets from itself and its groups (direct and nested). */
  policiesFor(entityId: string): Promise<string[]>
  /** Group ids and names the entity belongs to (for access rules and approvals). */
  groupsFor(entityId: string): Promise<Array<{ id: string; name: string }>>
  entity(entityId: string): Promise<
    | {
        id: string
        name: string
        metadata: Record<string, string>
        disabled: boolean
        aliases: Array<{ mountAccessor: string; name: string; metadata: Record<string, string> }>
      }
    | undefined
  >
}
