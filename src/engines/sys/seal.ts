import { ApiError, badRequest } from '../../core/errors.js'
import type { CoreServices } from '../../core/services.js'
import type { LogicalRequest, PathDef } from '../../core/request.js'
import { VERSION } from '../../version.js'

/** sys/init, sys/unseal, sys/seal, sys/seal-status, sys/health, sys/rotate, sys/key-status. */
export function sealPaths(
  core: Pick<CoreServices, 'seal' | 'policies' | 'tokens' | 'storage'>,
): PathDef[] {
  const sealStatus = async () => {
    const s = await core.seal.status()
    return {
      type: s.type,
      initialized: s.initialized,
      sealed: s.sealed,
      t: s.t,
      n: s.n,
      progress: s.progress,
      nonce: s.nonce,
      version: VERSION,
      build_date: '',
      migration: false,
      cluster_name: 'stint',
      cluster_id: s.sealed ? '' : 'stint',
      recovery_seal: false,
      storage_type: core.storage.dialect,
    }
  }

  return [
    {
      pattern: /^init$/,
      unauthenticated: true,
      allowSealed: true,
      operations: {
        read: async () => ({ body: { initialized: await core.seal.initialized() } }),
        update: async (req) => {
          const { shares, threshold } = initParams(req)
          let rootToken = ''
          // With an auto-unseal key the server unseals right after init, as Vault does.
          const autoUnseal = (await core.seal.status()).type === 'static'
          const keys = await core.seal.initialize(
            shares,
            threshold,
            async () => {
              await core.policies.ensureBuiltins()
              rootToken = await createRootToken(core)
            },
            autoUnseal,
          )
          return {
            body: {
              keys: keys.map((k) => Buffer.from(k).toString('hex')),
              keys_base64: keys.map((k) => Buffer.from(k).toString('base64')),
              root_token: rootToken,
            },
          }
        },
      },
    },
    {
      pattern: /^unseal$/,
      unauthenticated: true,
      allowSealed: true,
      operations: {
        update: async (req) => {
          if (req.data.reset === true || req.data.reset === 'true') {
            if (!core.seal.sealed) throw badRequest('vault is unsealed')
            core.seal.resetProgress()
            return { body: await sealStatus() }
          }
          if (typeof req.data.key !== 'string' || req.data.key === '') {
            throw badRequest(
              "'key' must be specified in request body as JSON, or 'reset' set to true",
            )
          }
          await core.seal.submitShare(req.data.key)
          return { body: await sealStatus() }
        },
      },
    },
    {
      pattern: /^seal-status$/,
      unauthenticated: true,
      allowSealed: true,
      headSafe: true,
      operations: { read: async () => ({ body: await sealStatus() }) },
    },
    {
      pattern: /^seal$/,
      sudo: true,
      operations: {
        update: async () => {
          await core.seal.seal()
          return null
        },
      },
    },
    {
      pattern: /^health$/,
      unauthenticated: true,
      allowSealed: true,
      headSafe: true,
      operations: { read: async (req) => health(core, req) },
    },
    {
      pattern: /^leader$/,
      unauthenticated: true,
      allowSealed: true,
      headSafe: true,
      operations: {
        read: async () => ({
          data: {
            ha_enabled: false,
            is_self: true,
            leader_address: '',
            leader_cluster_address: '',
          },
        }),
      },
    },
    {
      pattern: /^rotate$/,
      sudo: true,
      operations: {
        update: async () => {
          await core.seal.rotate()
          return null
        },
      },
    },
    {
      pattern: /^key-status$/,
      operations: {
        read: async () => {
          const s = core.seal.barrier.keyStatus()
          return {
            data: { term: s.term, install_time: new Date(s.installTime).toISOString() },
            injectTopLevel: true,
          }
        },
      },
    },
  ]
}

/** Creates the root token (policy `root`, never expires). */
export async function createRootToken(
  core: Pick<CoreServices, 'tokens'>,
  id?: string,
): Promise<string> {
  const created = await core.tokens.create({
    policies: ['root'],
    path: 'auth/token/root',
    displayName: 'root',
    id,
    defaultTtl: 0,
    maxTtl: 0,
  })
  return created.token
}

function initParams(req: LogicalRequest): { shares: number; threshold: number } {
  const shares = req.data.secret_shares ?? req.data.recovery_shares ?? 1
  const threshold = req.data.secret_threshold ?? req.data.recovery_threshold ?? 1
  if (req.data.pgp_keys || req.data.root_token_pgp_key) {
    throw badRequest('PGP-encrypted key shares are not supported')
  }
  const n = Number(shares)
  const t = Number(threshold)
  if (!Number.isInteger(n) || !Number.isInteger(t)) {
    throw badRequest('secret_shares and secret_threshold must be integers')
  }
  return { shares: n, threshold: t }
}

async function health(core: Pick<CoreServices, 'seal' | 'storage'>, req: LogicalRequest) {
  const initialized = await core.seal.initialized()
  const sealed = core.seal.sealed
  const code = (name: string, fallback: number): number => {
    const raw = req.query[name]
    if (raw === undefined) return fallback
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN
    // 1xx codes cannot carry a response; the HTTP layer would fail on them.
    if (!Number.isInteger(value) || value < 200 || value > 599) {
      throw new ApiError(400, `bad code value for ${name}`)
    }
    return value
  }
  // Every override is validated, even those that do not apply, as Vault does.
  const uninitCode = code('uninitcode', 501)
  const sealedCode = code('sealedcode', 503)
  const activeCode = code('activecode', 200)
  code('standbycode', 429)
  const status = !initialized ? uninitCode : sealed ? sealedCode : activeCode
  return {
    status,
    body: {
      initialized,
      sealed,
      standby: false,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(Date.now() / 1000),
      version: VERSION,
      cluster_name: 'stint',
      cluster_id: sealed ? '' : 'stint',
    },
  }
}
