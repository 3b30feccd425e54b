/** The part of a group that membership questions need. */
export interface GroupLink {
  id: string
  name: string
  policies: string[]
  memberEntityIds: string[]
  memberGroupIds: string[]
}

/**
 * Groups an entity belongs to: those that list it directly, then every group that lists one of
 * those as a member group (a subgroup's members inherit the parent's policies), to any depth.
 * Safe against cycles that older data or concurrent writes could have created.
 */
export function groupsContaining(
  groups: GroupLink[],
  entityId: string,
): {
  direct: GroupLink[]
  all: GroupLink[]
} {
  const parentsOf = new Map<string, GroupLink[]>()
  for (const g of groups) {
    for (const child of g.memberGroupIds) {
      const list = parentsOf.get(child) ?? []
      list.push(g)
      parentsOf.set(child, list)
    }
  }
  const direct = groups.filter((g) => g.memberEntityIds.includes(entityId))
  const seen = new Map<string, GroupLink>()
  const queue = [...direct]
  while (queue.length > 0) {
    const g = queue.shift()!
    if (seen.has(g.id)) continue
    seen.set(g.id, g)
    queue.push(...(parentsOf.get(g.id) ?? []))
  }
  return { direct, all: [...seen.values()] }
}

/** Policies an entity gets from its groups, direct and inherited, sorted and de-duplicated. */
export function groupPolicies(groups: GroupLink[], entityId: string): string[] {
  const { all } = groupsContaining(groups, entityId)
  return [...new Set(all.flatMap((g) => g.policies))].sort()
}

/**
 * True when making `groupId` list `memberGroupIds` would close a loop: some member group already
 * contains `groupId`, directly or through its own subgroups.
 */
export function createsCycle(
  groups: GroupLink[],
  groupId: string,
  memberGroupIds: string[],
): boolean {
  const byId = new Map(groups.map((g) => [g.id, g]))
  const seen = new Set<string>()
  const stack = [...memberGroupIds]
  while (stack.length > 0) {
    const id = stack.pop()!
    if (id === groupId) return true
    if (seen.has(id)) continue
    seen.add(id)
    stack.push(...(byId.get(id)?.memberGroupIds ?? []))
  }
  return false
}
