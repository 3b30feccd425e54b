import { randomUUID } from 'node:crypto'
import { ApiError, permissionDenied, sealedError, unsupportedOperation } from './errors.js'
import type { MountEntry, MountTable } from './mounts.js'
import type { SealManager } from './seal.js'
import type { TokenEntry, TokenStore } from './tokens.js'
import type { Acl } from './policy/acl.js'
import type { Backend, LogicalRequest, LogicalResponse, Operation, PathDef } from './request.js'
import type { AccessControl } from './access-control.js'
import { checkCidrs, type Authenticate } from './authenticate.js'
import { sanitizeError } from '../../plugins/sanitize.js'
import { StorageUnavailableError } from '../storage/connection-loss.js'
import type { Logger } from './logger.js'

export { SYSTEM_MAX_TTL } from './node.js'

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
 * (to record that a grant was used).
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

/** What the pipeline is handed; the composition root (src/server/compose.ts) builds each part. */
export interface CoreDeps {
  seal: Pick<SealManager, 'sealed'>
  /** The mount table: longest-prefix match of a logical path. */
  mounts: Pick<MountTable, 'match' | 'get'>
  /** The `sys/` backend: served even while sealed for its `allowSealed` paths. */
  sys: Backend
  tokens: Pick<TokenStore, 'cached' | 'use' | 'revokeTree'>
  authenticate: Authenticate
  access: Pick<AccessControl, 'aclFor' | 'memoFor'>
  /** Checks after the ACL, in order (disabled entities, JIT access grants). */
  guards: RequestGuard[]
  audit: AuditBroker
  logger: Logger
}

/** The route step's answer: who serves the path, and the path relative to its mount. */
interface Routed {
  backend: Backend
  mount?: MountEntry
  relativePath: string
}

/** What {@link Core.authorize} hands to the handler step. */
interface Authorized {
  handler: NonNullable<PathDef['operations'][Operation]>
  afterHooks: Array<(response: LogicalResponse | null) => Promise<void>>
  lastUse: boolean
}

/**
 * The request pipeline: one per node. Every logical request runs the same named steps:
 * route → sealed check → token → operation → ACL → guards → token use → audit(request) →
 * handler → audit(response). Everything it uses is handed to its constructor.
 */
export class Core {
  readonly #deps: CoreDeps

  constructor(deps: CoreDeps) {
    this.#deps = deps
  }

  /** Runs one logical request through the pipeline. */
  async handle(req: LogicalRequest): Promise<LogicalResponse | null> {
    const { audit, seal, tokens, logger } = this.#deps
    const ctx: RequestContext = {
      req,
      params: {},
      policies: [],
      grantingPolicies: [],
      startedAt: Date.now(),
    }
    let authorized: Authorized
    try {
      authorized = await this.authorize(ctx)
    } catch (err) {
      // Refused requests (bad token, ACL denial, unknown path) are audited too, as in Vault;
      // an audit failure cannot make a refusal worse, so it is not raised here.
      const apiErr = toApiError(err, logger)
      if (!seal.sealed) {
        await audit.logRequest(ctx).catch(() => {})
        await audit.logResponse(ctx, null, apiErr).catch(() => {})
      }
      throw apiErr
    }
    const { handler, afterHooks, lastUse } = authorized
    const operation = req.operation

    await audit.logRequest(ctx)
    let response: LogicalResponse | null
    try {
      response = (await handler(req, ctx.params)) ?? null
      if (operation === 'read' && response === null) throw new ApiError(404)
      if (operation === 'list' && isEmptyList(response)) throw new ApiError(404)
      for (const after of afterHooks) await after(response)
    } catch (err) {
      const apiErr = toApiError(err, logger)
      await audit.logResponse(ctx, null, apiErr).catch(() => {})
      throw apiErr
    } finally {
      if (lastUse && req.token) await tokens.revokeTree(req.token).catch(() => {})
    }
    await audit.logResponse(ctx, response)
    return response
  }

  /**
   * Everything before the handler, as named steps: route, token, operation, ACL, guards and
   * token use count. Throws to refuse; fills `ctx` as it learns.
   */
  private async authorize(ctx: RequestContext): Promise<Authorized> {
    const { req } = ctx
    const { def, params } = this.#matchRoute(ctx)
    if (!def.unauthenticated) req.token = await this.#token(req)
    const operation = await resolveOperation(def, req, params)
    req.operation = operation
    const handler =
      def.operations[operation] ?? (operation === 'create' ? def.operations.update : undefined)
    if (!handler) throw unsupportedOperation()
    const afterHooks =
      !def.unauthenticated && req.token ? await this.#checkAcl(ctx, def, req.token) : []
    const lastUse = await this.#countUse(req)
    return { handler, afterHooks, lastUse }
  }

  /** Route + sealed check: the path definition that serves the request. */
  #matchRoute(ctx: RequestContext): { def: PathDef; params: Record<string, string> } {
    const { req } = ctx
    const { sealed } = this.#deps.seal
    const { backend, mount, relativePath } = this.#route(req)
    ctx.mount = mount
    req.mount = mount
    req.mountPath = mount?.path ?? 'sys/'
    req.relativePath = relativePath

    const matched = matchPath(backend.paths, relativePath)
    if (!matched) {
      if (sealed) throw sealedError()
      throw new ApiError(404, `no handler for route "${req.path}". route entry not found.`)
    }
    const { def, params } = matched
    ctx.pathDef = def
    ctx.params = params
    req.route = def.pattern.source
    // A HEAD whose read could act (mint a credential, count a use) must not run it.
    if (req.head && !def.headSafe) throw unsupportedOperation()
    if (sealed && !def.allowSealed) throw sealedError()
    return matched
  }

  #route(req: LogicalRequest): Routed {
    const { sys, seal, mounts } = this.#deps
    if (req.path === 'sys' || req.path.startsWith('sys/')) {
      return { backend: sys, mount: mounts.get('sys/')?.entry, relativePath: req.path.slice(4) }
    }
    if (seal.sealed) throw sealedError()
    const hit = mounts.match(req.path)
    if (!hit) throw new ApiError(404, `no handler for route "${req.path}". route entry not found.`)
    return {
      backend: hit.backend,
      mount: hit.entry,
      relativePath: req.path.slice(hit.entry.path.length),
    }
  }

  /** The client token: a token this node saw in the last second is answered without storage. */
  #token(req: LogicalRequest): TokenEntry | Promise<TokenEntry> {
    const cached = req.clientToken ? this.#deps.tokens.cached(req.clientToken) : undefined
    return cached ? checkCidrs(req, cached) : this.#deps.authenticate(req)
  }

  /** ACL, then the guards; returns the guards' response hooks. */
  async #checkAcl(ctx: RequestContext, def: PathDef, token: TokenEntry) {
    const { req } = ctx
    const { access, guards } = this.#deps
    const { acl, policies } = access.memoFor(token) ?? (await access.aclFor(token))
    ctx.acl = acl
    ctx.policies = policies
    const decision = acl.check(req.path, req.operation, { sudo: def.sudo, data: req.data })
    if (!decision.allowed) throw permissionDenied()
    ctx.grantingPolicies = decision.grantingPolicies
    const afterHooks: Authorized['afterHooks'] = []
    for (const guard of guards) {
      // Most guards have nothing to check for most requests and answer synchronously.
      let after = guard(ctx)
      if (after instanceof Promise) after = await after
      if (after) afterHooks.push(after)
    }
    return afterHooks
  }

  /** Spends one use of a limited-use token; `true` when it was the last. */
  async #countUse(req: LogicalRequest): Promise<boolean> {
    if (!req.token || req.token.numUses <= 0) return false
    const used = await this.#deps.tokens.use(req.token)
    if (!used.ok) throw permissionDenied()
    // The handler sees the remaining uses, as Vault's lookup-self does.
    req.token = { ...req.token, numUses: req.token.numUses - 1 }
    return used.last
  }
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
    return new ApiError(503, err.message)
  }
  if (err instanceof ApiError) return err
  if (err instanceof SyntaxError) return new ApiError(400, 'failed to parse JSON input')
  logger.error({ err: sanitizeError(err) }, 'internal error')
  return new ApiError(500, 'internal error')
}

export function newRequestId(): string {
  return randomUUID()
}
