import { randomBytes, randomUUID } from 'node:crypto'
import { ApiError, badRequest } from './errors.js'
import type { Backend } from './request.js'
import type { MountConfig, MountEntry } from './mount-entry.js'
import type { Storage } from '../storage/storage.js'
import { nowMs } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    mounts: MountRow
  }
}

interface MountRow {
  id: string
  path: string
  kind: string
  type: string
  description: string
  accessor: string
  options: string | null
  config: string
  local: number
  seal_wrap: number
  created_at: number
}

export type { MountConfig, MountEntry }

/** Builds the backend for a mount. Registered per type; see src/core/registry.ts. */
export type BackendFactory = (mount: MountEntry) => Backend | Promise<Backend>

/** Mounts that always exist and cannot be disabled or moved. */
export const BUILTIN_MOUNTS: Array<Pick<MountEntry, 'path' | 'kind' | 'type' | 'description'>> = [
  {
    path: 'sys/',
    kind: 'secret',
    type: 'system',
    description: 'system endpoints used for control, policy and debugging',
  },
  { path: 'identity/', kind: 'secret', type: 'identity', description: 'identity store' },
  {
    path: 'cubbyhole/',
    kind: 'secret',
    type: 'cubbyhole',
    description: 'per-token private secret storage',
  },
  { path: 'auth/token/', kind: 'auth', type: 'token', description: 'token based credentials' },
]

export interface MountedBackend {
  entry: MountEntry
  backend: Backend
}

/**
 * The mount table: rows in storage, with their backends cached in memory and resolved by
 * longest prefix (`kv/team-a/x` goes to `kv/team-a/` before `kv/`).
 */
export class MountTable {
  #storage: Storage
  #factories: Map<string, BackendFactory>
  #mounted = new Map<string, MountedBackend>()
  #beforeDisable: Array<(entry: MountEntry) => Promise<void>> = []
  #changed: Array<() => Promise<void>> = []

  constructor(deps: { storage: Storage; factories: Map<string, BackendFactory> }) {
    this.#storage = deps.storage
    this.#factories = deps.factories
  }

  /** Runs before a mount is removed (revoke its leases, its tokens). */
  onBeforeDisable(hook: (entry: MountEntry) => Promise<void>): void {
    this.#beforeDisable.push(hook)
  }

  /** Runs after this node changed the table (to tell other nodes). */
  onChange(hook: () => Promise<void>): void {
    this.#changed.push(hook)
  }

  async #notifyChange(): Promise<void> {
    for (const hook of this.#changed) await hook()
  }

  /** Creates the built-in mounts on a new server. */
  async ensureBuiltins(): Promise<void> {
    const existing = new Set((await this.#rows()).map((r) => r.path))
    for (const m of BUILTIN_MOUNTS) {
      if (existing.has(m.path)) continue
      await this.#insert({ ...m, options: null, config: defaultConfig() })
    }
  }

  /** (Re)loads every mount from storage and builds the backends that are not built yet. */
  async load(): Promise<void> {
    const rows = await this.#rows()
    const next = new Map<string, MountedBackend>()
    for (const row of rows) {
      const entry = fromRow(row)
      const current = this.#mounted.get(entry.path)
      if (current && current.entry.id === entry.id) {
        const optionsChanged =
          JSON.stringify(current.entry.options) !== JSON.stringify(entry.options)
        // In place: backends hold this object and must see tuned TTLs at once.
        Object.assign(current.entry, entry)
        if (optionsChanged) {
          await current.backend.close?.()
          current.backend = await this.#build(current.entry)
        }
        next.set(entry.path, current)
        continue
      }
      next.set(entry.path, { entry, backend: await this.#build(entry) })
    }
    for (const [path, old] of this.#mounted) {
      if (next.get(path) !== old) await old.backend.close?.()
    }
    this.#mounted = next
  }

  async unload(): Promise<void> {
    for (const m of this.#mounted.values()) await m.backend.close?.()
    this.#mounted = new Map()
  }

  /** The mount serving a logical path, by longest prefix. */
  match(path: string): MountedBackend | undefined {
    const probe = path.endsWith('/') ? path : `${path}/`
    let end = probe.length
    while (end > 0) {
      const hit = this.#mounted.get(probe.slice(0, end))
      if (hit) return hit
      const next = probe.lastIndexOf('/', end - 2) + 1
      // lastIndexOf clamps a negative start to 0: stop instead of looping on a leading '/'.
      if (next >= end) break
      end = next
    }
    return undefined
  }

  get(path: string): MountedBackend | undefined {
    return this.#mounted.get(normalizeMountPath(path))
  }

  list(kind: 'secret' | 'auth'): MountEntry[] {
    return [...this.#mounted.values()]
      .map((m) => m.entry)
      .filter((e) => e.kind === kind)
      .sort((a, b) => a.path.localeCompare(b.path))
  }

  byAccessor(accessor: string): MountedBackend | undefined {
    for (const m of this.#mounted.values()) if (m.entry.accessor === accessor) return m
    return undefined
  }

  async enable(input: {
    path: string
    kind: 'secret' | 'auth'
    type: string
    description?: string
    options?: Record<string, string> | null
    config?: Partial<MountConfig>
    local?: boolean
    sealWrap?: boolean
  }): Promise<MountEntry> {
    const path = normalizeMountPath(input.path)
    validateMountPath(path, input.kind)
    if (!this.#factories.has(factoryKey(input.kind, input.type))) {
      throw badRequest(
        input.kind === 'auth'
          ? `unknown auth method type: ${input.type}`
          : `unknown secrets engine type: ${input.type}`,
      )
    }
    for (const existing of this.#mounted.keys()) {
      if (existing === path) throw badRequest(`path is already in use at ${path}`)
      if (path.startsWith(existing) || existing.startsWith(path)) {
        throw badRequest(`existing mount at ${existing} conflicts with ${path}`)
      }
    }
    const config = { ...defaultConfig(), ...input.config }
    checkTtls(config)
    const entry = await this.#insert({
      path,
      kind: input.kind,
      type: input.type,
      description: input.description ?? '',
      options: input.options ?? null,
      config,
      local: input.local,
      sealWrap: input.sealWrap,
    })
    try {
      this.#mounted.set(path, { entry, backend: await this.#build(entry) })
    } catch (err) {
      await this.#storage.db.deleteFrom('mounts').where('id', '=', entry.id).execute()
      throw err
    }
    await this.#notifyChange()
    return entry
  }

  async disable(path: string): Promise<void> {
    const key = normalizeMountPath(path)
    const mounted = this.#mounted.get(key)
    if (!mounted) return
    if (BUILTIN_MOUNTS.some((b) => b.path === key)) {
      throw badRequest(`cannot unmount "${key}"`)
    }
    for (const hook of this.#beforeDisable) await hook(mounted.entry)
    await mounted.backend.cleanup?.()
    await mounted.backend.close?.()
    await this.#storage.db.deleteFrom('mounts').where('id', '=', mounted.entry.id).execute()
    this.#mounted.delete(key)
    await this.#notifyChange()
  }

  async tune(
    path: string,
    changes: {
      config?: Partial<MountConfig>
      description?: string
      options?: Record<string, string>
    },
  ): Promise<MountEntry> {
    const mounted = this.#mounted.get(normalizeMountPath(path))
    if (!mounted) throw badRequest(`no mount at ${path}`)
    const entry = mounted.entry
    const config = { ...entry.config, ...changes.config }
    checkTtls(config)
    const options =
      changes.options !== undefined
        ? { ...(entry.options ?? {}), ...changes.options }
        : entry.options
    if (
      entry.options?.version &&
      options?.version &&
      Number(options.version) < Number(entry.options.version)
    ) {
      throw badRequest('cannot downgrade the KV version of a mount')
    }
    const description = changes.description ?? entry.description
    await this.#storage.db
      .updateTable('mounts')
      .set({
        config: JSON.stringify(config),
        options: options ? JSON.stringify(options) : null,
        description,
      })
      .where('id', '=', entry.id)
      .execute()
    const optionsChanged = JSON.stringify(options) !== JSON.stringify(entry.options)
    // Updated in place: backends hold this entry and must see the new TTLs at once.
    Object.assign(entry, { config, options, description })
    if (optionsChanged) {
      await mounted.backend.close?.()
      mounted.backend = await this.#build(entry)
    }
    await this.#notifyChange()
    return entry
  }

  async #build(entry: MountEntry): Promise<Backend> {
    const factory = this.#factories.get(factoryKey(entry.kind, entry.type))
    if (!factory)
      throw new ApiError(500, `no backend registered for ${entry.kind} type ${entry.type}`)
    return factory(entry)
  }

  async #rows(): Promise<MountRow[]> {
    return this.#storage.db.selectFrom('mounts').selectAll().execute()
  }

  async #insert(input: {
    path: string
    kind: 'secret' | 'auth'
    type: string
    description: string
    options: Record<string, string> | null
    config: MountConfig
    local?: boolean
    sealWrap?: boolean
  }): Promise<MountEntry> {
    const entry: MountEntry = {
      id: randomUUID(),
      path: input.path,
      kind: input.kind,
      type: input.type,
      description: input.description,
      accessor: `${input.type.replace(/[^a-z0-9]/gi, '_')}_${randomBytes(4).toString('hex')}`,
      options: input.options,
      config: input.config,
      local: input.local ?? false,
      sealWrap: input.sealWrap ?? false,
      createdAt: nowMs(),
    }
    try {
      await this.#storage.db.insertInto('mounts').values(toRow(entry)).execute()
    } catch {
      throw badRequest(`path is already in use at ${entry.path}`)
    }
    return entry
  }
}

/** Key in the backend factory map: auth methods and engines may share a type name. */
export function factoryKey(kind: 'secret' | 'auth', type: string): string {
  return `${kind}:${type}`
}

export function normalizeMountPath(path: string): string {
  const trimmed = path.replace(/^\/+/, '')
  return trimmed.endsWith('/') ? trimmed : `${trimmed}/`
}

function validateMountPath(path: string, kind: 'secret' | 'auth'): void {
  const body = kind === 'auth' ? path.slice('auth/'.length) : path
  if (kind === 'auth' && !path.startsWith('auth/')) throw badRequest('auth mounts live under auth/')
  if (body.length < 2 || path.length > 200) throw badRequest('mount path is empty or too long')
  const segments = body.slice(0, -1).split('/')
  for (const seg of segments) {
    if (!/^[A-Za-z0-9_.-]+$/.test(seg) || seg === '.' || seg === '..') {
      throw badRequest(`invalid mount path "${path}"`)
    }
  }
  const reserved = ['sys/', 'auth/', 'identity/', 'cubbyhole/']
  if (kind === 'secret' && reserved.some((r) => path.startsWith(r))) {
    throw badRequest(`cannot mount under reserved path "${path}"`)
  }
  if (kind === 'auth' && path === 'auth/token/') throw badRequest('token auth is always mounted')
}

function checkTtls(config: MountConfig): void {
  if (config.maxLeaseTtl > 0 && config.defaultLeaseTtl > config.maxLeaseTtl) {
    throw badRequest('given default lease TTL greater than given max lease TTL')
  }
}

function defaultConfig(): MountConfig {
  return { defaultLeaseTtl: 0, maxLeaseTtl: 0, forceNoCache: false }
}

function toRow(e: MountEntry): MountRow {
  return {
    id: e.id,
    path: e.path,
    kind: e.kind,
    type: e.type,
    description: e.description,
    accessor: e.accessor,
    options: e.options ? JSON.stringify(e.options) : null,
    config: JSON.stringify(e.config),
    local: e.local ? 1 : 0,
    seal_wrap: e.sealWrap ? 1 : 0,
    created_at: e.createdAt,
  }
}

function fromRow(r: MountRow): MountEntry {
  return {
    id: r.id,
    path: r.path,
    kind: r.kind === 'auth' ? 'auth' : 'secret',
    type: r.type,
    description: r.description,
    accessor: r.accessor,
    options: r.options ? (JSON.parse(r.options) as Record<string, string>) : null,
    config: JSON.parse(r.config) as MountConfig,
    local: Number(r.local) === 1,
    sealWrap: Number(r.seal_wrap) === 1,
    createdAt: Number(r.created_at),
  }
}
