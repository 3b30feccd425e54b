import type { MountTable } from '../core/mounts.js'
import type { Backend, LogicalRequest, LogicalResponse, PathDef } from '../core/request.js'
import { badRequest } from '../core/errors.js'
import { optionalBool, optionalString, requireString, stringMap } from '../core/fields.js'
import type { Entity, EntityChanges, IdentityService } from './store.js'
import { groupsContaining } from './membership.js'
import { aliasData, entityData } from './responses.js'
import { identityPolicies, optionalName } from './fields.js'
import { groupPaths } from './group-paths.js'

export interface IdentityBackendDeps {
  store: IdentityService
  mounts: Pick<MountTable, 'byAccessor'>
}

/**
 * The `identity/` mount, shaped like Vault's: `entity`, `entity/id/<id>`, `entity/name/<name>`,
 * `entity-alias`, `entity-alias/id/<id>`, `group`, `group/id/<id>`, `group/name/<name>` and
 * `lookup/entity`.
 */
export function createIdentityBackend(deps: IdentityBackendDeps): Backend {
  const { store, mounts } = deps

  const readEntity = async (entity: Entity | undefined): Promise<LogicalResponse | null> => {
    if (!entity) return null
    const { direct, all } = groupsContaining(await store.listGroups(), entity.id)
    const groups = { direct: direct.map((g) => g.id), all: all.map((g) => g.id) }
    return { data: entityData(entity, await store.aliasesOf(entity.id), groups, mounts) }
  }

  const entityChanges = (d: Record<string, unknown>, withName: boolean): EntityChanges => ({
    name: withName ? optionalName(d.name) : undefined,
    metadata: stringMap(d.metadata, 'metadata') ?? undefined,
    policies: identityPolicies(d.policies),
    disabled: optionalBool(d.disabled, 'disabled'),
  })

  const written = async (entity: Entity): Promise<LogicalResponse> => ({
    data: {
      id: entity.id,
      name: entity.name,
      aliases: (await store.aliasesOf(entity.id)).map((a) => a.id),
    },
  })

  const mountType = (accessor: string): string => {
    const mount = mounts.byAccessor(accessor)?.entry
    if (!mount || mount.kind !== 'auth') throw badRequest('invalid mount accessor')
    return mount.type
  }

  const entityPaths: PathDef[] = [
    {
      pattern: /^entity\/?$/,
      operations: {
        update: async (req) => {
          const changes = entityChanges(req.data, true)
          const id = optionalString(req.data.id, 'id')
          const existing = id
            ? await store.getEntity(id)
            : changes.name
              ? await store.getEntityByName(changes.name)
              : undefined
          if (id && !existing) throw badRequest('entity not found')
          return written(
            existing
              ? await store.updateEntity(existing.id, changes)
              : await store.createEntity(changes),
          )
        },
      },
    },
    {
      pattern: /^entity\/id\/?$/,
      operations: {
        list: async () => {
          const entities = await store.listEntities()
          return {
            data: {
              keys: entities.map((e) => e.id),
              key_info: Object.fromEntries(entities.map((e) => [e.id, { name: e.name }])),
            },
          }
        },
      },
    },
    {
      pattern: /^entity\/id\/(?<id>[^/]+)$/,
      operations: {
        read: async (_req, p) => readEntity(await store.getEntity(p.id!)),
        update: async (req, p) => {
          if (!(await store.getEntity(p.id!))) throw badRequest('entity not found')
          return written(await store.updateEntity(p.id!, entityChanges(req.data, true)))
        },
        delete: async (_req, p) => {
          await store.deleteEntity(p.id!)
          return null
        },
      },
    },
    {
      pattern: /^entity\/name\/?$/,
      operations: {
        list: async () => ({ data: { keys: (await store.listEntities()).map((e) => e.name) } }),
      },
    },
    {
      pattern: /^entity\/name\/(?<name>[^/]+)$/,
      existence: async (_req, p) => (await store.getEntityByName(p.name!)) !== undefined,
      operations: {
        read: async (_req, p) => readEntity(await store.getEntityByName(p.name!)),
        create: async (req, p) => {
          const name = optionalName(p.name)
          return written(await store.createEntity({ ...entityChanges(req.data, false), name }))
        },
        update: async (req, p) => {
          const entity = await store.getEntityByName(p.name!)
          if (!entity) throw badRequest('entity not found')
          await store.updateEntity(entity.id, entityChanges(req.data, false))
          return null
        },
        delete: async (_req, p) => {
          const entity = await store.getEntityByName(p.name!)
          if (entity) await store.deleteEntity(entity.id)
          return null
        },
      },
    },
  ]

  const aliasPaths: PathDef[] = [
    {
      pattern: /^entity-alias\/?$/,
      operations: {
        update: async (req) => {
          const d = req.data
          const name = requireString(d.name, 'name')
          const mountAccessor = requireString(d.mount_accessor, 'mount_accessor')
          const type = mountType(mountAccessor)
          let canonicalId = optionalString(d.canonical_id, 'canonical_id')?.trim()
          const customMetadata = stringMap(d.custom_metadata, 'custom_metadata') ?? {}
          if (await store.findAlias(mountAccessor, name)) {
            throw badRequest(`alias "${name}" already exists on this mount`)
          }
          if (!canonicalId) canonicalId = (await store.createEntity({})).id
          const alias = await store.createAlias({
            name,
            canonicalId,
            mountAccessor,
            mountType: type,
            customMetadata,
          })
          return { data: { id: alias.id, canonical_id: alias.canonicalId } }
        },
      },
    },
    {
      pattern: /^entity-alias\/id\/?$/,
      operations: {
        list: async () => {
          const aliases = await store.listAliases()
          const info = aliases.map((a) => {
            const { id: _id, ...rest } = aliasData(a, mounts)
            return [a.id, rest]
          })
          return { data: { keys: aliases.map((a) => a.id), key_info: Object.fromEntries(info) } }
        },
      },
    },
    {
      pattern: /^entity-alias\/id\/(?<id>[^/]+)$/,
      operations: {
        read: async (_req, p) => {
          const alias = await store.getAlias(p.id!)
          return alias ? { data: aliasData(alias, mounts) } : null
        },
        update: async (req, p) => {
          const d = req.data
          const mountAccessor =
            optionalString(d.mount_accessor, 'mount_accessor')?.trim() || undefined
          const alias = await store.updateAlias(p.id!, {
            name: optionalString(d.name, 'name')?.trim() || undefined,
            canonicalId: optionalString(d.canonical_id, 'canonical_id')?.trim() || undefined,
            mountAccessor,
            mountType: mountAccessor ? mountType(mountAccessor) : undefined,
            customMetadata: stringMap(d.custom_metadata, 'custom_metadata') ?? undefined,
          })
          return { data: { id: alias.id, canonical_id: alias.canonicalId } }
        },
        delete: async (_req, p) => {
          await store.deleteAlias(p.id!)
          return null
        },
      },
    },
  ]

  const lookup: PathDef = {
    pattern: /^lookup\/entity$/,
    operations: {
      update: async (req: LogicalRequest) => {
        const d = req.data
        const id = optionalString(d.id, 'id')
        const name = optionalString(d.name, 'name')
        const aliasName = optionalString(d.alias_name, 'alias_name')
        const aliasMount = optionalString(d.alias_mount_accessor, 'alias_mount_accessor')
        const given = [id, name, aliasName ?? aliasMount].filter((v) => v !== undefined)
        if (given.length !== 1)
          throw badRequest(
            'exactly one of id, name or alias_name with alias_mount_accessor is required',
          )
        if (id) return readEntity(await store.getEntity(id))
        if (name) return readEntity(await store.getEntityByName(name))
        if (!aliasName || !aliasMount)
          throw badRequest('alias_name and alias_mount_accessor go together')
        const alias = await store.findAlias(aliasMount, aliasName)
        return alias ? readEntity(await store.getEntity(alias.canonicalId)) : null
      },
    },
  }

  return { paths: [...entityPaths, ...aliasPaths, ...groupPaths(store), lookup] }
}
