import type { LogicalResponse, PathDef } from '../core/request.js'
import { badRequest } from '../core/errors.js'
import { optionalString, stringMap } from '../core/fields.js'
import type { Group, GroupChanges, IdentityService } from './store.js'
import { groupData } from './responses.js'
import { identityPolicies, optionalIds, optionalName } from './fields.js'

/** `identity/group`, `group/id/<id>`, `group/name/<name>` and their listings (internal groups). */
export function groupPaths(store: IdentityService): PathDef[] {
  const changesFrom = (d: Record<string, unknown>, withName: boolean): GroupChanges => {
    const type = optionalString(d.type, 'type')
    if (type !== undefined && type !== '' && type !== 'internal') {
      throw badRequest('only internal groups are supported')
    }
    return {
      name: withName ? optionalName(d.name) : undefined,
      policies: identityPolicies(d.policies),
      metadata: stringMap(d.metadata, 'metadata') ?? undefined,
      memberEntityIds: optionalIds(d.member_entity_ids, 'member_entity_ids'),
      memberGroupIds: optionalIds(d.member_group_ids, 'member_group_ids'),
    }
  }
  const written = (g: Group): LogicalResponse => ({ data: { id: g.id, name: g.name } })
  const read = async (group: Group | undefined): Promise<LogicalResponse | null> =>
    group ? { data: groupData(group, await store.listGroups()) } : null

  return [
    {
      pattern: /^group\/?$/,
      operations: {
        update: async (req) => {
          const changes = changesFrom(req.data, true)
          const id = optionalString(req.data.id, 'id')
          const existing = id
            ? await store.getGroup(id)
            : changes.name
              ? await store.getGroupByName(changes.name)
              : undefined
          if (id && !existing) throw badRequest('group not found')
          return written(
            existing
              ? await store.updateGroup(existing.id, changes)
              : await store.createGroup(changes),
          )
        },
      },
    },
    {
      pattern: /^group\/id\/?$/,
      operations: {
        list: async () => {
          const groups = await store.listGroups()
          const info = groups.map((g) => [
            g.id,
            {
              name: g.name,
              num_member_entities: g.memberEntityIds.length,
              num_parent_groups: groups.filter((p) => p.memberGroupIds.includes(g.id)).length,
            },
          ])
          return { data: { keys: groups.map((g) => g.id), key_info: Object.fromEntries(info) } }
        },
      },
    },
    {
      pattern: /^group\/id\/(?<id>[^/]+)$/,
      operations: {
        read: async (_req, p) => read(await store.getGroup(p.id!)),
        update: async (req, p) =>
          written(await store.updateGroup(p.id!, changesFrom(req.data, true))),
        delete: async (_req, p) => {
          await store.deleteGroup(p.id!)
          return null
        },
      },
    },
    {
      pattern: /^group\/name\/?$/,
      operations: {
        list: async () => ({ data: { keys: (await store.listGroups()).map((g) => g.name) } }),
      },
    },
    {
      pattern: /^group\/name\/(?<name>[^/]+)$/,
      existence: async (_req, p) => (await store.getGroupByName(p.name!)) !== undefined,
      operations: {
        read: async (_req, p) => read(await store.getGroupByName(p.name!)),
        create: async (req, p) =>
          written(
            await store.createGroup({
              ...changesFrom(req.data, false),
              name: optionalName(p.name),
            }),
          ),
        update: async (req, p) => {
          const group = await store.getGroupByName(p.name!)
          if (!group) throw badRequest('group not found')
          return written(await store.updateGroup(group.id, changesFrom(req.data, false)))
        },
        delete: async (_req, p) => {
          const group = await store.getGroupByName(p.name!)
          if (group) await store.deleteGroup(group.id)
          return null
        },
      },
    },
  ]
}
