import type { LoginDeps } from '../login-deps.js'
import type { CoreServices } from '../../core/services.js'
import type { MountEntry } from '../../core/mounts.js'
import type { Backend, LogicalRequest, LogicalResponse } from '../../core/request.js'
import { badRequest, permissionDenied } from '../../core/errors.js'
import { issueLoginToken, parseTokenFields, tokenFieldsResponse } from '../token-fields.js'
import { normalizePolicies, stringList } from '../../core/fields.js'
import { hashPassword, MAX_PASSWORD_LENGTH, prepareDummyHash, verifyPassword } from './password.js'
import { checkTotp, newTotpSeed, totpUrl } from './totp.js'
import { LoginThrottle, lockoutFromOptions, type LockoutSettings } from './throttle.js'
import { createUserStore, type User } from './users.js'

export interface UserpassDeps {
  core: LoginDeps & Pick<CoreServices, 'secondFactors'>
  mount: MountEntry
  /** Failed-login counters; by default a new one. */
  throttle?: LoginThrottle
  /** Called when the mount is disabled (its counters can go). */
  onDisable?: () => void
  /** Clock for TOTP checks (epoch ms). */
  now?: () => number
}

const INVALID_LOGIN = 'invalid username or password'
const USERNAME = /^[a-z0-9_][a-z0-9_.@+-]{0,127}$/

/**
 * The userpass auth method (`auth/userpass/`): users with argon2id password hashes and
 * `token_*` fields, an optional TOTP second factor, and throttled logins at `login/<username>`.
 * Usernames are case-insensitive (stored lower-cased), as in Vault.
 */
/**
 * The `userpass` auth method type: a factory for its mounts. A mount's failed-login counters
 * outlive its backend, which a tune of the options rebuilds.
 */
export function userpassMethod(core: LoginDeps & Pick<CoreServices, 'secondFactors'>) {
  const throttles = new Map<string, LoginThrottle>()
  return (mount: MountEntry): Backend => {
    let throttle = throttles.get(mount.accessor)
    if (!throttle) throttles.set(mount.accessor, (throttle = new LoginThrottle()))
    const onDisable = () => void throttles.delete(mount.accessor)
    return createUserpassBackend({ core, mount, throttle, onDisable })
  }
}

export function createUserpassBackend(deps: UserpassDeps): Backend {
  const { core, mount } = deps
  const throttle = deps.throttle ?? new LoginThrottle()
  // Read at each login: a tune updates `mount.options` in place. Bad values are logged once.
  let lockout: { options: string; settings: LockoutSettings } | undefined
  const lockoutSettings = (): LockoutSettings => {
    const options = JSON.stringify(mount.options ?? {})
    if (lockout?.options !== options) {
      const { settings, errors } = lockoutFromOptions(mount.options)
      if (errors.length > 0)
        core.logger.error({ mount: mount.path, errors }, 'userpass lockout options ignored')
      lockout = { options, settings }
    }
    return lockout.settings
  }
  const now = deps.now ?? Date.now
  prepareDummyHash()
  const users = createUserStore({
    storage: core.storage,
    barrier: core.seal.barrier,
    mountAccessor: mount.accessor,
  })

  // Lets JIT access confirm an activation with this user's TOTP (same replay protection).
  core.secondFactors.register(mount.accessor, async (token, code) => {
    // The username this mount verified at login, never the caller-writable token `meta`.
    const verified = token.login?.mount === mount.accessor ? token.login.claims.username : undefined
    if (!verified) return false
    const user = await users.get(verified)
    const seed = user?.totpEnrolled ? await users.totpSeed(user) : undefined
    if (!user || !seed) return false
    const step = await checkTotp(seed, code.trim(), user.totpLastStep, now())
    return step !== undefined && (await users.claimTotpStep(user, step))
  })

  const username = (raw: string | undefined): string => {
    const name = (raw ?? '').toLowerCase()
    if (!USERNAME.test(name)) throw badRequest('invalid username')
    return name
  }
  const requireUser = async (raw: string | undefined): Promise<User> => {
    const user = await users.get(username(raw))
    if (!user) throw badRequest('username does not exist')
    return user
  }
  const newPassword = (value: unknown): string | undefined => {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'string' || value === '')
      throw badRequest('password must be a non-empty string')
    if (value.length > MAX_PASSWORD_LENGTH)
      throw badRequest(`password is longer than ${MAX_PASSWORD_LENGTH} characters`)
    return value
  }

  const writeUser = async (req: LogicalRequest, p: Record<string, string>): Promise<null> => {
    const name = username(p.username)
    const existing = await users.get(name)
    const fields = parseTokenFields(req.data, existing?.fields)
    if (fields.tokenPolicies.includes('root'))
      throw badRequest('the root policy cannot be granted by a login')
    const password = newPassword(req.data.password)
    if (existing) {
      await users.update(existing, {
        fields,
        passwordHash: password && (await hashPassword(password)),
      })
    } else {
      if (!password) throw badRequest('missing password')
      await users.create(name, await hashPassword(password), fields)
    }
    return null
  }

  const login = async (
    req: LogicalRequest,
    p: Record<string, string>,
  ): Promise<LogicalResponse> => {
    const password = req.data.password
    if (typeof password !== 'string' || password === '') throw badRequest('missing password')
    const name = (p.username ?? '').toLowerCase()
    const valid = USERNAME.test(name) && password.length <= MAX_PASSWORD_LENGTH
    // Keyed per mount: the same name on two userpass mounts is two users.
    const ticket = throttle.admit(
      `${mount.accessor}\0${valid ? name : '\0invalid'}`,
      req.remoteAddress,
      lockoutSettings(),
    )
    let user: User | undefined
    try {
      user = valid ? await users.get(name) : undefined
      const ok = await verifyPassword(user?.passwordHash, valid ? password : '')
      if (!ok || !user) {
        ticket.failure()
        throw badRequest(INVALID_LOGIN)
      }
      if (user.totpEnrolled) {
        const code =
          typeof req.data.totp === 'number' ? String(req.data.totp).padStart(6, '0') : req.data.totp
        if (typeof code !== 'string' || code.trim() === '') {
          ticket.release()
          throw badRequest('TOTP code required')
        }
        const seed = await users.totpSeed(user)
        const step = seed ? await checkTotp(seed, code.trim(), user.totpLastStep, now()) : undefined
        if (step === undefined || !(await users.claimTotpStep(user, step))) {
          ticket.failure()
          throw badRequest('invalid or already used TOTP code')
        }
      }
      ticket.success()
    } finally {
      ticket.release()
    }

    const entityId = await core.identity.resolveAlias({
      mountAccessor: mount.accessor,
      mountType: mount.type,
      name,
    })
    if (entityId && (await core.identity.entity(entityId))?.disabled) throw permissionDenied()
    const { auth, warnings } = await issueLoginToken(core, {
      mount,
      fields: user.fields,
      metadata: { username: name },
      verifiedClaims: { username: name },
      // Tells JIT access rules (approver_mfa) that this login checked a second factor.
      mfa: user.totpEnrolled ? 'totp' : undefined,
      displayName: name,
      entityId,
      path: req.path,
    })
    return { auth, warnings: warnings.length ? warnings : undefined }
  }

  return {
    paths: [
      {
        pattern: /^users\/?$/,
        operations: { list: async () => ({ data: { keys: await users.list() } }) },
      },
      {
        pattern: /^users\/(?<username>[^/]+)$/,
        existence: async (_req, p) =>
          (await users.get((p.username ?? '').toLowerCase())) !== undefined,
        operations: {
          read: async (_req, p) => {
            const user = await users.get(username(p.username))
            if (!user) return null
            const f = user.fields
            return {
              data: {
                ...tokenFieldsResponse(f),
                policies: f.tokenPolicies,
                ttl: f.tokenTtl,
                max_ttl: f.tokenMaxTtl,
                bound_cidrs: f.tokenBoundCidrs,
                totp_enabled: user.totpEnrolled,
              },
            }
          },
          create: writeUser,
          update: writeUser,
          delete: async (_req, p) => {
            await users.delete(username(p.username))
            return null
          },
        },
      },
      {
        pattern: /^users\/(?<username>[^/]+)\/password$/,
        operations: {
          update: async (req, p) => {
            const user = await requireUser(p.username)
            const password = newPassword(req.data.password)
            if (!password) throw badRequest('missing password')
            await users.update(user, { passwordHash: await hashPassword(password) })
            return null
          },
        },
      },
      {
        pattern: /^users\/(?<username>[^/]+)\/policies$/,
        operations: {
          update: async (req, p) => {
            const user = await requireUser(p.username)
            const raw = req.data.token_policies ?? req.data.policies
            const policies = normalizePolicies(stringList(raw, 'token_policies'))
            if (policies.includes('root'))
              throw badRequest('the root policy cannot be granted by a login')
            await users.update(user, { fields: { ...user.fields, tokenPolicies: policies } })
            return null
          },
        },
      },
      {
        pattern: /^users\/(?<username>[^/]+)\/totp$/,
        operations: {
          read: async (_req, p) => ({
            data: { enabled: (await requireUser(p.username)).totpEnrolled },
          }),
          update: async (_req, p) => {
            const user = await requireUser(p.username)
            const seed = newTotpSeed()
            await users.setTotpSeed(user, seed)
            return { data: { url: totpUrl(user.username, seed) } }
          },
          delete: async (_req, p) => {
            const user = await users.get(username(p.username))
            if (user) await users.setTotpSeed(user, null)
            return null
          },
        },
      },
      {
        pattern: /^login\/(?<username>[^/]+)$/,
        unauthenticated: true,
        operations: { update: login },
      },
    ],
    cleanup: async () => {
      deps.onDisable?.()
      await users.deleteAll()
    },
  }
}
