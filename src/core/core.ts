import { randomUUID } from 'node:crypto'
import { ApiError, permissionDenied, sealedError, unsupportedOperation } from './errors.js'
import { MountTable, factoryKey, type BackendFactory, type MountEntry } from './mounts.js'
import { SealManager } from './seal.js'
import { createCacheSync, type CacheSync } from './cache-sync.js'
import { TokenStore, type TokenEntry } from './tokens.js'
import { createPolicyStore, type PolicyStore } from './policy/store.js'
import type { Acl } from './policy/acl.js'
import type { Backend, LogicalRequest, LogicalResponse, Operation, PathDef } from './request.js'
import { inCidrs } from './cidr.js'
import { sanitizeError } from './sanitize.js'
import type { Storage } from '../storage/storage.js'
import { StorageUnavailableError } from '../storage/connection-loss.js'
import type { LeaseManager } from './leases/types.js'
import type { IdentityStore } from '../identity/types.js'
import type { Logger } from './logger.js'
import { silentLogger } from './logger.js'

/** Seconds: Vault's system default and max lease TTL (768h). */
export const SYSTEM_MAX_TTL = 768 * 3600

/**
 * Audit sink used by the pipeline. `logRequest` runs before the handler and must throw when no
 * enabled device could record the entry: the request is then refused (fail closed).
 */
export interface AuditBroker {
  logRequest(ctx: RequestContext): Promise<void>
  logResponse(
    ctx: RequestContext,
    response: LogicalResponse | null,
    error?: ApiError,
  ): Promise<void>
}

/**
 * A check that runs after the ACL allowed a request (JIT access grants live here). It throws to
 * refuse, and may return a hook that sees the handler's response before it is audited and sent
 * (to cap a lease to a grant's end, or to record that a grant was used).
 */
export type RequestGuard = (ctx: RequestContext) => GuardResult | Promise<GuardResult>

/** What a guard returns: nothing, or a hook that sees the response. */
export type GuardResult = void | ((response: LogicalResponse | null) => Promise<void>)

/** Everything the pipeline learned about a request, shared with audit and guards. */
export interface RequestContext {
  req: LogicalRequest
  mount?: MountEntry
  pathDef?: PathDef
  params: Record<string, string>
  acl?: Acl
  policies: string[]
  grantingPolicies: string[]
  startedAt: number
}

export interface CoreOptions {
  storage: Storage
  /** Auto-unseal key (from a key file or environment variable). */
  staticUnsealKey?: Uint8Array
  logger?: Logger
  defaultLeaseTtl?: number
  maxLeaseTtl?: number
}

/**
 * The server's core: one per process. It owns seal state, tokens, policies and mounts, and runs
 * every logical request through the same pipeline:
 * sealed check → mount match → token → ACL → guards → audit(request) → handler → audit(response).
 */
export class Core {
  readonly storage: Storage
  readonly seal: SealManager
  readonly tokens: TokenStore
  readonly policies: PolicyStore
  readonly mounts: MountTable
  /** Tells other nodes on the same storage that a cache (mounts, policies) changed. */
  readonly cacheSync: CacheSync
  readonly logger: Logger
  readonly factories = new Map<string, BackendFactory>()
  readonly guards: RequestGuard[] = []
  readonly defaultLeaseTtl: number
  readonly maxLeaseTtl: number
  audit: AuditBroker | undefined
  /** Lease manager (set by registerBuiltins). */
  leases: LeaseManager | undefined
  /** Identity store: entities, aliases, groups (set by registerBuiltins). */
  identity: IdentityStore | undefined
  /**
   * Checks a second-factor code (TOTP) for the person behind a token, with replay protection.
   * Set by auth methods that enrol second factors (userpass); used to confirm JIT activations.
   */
  verifySecondFactor: ((token: TokenEntry, code: string) => Promise<boolean>) | undefined
  /** Extra policies that come from the token's entity and groups (set by the identity store). */
  identityPolicies: ((entityId: string) => Promise<string[]>) | undefined
  /** The sys/ backend; served even while sealed for its `allowSealed` paths. */
  sys: Backend | undefined
  #workers: Array<{ start(): void; stop(): Promise<void> }> = []
  #aclMemo = new WeakMap<TokenEntry, { generation: number; acl: Acl; policies: string[] }>()

  constructor(options: CoreOptions) {
    this.storage = options.storage
    this.logger = options.logger ?? silentLogger
    this.defaultLeaseTtl = options.defaultLeaseTtl ?? SYSTEM_MAX_TTL
    this.maxLeaseTtl = options.maxLeaseTtl ?? SYSTEM_MAX_TTL
    this.seal = new SealManager({ storage: this.storage, staticKey: options.staticUnsealKey })
    this.tokens = new TokenStore({ storage: this.storage, barrier: this.seal.barrier })
    this.cacheSync = createCacheSync({ storage: this.storage })
    const policies = createPolicyStore({ storage: this.storage, logger: this.logger })
    this.policies = {
      ...policies,
      write: async (name, text) => {
        await policies.write(name, text)
        await this.cacheSync.bump('policies')
      },
      delete: async (name) => {
        await policies.delete(name)
        await this.cacheSync.bump('policies')
      },
    }
    this.cacheSync.watch('policies', async () => policies.invalidate())
    this.mounts = new MountTable({ storage: this.storage, factories: this.factories })
    this.mounts.onChange(() => this.cacheSync.bump('mounts'))
    this.cacheSync.watch('mounts', () => this.mounts.load())
    this.#workers.push(this.cacheSync.worker())
    this.mounts.onBeforeDisable(async (entry) => {
      if (entry.kind === 'auth') await this.tokens.revokeByMount(entry.accessor)
    })
    this.seal.hooks(
      async () => {
        await this.policies.ensureBuiltins()
        await this.mounts.ensureBuiltins()
        // Seed the cache generations first, so a change made while loading is seen later.
        await this.cacheSync.poll()
        await this.mounts.load()
        for (const w of this.#workers) w.start()
      },
      async () => {
        for (const w of this.#workers) await w.stop()
        await this.mounts.unload()
      },
    )
  }

  registerEngine(type: string, factory: BackendFactory): void {
    this.factories.set(factoryKey('secret', type), factory)
  }

  registerAuthMethod(type: string, factory: BackendFactory): void {
    this.factories.set(factoryKey('auth', type), factory)
  }

  /** Background work that runs only while unsealed (lease expiry, token expiry). */
  addWorker(worker: { start(): void; stop(): Promise<void> }): void {
    this.#workers.push(worker)
    if (!this.seal.sealed) worker.start()
  }

  /** Effective TTL bounds for a mount, in seconds. */
  mountTtls(mount: MountEntry | undefined): { defaultTtl: number; maxTtl: number } {
    const maxTtl = mount?.config.maxLeaseTtl || this.maxLeaseTtl
    const defaultTtl = Math.min(mount?.config.defaultLeaseTtl || this.defaultLeaseTtl, maxTtl)
    return { defaultTtl, maxTtl }
  }

  /** Policies in force for a token: its own plus its entity's and groups'. */
  async effectivePolicies(token: TokenEntry): Promise<{ all: string[]; identity: string[] }> {
    const identity =
      token.entityId && this.identityPolicies ? await this.identityPolicies(token.entityId) : []
    return { all: [...new Set([...token.policies, ...identity])], identity }
  }

  /**
   * A token without an entity has a fixed policy list: its ACL is kept on the (briefly cached)
   * token entry until a policy changes. Entity tokens ask the identity store every time.
   */
  #aclMemoFor(token: TokenEntry): { acl: Acl; policies: string[] } | undefined {
    const memo = token.entityId ? undefined : this.#aclMemo.get(token)
    return memo && memo.generation === this.policies.generation() ? memo : undefined
  }

  async aclFor(token: TokenEntry): Promise<{ acl: Acl; policies: string[] }> {
    const memo = this.#aclMemoFor(token)
    if (memo) return memo
    const generation = this.policies.generation()
    const { all } = await this.effectivePolicies(token)
    const acl = await this.policies.acl(all, { entityId: token.entityId })
    if (!token.entityId) this.#aclMemo.set(token, { generation, acl, policies: all })
    return { acl, policies: all }
  }

  /** Looks up a client token and applies its CIDR binding. */
  async authenticate(req: LogicalRequest): Promise<TokenEntry> {
    if (!req.clientToken) throw permissionDenied()
    const token = await this.tokens.lookup(req.clientToken)
    if (!token) throw permissionDenied()
    return checkCidrs(req, token)
  }

  /** Runs one logical request through the pipeline. */
  async handle(req: LogicalRequest): Promise<LogicalResponse | null> {
    const ctx: RequestContext = {
      req,
      params: {},
      policies: [],
      grantingPolicies: [],
      startedAt: Date.now(),
    }
    let authorized: Awaited<ReturnType<Core['authorize']>>
    try {
      authorized = await this.authorize(ctx)
    } catch (err) {
      // Refused requests (bad token, ACL denial, unknown path) are audited too, as in Vault;
      // an audit failure cannot make a refusal worse, so it is not raised here.
      const apiErr = toApiError(err, this.logger)
      if (this.audit && !this.seal.sealed) {
        await this.audit.logRequest(ctx).catch(() => {})
        await this.audit.logResponse(ctx, null, apiErr).catch(() => {})
      }
      throw apiErr
    }
    const { handler, afterHooks, lastUse } = authorized
    const operation = req.operation

    if (this.audit) await this.audit.logRequest(ctx)
    let response: LogicalResponse | null
    try {
      response = (await handler(req, ctx.params)) ?? null
      if (operation === 'read' && response === null) throw new ApiError(404)
      if (operation === 'list' && isEmptyList(response)) throw new ApiError(404)
      for (const after of afterHooks) await after(response)
    } catch (err) {
      const apiErr = toApiError(err, this.logger)
      if (this.audit) await this.audit.logResponse(ctx, null, apiErr).catch(() => {})
      throw apiErr
    } finally {
      if (lastUse && req.token) await this.tokens.revokeTree(req.token).catch(() => {})
    }
    if (this.audit) await this.audit.logResponse(ctx, response)
    return response
  }

  /**
   * Everything before the handler: route, token, operation, ACL, guards and token use count.
   * Throws to refuse; fills `ctx` as it learns.
   */
  private async authorize(ctx: RequestContext) {
    const { req } = ctx
    const { backend, mount, relativePath } = this.#route(req)
    ctx.mount = mount
    req.mount = mount
    req.mountPath = mount?.path ?? 'sys/'
    req.relativePath = relativePath

    const matched = matchPath(backend.paths, relativePath)
    if (!matched) {
      if (this.seal.sealed) throw sealedError()
      throw new ApiError(404, `no handler for route "${req.path}". route entry not found.`)
    }
    const { def, params } = matched
    // A HEAD whose read could act (mint a credential, count a use) must not run it.
    if (req.head && !def.headSafe) throw unsupportedOperation()
    ctx.pathDef = def
    ctx.params = params
    req.route = def.pattern.source
    if (this.seal.sealed && !def.allowSealed) throw sealedError()

    if (!def.unauthenticated) {
      // A token this node saw in the last second is answered without a storage round trip.
      const cached = req.clientToken ? this.tokens.cached(req.clientToken) : undefined
      req.token = cached ? checkCidrs(req, cached) : await this.authenticate(req)
    }
    const operation = await resolveOperation(def, req, params)
    req.operation = operation
    const handler =
      def.operations[operation] ?? (operation === 'create' ? def.operations.update : undefined)
    if (!handler) throw unsupportedOperation()
    const afterHooks: Array<(response: LogicalResponse | null) => Promise<void>> = []

    if (!def.unauthenticated && req.token) {
      const { acl, policies } = this.#aclMemoFor(req.token) ?? (await this.aclFor(req.token))
      ctx.acl = acl
      ctx.policies = policies
      const decision = acl.check(req.path, operation, { sudo: def.sudo, data: req.data })
      if (!decision.allowed) throw permissionDenied()
      ctx.grantingPolicies = decision.grantingPolicies
      for (const guard of this.guards) {
        // Most guards have nothing to check for most requests and answer synchronously.
        let after = guard(ctx)
        if (after instanceof Promise) after = await after
        if (after) afterHooks.push(after)
      }
    }

    let lastUse = false
    if (req.token && req.token.numUses > 0) {
      const used = await this.tokens.use(req.token)
      if (!used.ok) throw permissionDenied()
      lastUse = used.last
      // The handler sees the remaining uses, as Vault's lookup-self does.
      req.token = { ...req.token, numUses: req.token.numUses - 1 }
    }
    return { handler, afterHooks, lastUse }
  }

  #route(req: LogicalRequest): { backend: Backend; mount?: MountEntry; relativePath: string } {
    if (req.path === 'sys' || req.path.startsWith('sys/')) {
      if (!this.sys) throw new ApiError(500, 'system backend missing')
      return {
        backend: this.sys,
        mount: this.mounts.get('sys/')?.entry,
        relativePath: req.path.slice(4),
      }
    }
    if (this.seal.sealed) throw sealedError()
    const hit = this.mounts.match(req.path)
    if (!hit) throw new ApiError(404, `no handler for route "${req.path}". route entry not found.`)
    return {
      backend: hit.backend,
      mount: hit.entry,
      relativePath: req.path.slice(hit.entry.path.length),
    }
  }
}

/** Applies a token's CIDR binding to the request's address. */
function checkCidrs(req: LogicalRequest, token: TokenEntry): TokenEntry {
  if (token.boundCidrs.length > 0 && !inCidrs(req.remoteAddress, token.boundCidrs)) {
    throw permissionDenied()
  }
  return token
}

/** First path definition whose pattern matches, with its named groups. */
export function matchPath(
  paths: PathDef[],
  relativePath: string,
): { def: PathDef; params: Record<string, string> } | undefined {
  for (const def of paths) {
    const m = def.pattern.exec(relativePath)
    if (m) return { def, params: { ...(m.groups ?? {}) } }
  }
  return undefined
}

async function resolveOperation(
  def: PathDef,
  req: LogicalRequest,
  params: Record<string, string>,
): Promise<Operation> {
  if (req.operation !== 'update' && req.operation !== 'create') return req.operation
  if (def.existence) return (await def.existence(req, params)) ? 'update' : 'create'
  if (!def.operations.update && def.operations.create) return 'create'
  return 'update'
}

function isEmptyList(response: LogicalResponse | null): boolean {
  const keys = response?.data?.keys
  return !Array.isArray(keys) || keys.length === 0
}

/** Turns anything thrown into an ApiError; unexpected errors become a generic 500. */
export function toApiError(err: unknown, logger: Logger): ApiError {
  if (err instanceof StorageUnavailableError) {
    logger.warn({ err: sanitizeError(err.cause) }, 'storage unavailable')
    return err
  }
  if (err instanceof ApiError) return err
  if (err instanceof SyntaxError) return new ApiError(400, 'failed to parse JSON input')
  logger.error({ err: sanitizeError(err) }, 'internal error')
  return new ApiError(500, 'internal error')
}

export function newRequestId(): string {
  return randomUUID()
}
