/*
 * Storage rows of the identity store and their mapping to the types the rest of Stint uses.
 * JSON columns hold metadata, policy lists and group member lists.
 */

declare module '../storage/tables.js' {
  interface Tables {
    identity_entities: EntityRow
    identity_aliases: AliasRow
    identity_groups: GroupRow
    identity_state: { name: string; version: number }
  }
}

export interface EntityRow {
  id: string
  name: string
  metadata: string
  policies: string
  disabled: number
  created_at: number
  updated_at: number
}

export interface AliasRow {
  id: string
  canonical_id: string
  mount_accessor: string
  mount_type: string
  name: string
  metadata: string
  custom_metadata: string
  created_at: number
  updated_at: number
}

export interface GroupRow {
  id: string
  name: string
  type: string
  policies: string
  metadata: string
  member_entity_ids: string
  member_group_ids: string
  created_at: number
  updated_at: number
}

export interface Entity {
  id: string
  name: string
  metadata: Record<string, string>
  policies: string[]
  disabled: boolean
  createdAt: number
  updatedAt: number
}

export interface Alias {
  id: string
  canonicalId: string
  mountAccessor: string
  mountType: string
  name: string
  /** Set by the auth method on login (e.g. CI claims). */
  metadata: Record<string, string>
  /** Set by operators through `identity/entity-alias`. */
  customMetadata: Record<string, string>
  createdAt: number
  updatedAt: number
}

export interface Group {
  id: string
  name: string
  type: 'internal'
  policies: string[]
  metadata: Record<string, string>
  memberEntityIds: string[]
  memberGroupIds: string[]
  createdAt: number
  updatedAt: number
}

export interface EntityChanges {
  name?: string
  metadata?: Record<string, string>
  policies?: string[]
  disabled?: boolean
}

export interface GroupChanges {
  name?: string
  policies?: string[]
  metadata?: Record<string, string>
  memberEntityIds?: string[]
  memberGroupIds?: string[]
}

export function jsonMap(text: string): Record<string, string> {
  const value = JSON.parse(text) as unknown
  return value && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, string>)
    : {}
}

export function jsonList(text: string): string[] {
  const value = JSON.parse(text) as unknown
  return Array.isArray(value) ? value.map(String) : []
}

export function entityFromRow(r: EntityRow): Entity {
  return {
    id: r.id,
    name: r.name,
    metadata: jsonMap(r.metadata),
    policies: jsonList(r.policies),
    disabled: Number(r.disabled) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }
}

export function entityToRow(e: Entity): EntityRow {
  return {
    id: e.id,
    name: e.name,
    metadata: JSON.stringify(e.metadata),
    policies: JSON.stringify(e.policies),
    disabled: e.disabled ? 1 : 0,
    created_at: e.createdAt,
    updated_at: e.updatedAt,
  }
}

export function aliasFromRow(r: AliasRow): Alias {
  return {
    id: r.id,
    canonicalId: r.canonical_id,
    mountAccessor: r.mount_accessor,
    mountType: r.mount_type,
    name: r.name,
    metadata: jsonMap(r.metadata),
    customMetadata: jsonMap(r.custom_metadata),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }
}

export function aliasToRow(a: Alias): AliasRow {
  return {
    id: a.id,
    canonical_id: a.canonicalId,
    mount_accessor: a.mountAccessor,
    mount_type: a.mountType,
    name: a.name,
    metadata: JSON.stringify(a.metadata),
    custom_metadata: JSON.stringify(a.customMetadata),
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  }
}

export function groupFromRow(r: GroupRow): Group {
  return {
    id: r.id,
    name: r.name,
    type: 'internal',
    policies: jsonList(r.policies),
    metadata: jsonMap(r.metadata),
    memberEntityIds: jsonList(r.member_entity_ids),
    memberGroupIds: jsonList(r.member_group_ids),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  }
}

export function groupToRow(g: Group): GroupRow {
  return {
    id: g.id,
    name: g.name,
    type: g.type,
    policies: JSON.stringify(g.policies),
    metadata: JSON.stringify(g.metadata),
    member_entity_ids: JSON.stringify(g.memberEntityIds),
    member_group_ids: JSON.stringify(g.memberGroupIds),
    created_at: g.createdAt,
    updated_at: g.updatedAt,
  }
}
