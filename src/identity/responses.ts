import type { MountTable } from '../core/mounts.js'
import type { Alias, Entity, Group } from './store.js'

/*
 * Vault-shaped bodies for identity reads. Times are RFC 3339 strings as Vault returns them;
 * Stint has one namespace, `root`.
 */

const iso = (ms: number) => new Date(ms).toISOString()

export function aliasData(
  alias: Alias,
  mounts: Pick<MountTable, 'byAccessor'>,
): Record<string, unknown> {
  const mount = mounts.byAccessor(alias.mountAccessor)?.entry
  return {
    id: alias.id,
    canonical_id: alias.canonicalId,
    mount_accessor: alias.mountAccessor,
    mount_type: alias.mountType,
    mount_path: mount?.path ?? '',
    name: alias.name,
    metadata: alias.metadata,
    custom_metadata: alias.customMetadata,
    creation_time: iso(alias.createdAt),
    last_update_time: iso(alias.updatedAt),
    merged_from_canonical_ids: null,
    namespace_id: 'root',
    local: false,
  }
}

export function entityData(
  entity: Entity,
  aliases: Alias[],
  groups: { direct: string[]; all: string[] },
  mounts: Pick<MountTable, 'byAccessor'>,
): Record<string, unknown> {
  const direct = new Set(groups.direct)
  return {
    id: entity.id,
    name: entity.name,
    metadata: entity.metadata,
    policies: entity.policies,
    disabled: entity.disabled,
    aliases: aliases.map((a) => aliasData(a, mounts)),
    direct_group_ids: groups.direct,
    group_ids: groups.all,
    inherited_group_ids: groups.all.filter((id) => !direct.has(id)),
    creation_time: iso(entity.createdAt),
    last_update_time: iso(entity.updatedAt),
    merged_entity_ids: null,
    namespace_id: 'root',
    bucket_key: '',
    mfa_secrets: {},
  }
}

export function groupData(group: Group, all: Group[]): Record<string, unknown> {
  return {
    id: group.id,
    name: group.name,
    type: group.type,
    policies: group.policies,
    metadata: group.metadata,
    member_entity_ids: group.memberEntityIds,
    member_group_ids: group.memberGroupIds,
    parent_group_ids: all.filter((g) => g.memberGroupIds.includes(group.id)).map((g) => g.id),
    creation_time: iso(group.createdAt),
    last_update_time: iso(group.updatedAt),
    alias: {},
    namespace_id: 'root',
    modify_index: 0,
  }
}
