import { ApiError } from '../errors.js'
import { insertIfAbsent, nowMs, type Storage } from '../../storage/storage.js'
import { compileAcl, type Acl, type AclContext } from './acl.js'
import { DEFAULT_POLICY_TEXT, RESPONSE_WRAPPING_POLICY_TEXT } from './default-policy.js'
import type { Logger } from '../logger.js'
import { silentLogger } from '../logger.js'
import {
  parsePolicy,
  PolicyParserUnavailableError,
  type Policy,
  type PolicyLoadFailure,
} from './parse.js'

declare module '../../storage/tables.js' {
  interface Tables {
    policies: PolicyTable
  }
}

/** Row of the `policies` table (created by `schema/0001-core.ts`). */
export interface PolicyTable {
  name: string
  /** The policy text as written (base64 input decoded). */
  body: string
  /** Starts at 1, bumped on every write. */
  version: number
  created_at: number
  updated_at: number
}

/** A policy as read back from storage. */
export interface StoredPolicy {
  name: string
  text: string
  version: number
  createdAt: number
  updatedAt: number
}

/**
 * ACL policies: storage, validation and compiled-ACL caching.
 *
 * Names are lower-cased. `root` (allows everything, has no text) and `response-wrapping` are built
 * in and immutable; `default` is stored, may be edited, but not deleted. Policies that do not exist
 * grant nothing. Parsed policies and compiled ACLs are cached in memory: writes and deletes on this
 * node invalidate the cache; other nodes must call {@link PolicyStore.invalidate} (entries also
 * expire after `cacheTtlMs`).
 *
 * A stored policy that no longer parses grants nothing, loudly: every load logs an error naming it
 * and tells the {@link PolicyStore.onLoadFailure} listeners. When the parser gave no answer
 * (timeout, failed worker) nothing is cached: the request fails with a 503 and the next use
 * parses again.
 */
export interface PolicyStore {
  /** The policy, or undefined when it does not exist. `root` is returned with empty text. */
  get(name: string): Promise<StoredPolicy | undefined>
  /** Stored policy names, sorted (without `root`). */
  list(): Promise<string[]>
  /**
   * Parses and stores a policy (HCL, JSON, or base64 of either); bumps its version. Throws
   * `ApiError(400)` on a parse error, an invalid name or a built-in name; nothing is written then.
   */
  write(name: string, text: string): Promise<void>
  /** Deletes a policy; succeeds when it does not exist. `default`, `root` → `ApiError(400)`. */
  delete(name: string): Promise<void>
  /** Creates the `default` policy when it is missing (never overwrites an edited one). */
  ensureBuiltins(): Promise<void>
  /** The compiled ACL for a token's policy names and identity (cached). */
  acl(names: string[], ctx?: AclContext): Promise<Acl>
  /** Drops cached policies (one, or all) and compiled ACLs, e.g. after another node wrote. */
  invalidate(name?: string): void
  /** Moves on every invalidation: an ACL obtained under one generation is valid until it moves. */
  generation(): number
  /** Calls `listener` whenever a stored policy fails to parse on load (for metrics). */
  onLoadFailure(listener: (failure: PolicyLoadFailure) => void): void
}

export interface PolicyStoreDeps {
  storage: Pick<Storage, 'db' | 'dialect'>
  /** How long a parsed policy is trusted without re-reading storage. Default 30 s. */
  cacheTtlMs?: number
  /** Maximum number of compiled ACLs kept (least recently used are dropped). Default 1000. */
  maxCachedAcls?: number
  /** Where a stored policy that fails to parse is reported. */
  logger?: Logger
}

const NAME = /^[a-z0-9._@\-+=]+$/
const MAX_NAME_LENGTH = 128
const IMMUTABLE = new Set(['root', 'response-wrapping'])

interface CachedPolicy {
  policy: Policy | null
  loadedAt: number
}

interface CachedAcl {
  policies: (Policy | null)[]
  acl: Acl
}

export function createPolicyStore(deps: PolicyStoreDeps): PolicyStore {
  const { storage, cacheTtlMs = 30_000, maxCachedAcls = 1000, logger = silentLogger } = deps
  const { db } = storage
  const parsed = new Map<string, CachedPolicy>()
  const compiled = new Map<string, CachedAcl>()
  let generation = 0
  let responseWrapping: Promise<Policy> | undefined
  const failureListeners: ((failure: PolicyLoadFailure) => void)[] = []

  /** Parses a stored body; one that does not parse grants nothing, with an alarm. */
  async function parseStored(name: string, body: string): Promise<Policy | null> {
    try {
      return await parsePolicy(name, body)
    } catch (err) {
      const reason = err instanceof PolicyParserUnavailableError ? 'unavailable' : 'invalid'
      logger.error(
        { policy: name, reason, err: (err as Error).message.slice(0, 300) },
        reason === 'invalid'
          ? 'stored ACL policy does not parse: it grants nothing until it is rewritten'
          : 'stored ACL policy could not be parsed now: requests that need it fail until it does',
      )
      for (const listener of failureListeners) listener({ type: 'acl', name, reason })
      if (reason === 'unavailable') throw err
      return null
    }
  }

  const invalidate = (name?: string) => {
    generation++
    if (name === undefined) parsed.clear()
    else parsed.delete(name.toLowerCase())
    compiled.clear()
  }

  async function loadPolicies(names: string[]): Promise<(Policy | null)[]> {
    const now = nowMs()
    const fresh = (n: string) => {
      const hit = parsed.get(n)
      return hit && now - hit.loadedAt < cacheTtlMs ? hit : undefined
    }
    const missing = names.filter((n) => n !== 'response-wrapping' && !fresh(n))
    if (missing.length > 0) {
      const startGeneration = generation
      const rows = await db
        .selectFrom('policies')
        .select(['name', 'body'])
        .where('name', 'in', missing)
        .execute()
      const bodies = new Map(rows.map((r) => [r.name, r.body]))
      const settled = await Promise.allSettled(
        missing.map(async (n): Promise<[string, Policy | null]> => {
          const body = bodies.get(n)
          return [n, body === undefined ? null : await parseStored(n, body)]
        }),
      )
      const loaded = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
      if (generation === startGeneration) {
        for (const [n, policy] of loaded) parsed.set(n, { policy, loadedAt: now })
      }
      // The parser gave no answer for one of them: fail this request, cache nothing for it.
      const unavailable = settled.find((s) => s.status === 'rejected')
      if (unavailable) throw unavailable.reason
      const result = new Map(loaded)
      return Promise.all(names.map((n) => (result.has(n) ? result.get(n)! : cachedOrBuiltin(n))))
    }
    return Promise.all(names.map(cachedOrBuiltin))
  }

  async function cachedOrBuiltin(name: string): Promise<Policy | null> {
    if (name === 'response-wrapping') {
      // A parser that gave no answer must not leave a rejected promise here for good.
      responseWrapping ??= parsePolicy(name, RESPONSE_WRAPPING_POLICY_TEXT).catch((err) => {
        responseWrapping = undefined
        throw err
      })
      return responseWrapping
    }
    return parsed.get(name)?.policy ?? null
  }

  let rootAcl: Acl | undefined
  async function acl(names: string[], ctx: AclContext = {}): Promise<Acl> {
    const unique = [...new Set(names.map((n) => n.toLowerCase()))].sort()
    if (unique.includes('root')) {
      rootAcl ??= compileAcl([{ name: 'root', text: '', rules: [], templated: false }])
      return rootAcl
    }
    const policies = await loadPolicies(unique)
    const present = policies.filter((p): p is Policy => p !== null)
    const templated = present.some((p) => p.templated)
    const key = unique.join('\n') + (templated ? `\u0000${contextKey(ctx)}` : '')
    const hit = compiled.get(key)
    if (hit && hit.policies.every((p, i) => p === policies[i])) {
      compiled.delete(key)
      compiled.set(key, hit)
      return hit.acl
    }
    const result = compileAcl(present, ctx)
    compiled.delete(key)
    compiled.set(key, { policies, acl: result })
    while (compiled.size > maxCachedAcls) compiled.delete(compiled.keys().next().value!)
    return result
  }

  return {
    async get(rawName) {
      const name = rawName.toLowerCase()
      if (name === 'root') return { name, text: '', version: 0, createdAt: 0, updatedAt: 0 }
      if (name === 'response-wrapping') {
        return { name, text: RESPONSE_WRAPPING_POLICY_TEXT, version: 0, createdAt: 0, updatedAt: 0 }
      }
      const row = await db
        .selectFrom('policies')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst()
      if (!row) return undefined
      return {
        name: row.name,
        text: row.body,
        version: Number(row.version),
        createdAt: Number(row.created_at),
        updatedAt: Number(row.updated_at),
      }
    },

    async list() {
      const rows = await db.selectFrom('policies').select('name').orderBy('name').execute()
      return rows.map((r) => r.name)
    },

    async write(rawName, text) {
      const name = checkName(rawName)
      if (IMMUTABLE.has(name)) throw new ApiError(400, `cannot update "${name}" policy`)
      if (text.trim() === '') throw new ApiError(400, "'policy' parameter not supplied or empty")
      const policy = await parsePolicy(name, text)
      const now = nowMs()
      const update = () =>
        db
          .updateTable('policies')
          .set((eb) => ({ body: policy.text, updated_at: now, version: eb('version', '+', 1) }))
          .where('name', '=', name)
          .executeTakeFirst()
      if (Number((await update()).numUpdatedRows) === 0) {
        try {
          await db
            .insertInto('policies')
            .values({ name, body: policy.text, version: 1, created_at: now, updated_at: now })
            .execute()
        } catch (err) {
          // Another node created it in between: apply this write as an update.
          if (Number((await update()).numUpdatedRows) === 0) throw err
        }
      }
      invalidate(name)
      parsed.set(name, { policy, loadedAt: now })
    },

    async delete(rawName) {
      const name = rawName.toLowerCase()
      if (IMMUTABLE.has(name)) throw new ApiError(400, `cannot delete "${name}" policy`)
      if (name === 'default') throw new ApiError(400, 'cannot delete "default" policy')
      await db.deleteFrom('policies').where('name', '=', name).execute()
      invalidate(name)
    },

    async ensureBuiltins() {
      const now = nowMs()
      const row = { name: 'default', body: DEFAULT_POLICY_TEXT, version: 1, created_at: now }
      // Several nodes may boot at once: whoever inserts first wins, the rest do nothing.
      await insertIfAbsent(storage, 'policies', { ...row, updated_at: now }, ['name'])
      invalidate('default')
    },

    acl,
    invalidate,
    generation: () => generation,
    onLoadFailure: (listener) => void failureListeners.push(listener),
  }
}

/** Lower-cases and validates a policy name for writing. */
function checkName(raw: string): string {
  const name = raw.toLowerCase()
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME.test(name)) {
    throw new ApiError(
      400,
      `invalid policy name "${raw}": use at most ${MAX_NAME_LENGTH} of a-z, 0-9 and . _ @ - + =`,
    )
  }
  return name
}

function contextKey(ctx: AclContext): string {
  const metadata = Object.entries(ctx.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))
  const groups = (ctx.groups ?? []).map((g) => `${g.id}=${g.name}`).sort()
  const groupIds = [...(ctx.groupIds ?? [])].sort()
  return JSON.stringify([ctx.entityId ?? '', ctx.entityName ?? '', metadata, groups, groupIds])
}
