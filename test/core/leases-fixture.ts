import { randomBytes } from 'node:crypto'
import type { Core } from '../../src/core/core.js'
import type { LeaseManagerControl } from '../../src/core/leases/manager.js'
import type { BackendFactory } from '../../src/core/mounts.js'
import type { Backend, LogicalRequest } from '../../src/core/request.js'
import { composeServer, type Services } from '../../src/server/compose.js'
import type { DialectName, Storage } from '../../src/storage/storage.js'
import { freshStorage } from '../support/databases.js'
import { startTestServer } from '../support/server.js'

/**
 * What the test engine saw. One recorder can serve several cores (nodes) at once, so tests can
 * count revocations across nodes. Failing targets throw an error that carries a fake password,
 * which must never come back out of Stint.
 */
export interface Recorder {
  creates: Array<{ leaseId: string; expireTime: number; stateSeen: string | undefined }>
  revokes: Array<{ user: string; target: string; node: string; at: number }>
  renews: Array<{ user: string; expireTime: number }>
  failCreate: boolean
  failTargets: Set<string>
  /** Milliseconds each revocation takes (per target; default 0). */
  revokeDelay: Map<string, number>
  /** Runs inside create, after the intent row exists (to race recovery against a slow create). */
  duringCreate?: (leaseId: string) => Promise<void>
  /** Batched engines only: the users of each `revokeSecrets` call. */
  batches: Array<{ users: string[]; target: string }>
  /** Users whose revocation fails (alone, inside a batch). */
  failUsers: Set<string>
  /** Batched engines only: most `revokeSecrets` calls seen in flight at once, per target. */
  maxInFlight: Map<string, number>
}

export const LEAKY_SECRET = 'hunter2-very-secret'

export function newRecorder(): Recorder {
  return {
    creates: [],
    revokes: [],
    renews: [],
    failCreate: false,
    failTargets: new Set(),
    revokeDelay: new Map(),
    duringCreate: undefined,
    batches: [],
    failUsers: new Set(),
    maxInFlight: new Map(),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A test-only secrets engine: `GET <mount>/creds/<target>?ttl=&max_ttl=&renewable=` issues a
 * lease through the core's lease manager; the target name is the lease's `target_key`. With
 * `batch`, the engine also has `revokeSecrets` (one outcome per item, recorded per call).
 */
export function testEngine(
  recorder: Recorder,
  node = 'a',
  opts: { batch?: boolean } = {},
): (services: Services) => BackendFactory {
  return (core) => testEngineFor(core, recorder, node, opts)
}

function testEngineFor(
  core: Pick<Services, 'leases' | 'storage'>,
  recorder: Recorder,
  node: string,
  opts: { batch?: boolean },
): BackendFactory {
  const inFlight = new Map<string, number>()
  const revokeOne = async (internal: Record<string, unknown>) => {
    const target = String(internal.target)
    if (recorder.failTargets.has(target) || recorder.failUsers.has(String(internal.user))) {
      throw new Error(`connect to postgres://admin:${LEAKY_SECRET}@db/${target} refused`)
    }
    recorder.revokes.push({ user: String(internal.user), target, node, at: Date.now() })
  }
  const revokeSecrets = async (internals: Record<string, unknown>[]) => {
    const target = String(internals[0]?.target)
    const now = (inFlight.get(target) ?? 0) + 1
    inFlight.set(target, now)
    recorder.maxInFlight.set(target, Math.max(now, recorder.maxInFlight.get(target) ?? 0))
    try {
      recorder.batches.push({ users: internals.map((i) => String(i.user)), target })
      const delay = recorder.revokeDelay.get(target) ?? 0
      if (delay > 0) await sleep(delay)
      return await Promise.all(
        internals.map((internal) =>
          revokeOne(internal).then(
            () => undefined,
            (err: Error) => err,
          ),
        ),
      )
    } finally {
      inFlight.set(target, (inFlight.get(target) ?? 1) - 1)
    }
  }
  return (mount): Backend => ({
    ...(opts.batch ? { revokeSecrets } : {}),
    paths: [
      {
        pattern: /^creds\/(?<target>[a-z0-9-]+)$/,
        operations: {
          read: async (req: LogicalRequest, params) => {
            const target = params.target!
            const user = `v-${target}-${randomBytes(4).toString('hex')}`
            const issued = await core.leases.issue({
              mount,
              path: req.path,
              token: req.token!,
              ttl: Number(req.data.ttl ?? 60),
              maxTtl: Number(req.data.max_ttl ?? 0),
              renewable: req.data.renewable !== 'false',
              internal: { user, target },
              targetKey: `test/${target}`,
              create: async (leaseId, expireTime) => {
                const row = await core.storage.db
                  .selectFrom('leases')
                  .select('state')
                  .where('id', '=', leaseId)
                  .executeTakeFirst()
                recorder.creates.push({ leaseId, expireTime, stateSeen: row?.state })
                await recorder.duringCreate?.(leaseId)
                if (recorder.failCreate) throw new Error(`create failed password=${LEAKY_SECRET}`)
              },
            })
            return {
              data: { username: user },
              secret: { leaseId: issued.leaseId, ttl: issued.ttl, renewable: true },
            }
          },
        },
      },
    ],
    async revokeSecret(internal) {
      const delay = recorder.revokeDelay.get(String(internal.target)) ?? 0
      if (delay > 0) await sleep(delay)
      await revokeOne(internal)
    },
    async renewSecret(internal, expireTime) {
      recorder.renews.push({ user: String(internal.user), expireTime })
    },
  })
}

export const STATIC_KEY = new Uint8Array(32).fill(7)

/** A second (or third) node on an existing, initialised storage, with the test engine. */
export async function startNode(
  storageUrl: string,
  recorder: Recorder,
  node: string,
): Promise<{ core: Core; storage: Storage; leases: LeaseManagerControl; close(): Promise<void> }> {
  const stint = await composeServer({
    storage: storageUrl,
    staticUnsealKey: STATIC_KEY,
    engines: { 'test-leases': testEngine(recorder, node) },
  })
  return {
    core: stint.core,
    storage: stint.storage,
    leases: stint.leases,
    close: () => stint.shutdown(),
  }
}

/** Waits until `check` holds, polling every 10 ms; throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`)
    await sleep(10)
  }
}

/**
 * A server on a fresh storage of `dialect` with the test engine mounted at `path` (batched with
 * `batch`), for the lease manager's suites. `fresh.drop()` removes the storage afterwards.
 */
export async function startLeaseServer(
  dialect: DialectName,
  options: { path: string; batch?: boolean },
) {
  const fresh = await freshStorage(dialect)
  const recorder = newRecorder()
  const server = await startTestServer({
    storage: fresh.storage,
    staticUnsealKey: STATIC_KEY,
    devMounts: false,
    compose: {
      engines: { 'test-leases': testEngine(recorder, 'a', { batch: options.batch }) },
    },
  })
  await server.services.mounts.enable({ path: options.path, kind: 'secret', type: 'test-leases' })
  return { fresh, server, recorder, leases: server.leases }
}
