import { hash as oneShotHash, randomBytes } from 'node:crypto'
import { randomBase62 } from '../crypto/random.js'
import type { Barrier } from './barrier.js'
import { safeEqual } from './barrier.js'
import { badRequest } from './errors.js'
import { nowMs, type Storage } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    tokens: TokenRow
  }
}

interface TokenRow {
  id: string
  accessor: string
  parent_id: string | null
  policies: string
  meta: string | null
  display_name: string
  num_uses: number
  creation_time: number
  creation_ttl: number
  expire_time: number | null
  max_expire_time: number | null
  explicit_max_ttl: number
  period: number
  renewable: number
  last_renewal: number | null
  path: string
  mount_accessor: string | null
  entity_id: string
  type: string
  orphan: number
  role: string | null
  bound_cidrs: string | null
  login_claims: string | null
  login_mfa: string | null
  grant_holder: string | null
}

/** A stored token. `id` is the keyed hash of the token, never the token itself. */
export interface TokenEntry {
  id: string
  accessor: string
  parentId: string | null
  policies: string[]
  meta: Record<string, string> | null
  displayName: string
  /** Remaining uses; 0 means unlimited. */
  numUses: number
  creationTime: number
  /** Seconds. */
  creationTtl: number
  /** Epoch ms; null = never expires (root tokens). */
  expireTime: number | null
  /** Epoch ms after which renewal cannot extend the token. */
  maxExpireTime: number | null
  explicitMaxTtl: number
  period: number
  renewable: boolean
  lastRenewal: number | null
  /** Creation path, e.g. `auth/token/create`, `auth/approle/login`. */
  path: string
  mountAccessor: string | null
  entityId: string
  type: 'service' | 'batch'
  orphan: boolean
  role: string | null
  boundCidrs: string[]
  /**
   * What an auth method verified at login (inherited by tokens created from this one). Unlike
   * `meta`, which the caller of `auth/token/create` writes, no request can set it: decisions
   * (JIT auto-approval) may rest on it.
   */
  login: LoginClaims | null
  /** The second factor verified at this token's own login (`totp`); never inherited. */
  mfa: string | null
  /**
   * Who holds the JIT grants this token asks for, when that is not its entity: set on CI logins
   * (`token:<own accessor>`) and inherited by every token created from one, so one run's grant
   * serves that run and its children only.
   */
  grantHolder: string | null
}

/** Claims an auth method verified at login, with the auth mount that verified them. */
export interface LoginClaims {
  /** Accessor of the auth mount. */
  mount: string
  claims: Record<string, string>
}

export interface CreateTokenInput {
  policies: string[]
  parent?: TokenEntry
  meta?: Record<string, string> | null
  displayName?: string
  /** Seconds; 0 = default. */
  ttl?: number
  explicitMaxTtl?: number
  period?: number
  numUses?: number
  renewable?: boolean
  path: string
  mountAccessor?: string | null
  entityId?: string
  type?: 'service' | 'batch'
  orphan?: boolean
  role?: string | null
  boundCidrs?: string[]
  /** Login facts (auth methods only); a child inherits its parent's `login` when unset. */
  login?: LoginClaims | null
  /** The second factor this login verified (auth methods only). */
  mfa?: string | null
  /** Binds the token's grants to itself (CI logins): see `TokenEntry.grantHolder`. */
  holdsOwnGrants?: boolean
  /** A caller-chosen token id (root only, and dev mode's root token). */
  id?: string
  /** Default and max TTL in seconds from the mount (already resolved against the system). */
  defaultTtl: number
  maxTtl: number
}

export interface CreatedToken {
  token: string
  entry: TokenEntry
  warnings: string[]
}

const TOKEN_PURPOSE = 'token'

/**
 * Tokens: creation, lookup by keyed hash, renewal, use counting and tree revocation.
 *
 * A token is 256 random bits, prefixed `sts.` (service) or `stb.` (batch). Storage holds only
 * HMAC-SHA256(token) under a barrier key, so a copy of the database yields no usable token.
 */
export class TokenStore {
  #storage: Storage
  #barrier: Barrier
  #revokeHooks: Array<(entries: TokenEntry[]) => Promise<void>> = []
  /**
   * Recently looked-up tokens, by hash, for `cacheMs`. Revocation, renewal and use on this node
   * update it at once; another node sharing the storage may accept a token it revoked for up to
   * `cacheMs`. Limited-use tokens are never cached (every use is counted in storage).
   */
  #cache = new Map<string, { entry: TokenEntry; until: number }>()
  #cacheMs: number
  /**
   * Token → storage id, keyed by a plain SHA-256 of the token (memory only; tokens carry 256 bits
   * of entropy): the HMAC that makes the id costs five times more and is the same every time.
   */
  #ids = new Map<string, string>()

  constructor(deps: { storage: Storage; barrier: Barrier; cacheMs?: number }) {
    this.#storage = deps.storage
    this.#barrier = deps.barrier
    this.#cacheMs = deps.cacheMs ?? 1000
  }

  /** Runs before tokens are deleted (leases they own are revoked here). */
  onRevoke(hook: (entries: TokenEntry[]) => Promise<void>): void {
    this.#revokeHooks.push(hook)
  }

  /** Drops cached lookups (after changing token rows outside this store). */
  clearCache(): void {
    this.#cache.clear()
    this.#ids.clear()
  }

  /** The storage id of a token (its keyed hash), remembered for tokens seen recently. */
  #idOf(token: string): string {
    if (this.#barrier.sealed) return this.hash(token) // throws: sealed
    const digest = sha256(token)
    let id = this.#ids.get(digest)
    if (id === undefined) {
      id = this.hash(token)
      if (this.#ids.size >= 10_000) this.#ids.clear()
      this.#ids.set(digest, id)
    }
    return id
  }

  hash(token: string): string {
    return this.#barrier.hmac(TOKEN_PURPOSE, token)
  }

  async create(input: CreateTokenInput): Promise<CreatedToken> {
    const warnings: string[] = []
    const type = input.type ?? 'service'
    const token =
      input.id ?? `${type === 'batch' ? 'stb' : 'sts'}.${randomBytes(32).toString('base64url')}`
    const now = nowMs()
    const isRoot = input.policies.includes('root')
    const period = input.period ?? 0
    const explicitMaxTtl = input.explicitMaxTtl ?? 0

    // Vault's order: requested ttl, else default; capped by mount max and explicit max.
    let maxTtl = input.maxTtl
    if (explicitMaxTtl > 0 && (maxTtl === 0 || explicitMaxTtl < maxTtl)) maxTtl = explicitMaxTtl
    let ttl = period > 0 ? period : input.ttl || 0
    if (ttl === 0 && !(isRoot && !input.ttl)) ttl = input.defaultTtl
    if (period === 0 && maxTtl > 0 && ttl > maxTtl) {
      warnings.push(
        `TTL of "${fmt(ttl)}" exceeded the effective max_ttl of "${fmt(maxTtl)}"; TTL value is capped accordingly`,
      )
      ttl = maxTtl
    }
    if (period > 0 && explicitMaxTtl > 0 && ttl > explicitMaxTtl) ttl = explicitMaxTtl
    const neverExpires = isRoot && ttl === 0
    const entry: TokenEntry = {
      id: this.hash(token),
      // Alphanumeric, as Vault's: a base64url accessor could start with '-', read as a CLI flag.
      accessor: randomBase62(24),
      parentId: input.orphan || !input.parent ? null : input.parent.id,
      policies: uniqueSorted(input.policies),
      meta: input.meta ?? null,
      displayName: input.displayName ?? 'token',
      numUses: input.numUses ?? 0,
      creationTime: now,
      creationTtl: ttl,
      expireTime: neverExpires ? null : now + ttl * 1000,
      maxExpireTime:
        neverExpires || (period > 0 && explicitMaxTtl === 0)
          ? null
          : maxTtl > 0
            ? now + maxTtl * 1000
            : null,
      explicitMaxTtl,
      period,
      renewable: type === 'batch' ? false : (input.renewable ?? true) && !neverExpires,
      lastRenewal: null,
      path: input.path,
      mountAccessor: input.mountAccessor ?? null,
      entityId: input.entityId ?? '',
      type,
      orphan: input.orphan || !input.parent,
      role: input.role ?? null,
      boundCidrs: input.boundCidrs ?? [],
      login: input.login ?? input.parent?.login ?? null,
      mfa: input.mfa ?? null,
      grantHolder: null,
    }
    entry.grantHolder = input.holdsOwnGrants
      ? `token:${entry.accessor}`
      : input.parent
        ? inheritedGrantHolder(input.parent)
        : null
    await this.#storage.db.insertInto('tokens').values(toRow(entry)).execute()
    return { token, entry, warnings }
  }

  /** A live token from this node's short cache, without touching storage (or undefined). */
  cached(token: string): TokenEntry | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return undefined
    return this.#cachedById(this.#idOf(token), nowMs())
  }

  #cachedById(id: string, now: number): TokenEntry | undefined {
    const cached = this.#cache.get(id)
    if (
      cached &&
      cached.until > now &&
      (cached.entry.expireTime === null || cached.entry.expireTime > now)
    ) {
      return cached.entry
    }
    return undefined
  }

  /** Finds a live token; expired tokens are revoked on sight and reported as missing. */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return undefined
    const id = this.#idOf(token)
    const now = nowMs()
    const hit = this.#cachedById(id, now)
    if (hit) return hit
    const row = await this.#storage.db
      .selectFrom('tokens')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    if (!row || !safeEqual(row.id, id)) return undefined
    const entry = await this.#live(fromRow(row))
    if (entry && entry.numUses === 0 && this.#cacheMs > 0) {
      if (this.#cache.size >= 10_000) this.#cache.clear()
      this.#cache.set(id, { entry, until: now + this.#cacheMs })
    }
    return entry
  }

  async lookupById(id: string): Promise<TokenEntry | undefined> {
    const row = await this.#storage.db
      .selectFrom('tokens')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    return row ? this.#live(fromRow(row)) : undefined
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (typeof accessor !== 'string' || accessor.length > 128) return undefined
    const row = await this.#storage.db
      .selectFrom('tokens')
      .selectAll()
      .where('accessor', '=', accessor)
      .executeTakeFirst()
    return row ? this.#live(fromRow(row)) : undefined
  }

  async listAccessors(): Promise<string[]> {
    const rows = await this.#storage.db.selectFrom('tokens').select('accessor').execute()
    return rows.map((r) => r.accessor).sort()
  }

  /**
   * Counts one use of a limited-use token. Returns false when no use is left (another request
   * took the last one). The caller revokes the token once its last use is done.
   */
  async use(entry: TokenEntry): Promise<{ ok: boolean; last: boolean }> {
    if (entry.numUses === 0) return { ok: true, last: false }
    this.#cache.delete(entry.id)
    const result = await this.#storage.db
      .updateTable('tokens')
      .set((eb) => ({ num_uses: eb('num_uses', '-', 1) }))
      .where('id', '=', entry.id)
      .where('num_uses', '>', 0)
      .executeTakeFirst()
    if (Number(result.numUpdatedRows) === 0) return { ok: false, last: false }
    const remaining = await this.#storage.db
      .selectFrom('tokens')
      .select('num_uses')
      .where('id', '=', entry.id)
      .executeTakeFirst()
    return { ok: true, last: (remaining?.num_uses ?? 0) <= 0 }
  }

  /**
   * Extends a token's TTL by `increment` seconds (0 = its original TTL or period), never past its
   * max expire time. Returns the new TTL in seconds and any warning.
   */
  async renew(
    entry: TokenEntry,
    increment: number,
  ): Promise<{ entry: TokenEntry; warnings: string[] }> {
    if (!entry.renewable || entry.expireTime === null) throw badRequest('token is not renewable')
    const now = nowMs()
    const warnings: string[] = []
    let ttl = entry.period > 0 ? entry.period : increment > 0 ? increment : entry.creationTtl
    if (entry.maxExpireTime !== null) {
      const left = Math.floor((entry.maxExpireTime - now) / 1000)
      if (left <= 0) throw badRequest('past the max TTL, cannot renew')
      if (ttl > left) {
        warnings.push(
          `TTL of "${fmt(ttl)}" exceeded the effective max_ttl of "${fmt(left)}"; TTL value is capped accordingly`,
        )
        ttl = left
      }
    }
    const updated = {
      ...entry,
      expireTime: now + ttl * 1000,
      lastRenewal: now,
      creationTtl: entry.creationTtl,
    }
    this.#cache.delete(entry.id)
    await this.#storage.db
      .updateTable('tokens')
      .set({ expire_time: updated.expireTime, last_renewal: now })
      .where('id', '=', entry.id)
      .execute()
    return { entry: updated, warnings }
  }

  /** Revokes a token and, depth-first, every descendant and every lease they created. */
  async revokeTree(entry: TokenEntry): Promise<void> {
    const all: TokenEntry[] = [entry]
    // Breadth-first walk with an explicit queue: deep trees cannot overflow the stack.
    for (let i = 0; i < all.length; i++) {
      const children = await this.#storage.db
        .selectFrom('tokens')
        .selectAll()
        .where('parent_id', '=', all[i]!.id)
        .execute()
      all.push(...children.map(fromRow))
    }
    await this.#delete(all.reverse())
  }

  /** Revokes only this token; its children become orphans. */
  async revokeOrphan(entry: TokenEntry): Promise<void> {
    // Children keep living but their cached parent link is now stale.
    this.#cache.clear()
    await this.#storage.db
      .updateTable('tokens')
      .set({ parent_id: null, orphan: 1 })
      .where('parent_id', '=', entry.id)
      .execute()
    await this.#delete([entry])
  }

  /** Revokes every token issued through an auth mount (when that mount is disabled). */
  async revokeByMount(mountAccessor: string): Promise<void> {
    for (;;) {
      const rows = await this.#storage.db
        .selectFrom('tokens')
        .selectAll()
        .where('mount_accessor', '=', mountAccessor)
        .limit(200)
        .execute()
      if (rows.length === 0) return
      for (const row of rows) await this.revokeTree(fromRow(row))
    }
  }

  /** Revokes up to `limit` expired tokens (with their trees); returns how many were due. */
  async expireDue(limit = 200): Promise<number> {
    const rows = await this.#storage.db
      .selectFrom('tokens')
      .selectAll()
      .where('expire_time', 'is not', null)
      .where('expire_time', '<=', nowMs())
      .limit(limit)
      .execute()
    for (const row of rows) await this.revokeTree(fromRow(row))
    return rows.length
  }

  async #delete(entries: TokenEntry[]): Promise<void> {
    if (entries.length === 0) return
    const ids = entries.map((e) => e.id)
    // Unusable at once on this node, before the (possibly slow) lease revocations run.
    for (const id of ids) this.#cache.delete(id)
    for (const hook of this.#revokeHooks) await hook(entries)
    for (let i = 0; i < ids.length; i += 500) {
      await this.#storage.db
        .deleteFrom('tokens')
        .where('id', 'in', ids.slice(i, i + 500))
        .execute()
    }
    // A request during the hooks may have cached a row that is now gone.
    for (const id of ids) this.#cache.delete(id)
  }

  async #live(entry: TokenEntry): Promise<TokenEntry | undefined> {
    if (entry.expireTime !== null && entry.expireTime <= nowMs()) {
      await this.revokeTree(entry)
      return undefined
    }
    return entry
  }
}

/**
 * Who holds the JIT grants a token asks for: the login token it descends from (CI runs), else
 * its entity (a person keeps grants across logins), else the token itself.
 */
export function grantHolderOf(entry: TokenEntry): string {
  return entry.grantHolder ?? (entry.entityId || `token:${entry.accessor}`)
}

/**
 * A token created from `parent` uses the parent's grants. Root tokens are not guarded and hold
 * no grants, so what they create starts afresh; so does a child of an entity's token, whose
 * grants are the entity's anyway.
 */
function inheritedGrantHolder(parent: TokenEntry): string | null {
  if (parent.grantHolder) return parent.grantHolder
  if (parent.entityId || parent.policies.includes('root')) return null
  return `token:${parent.accessor}`
}

/** Remaining TTL in whole seconds (0 when the token never expires). */
export function remainingTtl(entry: TokenEntry): number {
  if (entry.expireTime === null) return 0
  return Math.max(0, Math.floor((entry.expireTime - nowMs()) / 1000))
}

function toRow(e: TokenEntry): TokenRow {
  return {
    id: e.id,
    accessor: e.accessor,
    parent_id: e.parentId,
    policies: JSON.stringify(e.policies),
    meta: e.meta ? JSON.stringify(e.meta) : null,
    display_name: e.displayName,
    num_uses: e.numUses,
    creation_time: e.creationTime,
    creation_ttl: e.creationTtl,
    expire_time: e.expireTime,
    max_expire_time: e.maxExpireTime,
    explicit_max_ttl: e.explicitMaxTtl,
    period: e.period,
    renewable: e.renewable ? 1 : 0,
    last_renewal: e.lastRenewal,
    path: e.path,
    mount_accessor: e.mountAccessor,
    entity_id: e.entityId,
    type: e.type,
    orphan: e.orphan ? 1 : 0,
    role: e.role,
    bound_cidrs: e.boundCidrs.length ? JSON.stringify(e.boundCidrs) : null,
    login_claims: e.login ? JSON.stringify(e.login) : null,
    login_mfa: e.mfa,
    grant_holder: e.grantHolder,
  }
}

function fromRow(r: TokenRow): TokenEntry {
  return {
    id: r.id,
    accessor: r.accessor,
    parentId: r.parent_id,
    policies: JSON.parse(r.policies) as string[],
    meta: r.meta ? (JSON.parse(r.meta) as Record<string, string>) : null,
    displayName: r.display_name,
    numUses: Number(r.num_uses),
    creationTime: Number(r.creation_time),
    creationTtl: Number(r.creation_ttl),
    expireTime: r.expire_time === null ? null : Number(r.expire_time),
    maxExpireTime: r.max_expire_time === null ? null : Number(r.max_expire_time),
    explicitMaxTtl: Number(r.explicit_max_ttl),
    period: Number(r.period),
    renewable: Number(r.renewable) === 1,
    lastRenewal: r.last_renewal === null ? null : Number(r.last_renewal),
    path: r.path,
    mountAccessor: r.mount_accessor,
    entityId: r.entity_id,
    type: r.type === 'batch' ? 'batch' : 'service',
    orphan: Number(r.orphan) === 1,
    role: r.role,
    boundCidrs: r.bound_cidrs ? (JSON.parse(r.bound_cidrs) as string[]) : [],
    login: r.login_claims ? (JSON.parse(r.login_claims) as LoginClaims) : null,
    mfa: r.login_mfa ?? null,
    grantHolder: r.grant_holder ?? null,
  }
}

function uniqueSorted(values: string[]): string[] {
  return [...new Set(values)].sort()
}

/** Formats seconds the way Vault prints durations in warnings (`1h0m0s`). */
export function fmt(seconds: number): string {
  const h = Math.floor(seconds / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = seconds % 60
  return h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`
}

/** One-shot SHA-256 (Node ≥ 20.12), for in-memory cache keys only. */
function sha256(value: string): string {
  return oneShotHash('sha256', value, 'base64')
}
