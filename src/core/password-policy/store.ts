import { ApiError } from '../errors.js'
import { silentLogger, type Logger } from '../logger.js'
import { PolicyParserUnavailableError, type PolicyLoadFailure } from '../policy/parse.js'
import { nowMs, upsert, type Storage } from '../../storage/storage.js'
import { checkSatisfiable, parsePasswordPolicy, type PasswordPolicy } from './policy.js'

declare module '../../storage/tables.js' {
  interface Tables {
    password_policies: PasswordPolicyTable
  }
}

/** Row of the `password_policies` table (created by `schema/0009-password-policies.ts`). */
export interface PasswordPolicyTable {
  name: string
  /** The policy text as written (base64 input decoded). */
  body: string
  created_at: number
  updated_at: number
}

/**
 * Password policies: storage and validation. Names are case-sensitive, as in Vault.
 *
 * Nothing is cached across reads, so every node sees a write at once; parsing is memoised by
 * policy text (issuing credentials parses the policy on every request). A stored policy that fails
 * to parse is never memoised: each use fails (400, or 503 when the parser gave no answer), logs an
 * error naming it and calls `onLoadFailure`.
 */
export interface PasswordPolicyStore {
  /** The parsed policy, or undefined when it does not exist. */
  get(name: string): Promise<PasswordPolicy | undefined>
  /** Stored policy names, sorted. */
  list(): Promise<string[]>
  /**
   * Parses, checks (rules not too tight) and stores a policy (HCL, JSON, or base64 of either).
   * Throws `ApiError(400)` on a bad name or policy; nothing is written then.
   */
  write(name: string, text: string): Promise<void>
  /** Deletes a policy; succeeds when it does not exist. */
  delete(name: string): Promise<void>
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/
const MAX_MEMO = 256

/** Validates a password policy name: `ApiError(400)` for anything but 1-128 of `[A-Za-z0-9._-]`. */
export function checkPasswordPolicyName(name: string): string {
  if (!NAME.test(name) || name === '.' || name === '..') {
    throw new ApiError(
      400,
      "invalid password policy name: use at most 128 of letters, digits, '_', '.' and '-'",
    )
  }
  return name
}

export interface PasswordPolicyStoreDeps {
  storage: Storage
  /** Where a stored policy that fails to parse is reported. */
  logger?: Logger
  /** Called whenever a stored policy fails to parse on load (for metrics). */
  onLoadFailure?: (failure: PolicyLoadFailure) => void
}

export function createPasswordPolicyStore(deps: PasswordPolicyStoreDeps): PasswordPolicyStore {
  const { storage, logger = silentLogger, onLoadFailure } = deps
  const { db } = storage
  const parsed = new Map<string, Promise<PasswordPolicy>>()

  const parse = (text: string): Promise<PasswordPolicy> => {
    let hit = parsed.get(text)
    if (!hit) {
      if (parsed.size >= MAX_MEMO) parsed.clear()
      hit = parsePasswordPolicy(text)
      parsed.set(text, hit)
      hit.catch(() => parsed.delete(text))
    }
    return hit
  }

  return {
    async get(name) {
      if (!NAME.test(name)) return undefined
      const row = await db
        .selectFrom('password_policies')
        .select('body')
        .where('name', '=', name)
        .executeTakeFirst()
      if (!row) return undefined
      try {
        return await parse(row.body)
      } catch (err) {
        const reason = err instanceof PolicyParserUnavailableError ? 'unavailable' : 'invalid'
        logger.error(
          { policy: name, reason, err: (err as Error).message.slice(0, 300) },
          reason === 'invalid'
            ? 'stored password policy does not parse: nothing can use it until it is rewritten'
            : 'stored password policy could not be parsed now: its uses fail until it does',
        )
        onLoadFailure?.({ type: 'password', name, reason })
        throw err
      }
    },

    async list() {
      const rows = await db.selectFrom('password_policies').select('name').orderBy('name').execute()
      return rows.map((r) => r.name)
    },

    async write(rawName, text) {
      const name = checkPasswordPolicyName(rawName)
      if (text.trim() === '') throw new ApiError(400, "'policy' parameter not supplied or empty")
      const policy = await parsePasswordPolicy(text)
      checkSatisfiable(policy)
      const now = nowMs()
      await upsert(
        storage,
        'password_policies',
        { name, body: policy.text, created_at: now, updated_at: now },
        ['name'],
        ['body', 'updated_at'],
      )
    },

    async delete(rawName) {
      const name = checkPasswordPolicyName(rawName)
      await db.deleteFrom('password_policies').where('name', '=', name).execute()
    },
  }
}
