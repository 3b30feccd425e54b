import { Core } from '../core/core.js'
import { createAccessControl } from '../core/access-control.js'
import { createAuthenticate } from '../core/authenticate.js'
import { createCacheSync } from '../core/cache-sync.js'
import { createLeaseManager, type LeaseManagerControl } from '../core/leases/manager.js'
import type { LeaseSettings } from '../core/leases/settings.js'
import { silentLogger, type Logger } from '../core/logger.js'
import { factoryKey, MountTable, type BackendFactory } from '../core/mounts.js'
import { bindLifecycle, mountTtls, syncedPolicies } from '../core/node.js'
import {
  createPasswordPolicyStore,
  type PasswordPolicyStore,
} from '../core/password-policy/store.js'
import { createPolicyStore } from '../core/policy/store.js'
import type { Backend } from '../core/request.js'
import { SealManager } from '../core/seal.js'
import { createSecondFactors } from '../core/second-factor.js'
import type { CoreServices } from '../core/services.js'
import { TokenStore } from '../core/tokens.js'
import { intervalWorker } from '../core/workers.js'
import { createIdentity, type Identity } from '../identity/identity.js'
import { createAuditBroker, type AuditService } from '../audit/broker.js'
import { createAccess, type Access, type AccessInstallOptions } from '../access/access.js'
import { createTokenBackend } from '../auth/token/backend.js'
import { createJwtBackend } from '../auth/jwt/backend.js'
import { createAppRoleBackend } from '../auth/approle/backend.js'
import { userpassMethod } from '../auth/userpass/backend.js'
import { createKvBackend } from '../engines/kv/index.js'
import { createDatabaseBackend } from '../engines/database/index.js'
import { createSysBackend } from '../engines/sys/index.js'
import { leasePaths } from '../engines/sys/leases.js'
import { auditPaths } from '../engines/sys/audit.js'
import { metricsPaths } from '../engines/sys/metrics.js'
import { createMetrics, type StintMetrics } from '../observability/metrics.js'
import { createRequestObserver } from '../observability/request-observer.js'
import { createApiHandler, type ApiHandler } from '../http/api.js'
import { openStorage, type Storage } from '../storage/storage.js'
import { migrate } from '../storage/migrate.js'

export interface ComposeOptions {
  /** Storage URL (`sqlite:...`, `postgres://...`, `mysql://...`) or an opened storage. */
  storage: string | Storage
  /** Auto-unseal key (from a key file or environment variable). */
  staticUnsealKey?: Uint8Array
  logger?: Logger
  /** The node's default and max lease TTLs in seconds (Vault's 768h when unset). */
  defaultLeaseTtl?: number
  maxLeaseTtl?: number
  /** Lease manager settings (tick, batch sizes, the pending grace period). */
  leases?: Partial<LeaseSettings>
  access?: AccessInstallOptions
  /**
   * Extra secrets engine types by name, beside the built-in ones (tests and benchmarks mount
   * engines of their own this way).
   */
  engines?: Record<string, (services: Services) => BackendFactory>
  /** Auth method types by name, replacing or joining the built-in ones (tests). */
  authMethods?: Record<string, (services: Services) => BackendFactory>
}

/** Everything the composition root built, for the parts that need more than one service. */
export interface Services extends CoreServices {
  identity: Identity['store']
  audit: AuditService
  metrics: StintMetrics
  passwordPolicies: PasswordPolicyStore
}

/** A complete Stint node. */
export interface Stint {
  /** The request pipeline. */
  core: Core
  /** The /v1 handler: the one path HTTP requests take, over a socket or in process. */
  api: ApiHandler
  storage: Storage
  services: Services
  /** The lease manager with its controls (settings, worker), for tests and benchmarks. */
  leases: LeaseManagerControl
  access: Access
  /** Seals, stops workers and closes storage. */
  shutdown(): Promise<void>
}

/**
 * The one place that builds a node, in dependency order: storage → seal → tokens, policies,
 * mounts → leases → identity → audit → access → engines → pipeline → HTTP. Every part is handed
 * what it uses; nothing is assigned into another part after construction.
 */
export async function composeServer(options: ComposeOptions): Promise<Stint> {
  // Storage.
  const storage =
    typeof options.storage === 'string' ? openStorage(options.storage) : options.storage
  await migrate(storage)
  const logger = options.logger ?? silentLogger

  // Seal, tokens, policies, mounts.
  const seal = new SealManager({ storage, staticKey: options.staticUnsealKey })
  const tokens = new TokenStore({ storage, barrier: seal.barrier })
  const cacheSync = createCacheSync({ storage })
  const metrics = createMetrics({ storage, sealed: () => seal.sealed })
  const policyStore = createPolicyStore({ storage, logger })
  // A stored ACL policy that no longer parses grants nothing: count it where alerts can see it.
  policyStore.onLoadFailure((failure) => metrics.policyLoadFailure(failure))
  const policies = syncedPolicies(policyStore, cacheSync)
  const passwordPolicies = createPasswordPolicyStore({
    storage,
    logger,
    onLoadFailure: (failure) => metrics.policyLoadFailure(failure),
  })
  const factories = new Map<string, BackendFactory>()
  const mounts = new MountTable({ storage, factories })
  const ttls = mountTtls(options)

  // Leases.
  // Crash-recovery tests shorten the pending grace period (default 60 s) through the environment.
  const pendingGraceMs = Number(process.env.STINT_LEASE_PENDING_GRACE_MS) || undefined
  const leases = createLeaseManager({
    storage,
    barrier: seal.barrier,
    mounts,
    mountTtls: ttls,
    logger,
    settings: { ...(pendingGraceMs ? { pendingGraceMs } : {}), ...options.leases },
    onRevoked: (lagMs) => metrics.observeRevocation(lagMs),
    onRevokeFailed: (mountPath) => metrics.revocationFailure(mountPath),
  })
  tokens.onRevoke((entries) => leases.revokeByTokens(entries.map((e) => e.id)))

  // Identity: entity and group policies join every token's own.
  const identity = createIdentity({ storage, mounts })
  const access = createAccessControl({
    policies,
    identityPolicies: (entityId) => identity.store.policiesFor(entityId),
  })
  // Disabling a mount ends what was issued through it: its tokens (and their leases), its
  // leases, and the identity aliases of an auth mount.
  mounts.onBeforeDisable(async (entry) => {
    if (entry.kind === 'auth') await tokens.revokeByMount(entry.accessor)
    await leases.revokeByMount(entry.accessor)
    if (entry.kind === 'auth') await identity.store.deleteAliasesForMount(entry.accessor)
  })

  // Audit.
  const audit = createAuditBroker({
    storage,
    barrier: seal.barrier,
    logger,
    onFailure: (path) => metrics.auditFailure(path),
  })

  const services: Services = {
    storage,
    logger,
    seal,
    tokens,
    policies,
    cacheSync,
    mounts,
    leases,
    secondFactors: createSecondFactors(),
    mountTtls: ttls,
    effectivePolicies: access.effectivePolicies,
    aclFor: access.aclFor,
    authenticate: createAuthenticate({ tokens }),
    identity: identity.store,
    audit,
    metrics,
    passwordPolicies,
  }

  // JIT access.
  const jit = createAccess(services, options.access)

  // Engines and auth methods, by type.
  const sys = createSysBackend(services, [
    ...leasePaths(services),
    ...auditPaths(audit),
    ...metricsPaths(metrics),
    ...jit.paths,
  ])
  const empty = (): Backend => ({ paths: [] })
  const secret = (type: string, factory: BackendFactory) =>
    factories.set(factoryKey('secret', type), factory)
  const auth = (type: string, factory: BackendFactory) =>
    factories.set(factoryKey('auth', type), factory)
  secret('system', () => sys)
  secret('identity', identity.backend)
  secret('cubbyhole', empty)
  secret('kv', (mount) => createKvBackend(services, mount))
  secret('generic', (mount) => createKvBackend(services, mount, 1))
  secret('database', (mount) => createDatabaseBackend(services, mount))
  for (const [type, make] of Object.entries(options.engines ?? {})) secret(type, make(services))
  auth('token', (mount) => createTokenBackend(services, mount))
  auth('userpass', userpassMethod(services))
  auth('jwt', (mount) => createJwtBackend(services, mount))
  auth('oidc', (mount) => createJwtBackend(services, mount))
  auth('approle', (mount) => createAppRoleBackend(services, mount))
  for (const [type, make] of Object.entries(options.authMethods ?? {})) auth(type, make(services))

  // Unseal and seal: caches, mounts and workers first, then the audit devices.
  bindLifecycle({
    seal,
    policies,
    mounts,
    cacheSync,
    workers: [leases.worker(), tokenExpiry(tokens, logger), jit.worker],
  })
  seal.hooks(
    () => audit.load(),
    () => audit.unload(),
  )

  // The pipeline and HTTP.
  const core = new Core({
    seal,
    mounts,
    sys,
    tokens,
    authenticate: services.authenticate,
    access,
    guards: [identity.guard, jit.guard],
    audit,
    logger,
  })
  const api = createApiHandler({
    core,
    logger,
    observe: createRequestObserver({ metrics, logger }),
  })

  await seal.autoUnseal()
  return {
    core,
    api,
    storage,
    services,
    leases,
    access: jit,
    shutdown: async () => {
      await seal.seal()
      await storage.close()
    },
  }
}

/** Revokes expired tokens (and, through them, their leases) every few seconds. */
function tokenExpiry(tokens: TokenStore, logger: Logger) {
  return intervalWorker(
    async () => {
      while ((await tokens.expireDue(200)) === 200) {
        /* keep draining */
      }
    },
    5_000,
    (err) => logger.warn({ err: (err as Error).name }, 'token expiry sweep failed'),
  )
}
