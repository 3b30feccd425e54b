import { describe, expect, it } from 'vitest'
import {
  createsCycle,
  groupPolicies,
  groupsContaining,
  type GroupLink,
} from '../../src/identity/membership.js'

const g = (
  id: string,
  policies: string[],
  entities: string[],
  groups: string[] = [],
): GroupLink => ({
  id,
  name: id,
  policies,
  memberEntityIds: entities,
  memberGroupIds: groups,
})

describe('group membership', () => {
  it('collects policies from direct groups and every ancestor', () => {
    const groups = [
      g('leaf', ['a'], ['e1']),
      g('mid', ['b'], [], ['leaf']),
      g('top', ['c', 'a'], [], ['mid']),
      g('other', ['z'], ['e2']),
    ]
    expect(groupPolicies(groups, 'e1')).toEqual(['a', 'b', 'c'])
    expect(groupsContaining(groups, 'e1').direct.map((x) => x.id)).toEqual(['leaf'])
  })

  it('terminates on a cycle already present in the data', () => {
    const groups = [g('x', ['p1'], ['e'], ['y']), g('y', ['p2'], [], ['x'])]
    expect(groupPolicies(groups, 'e')).toEqual(['p1', 'p2'])
  })

  it('detects a cycle that a new member list would create', () => {
    const groups = [g('a', [], []), g('b', [], [], ['a']), g('c', [], [], ['b'])]
    expect(createsCycle(groups, 'a', ['c'])).toBe(true)
    expect(createsCycle(groups, 'c', ['a'])).toBe(false)
  })
})
