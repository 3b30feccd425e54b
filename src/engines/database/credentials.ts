import { randomInt } from 'node:crypto'
import { badRequest } from '../../core/errors.js'
import {
  generatePassword as generateFromPolicy,
  type PasswordPolicy,
} from '../../core/password-policy/policy.js'
import {
  checkPasswordPolicyName,
  type PasswordPolicyStore,
} from '../../core/password-policy/store.js'
import type { ConfigSettings } from './store.js'
import {
  compileUsernameTemplate,
  TemplateError,
  type UsernameTemplate,
} from './username-template.js'

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const DIGITS = '0123456789'
const ALL = LOWER + UPPER + DIGITS + '-'

/** Generated usernames and default passwords use only these characters: safe in any SQL quoting. */
export const SAFE_VALUE = /^[A-Za-z0-9._-]+$/

/**
 * Vault's default password: 20 characters from `[a-zA-Z0-9-]` with at least one lowercase letter,
 * uppercase letter, digit and `-`, from node:crypto's CSPRNG.
 */
export function generatePassword(length = 20): string {
  const chars = [pick(LOWER), pick(UPPER), pick(DIGITS), '-']
  while (chars.length < length) chars.push(pick(ALL))
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1)
    ;[chars[i], chars[j]] = [chars[j]!, chars[i]!]
  }
  return chars.join('')
}

function pick(alphabet: string): string {
  return alphabet[randomInt(alphabet.length)]!
}

/** Characters a password policy may not produce: Stint does not place them in SQL statements. */
export const SQL_UNSAFE_CHARACTERS = ["'", '"', '`', '\\']

/**
 * Reads a password policy a connection names and checks that its passwords can go into SQL:
 * a missing policy, or one whose charsets hold `'`, `"`, `` ` `` or `\`, is a 400.
 */
export async function sqlSafePasswordPolicy(
  policies: Pick<PasswordPolicyStore, 'get'>,
  name: string,
): Promise<PasswordPolicy> {
  const policy = await policies.get(checkPasswordPolicyName(name))
  if (!policy) throw badRequest(`password policy "${name}" does not exist`)
  const unsafe = SQL_UNSAFE_CHARACTERS.filter((c) => policy.alphabet.includes(c))
  if (unsafe.length > 0) {
    throw badRequest(
      `password policy "${name}" can generate ${unsafe.join(' ')}, which Stint does not place ` +
        'in SQL statements: remove them from its charsets',
    )
  }
  return policy
}

/**
 * A new password for a connection's users (or its admin, on rotate-root): from the connection's
 * `password_policy` when it names one, else {@link generatePassword}. Call it before anything is
 * written, so a policy that vanished fails the request cleanly.
 */
export async function passwordForConnection(
  policies: Pick<PasswordPolicyStore, 'get'>,
  settings: Pick<ConfigSettings, 'passwordPolicy'>,
): Promise<string> {
  const name = settings.passwordPolicy
  if (!name) return generatePassword()
  const policy = await sqlSafePasswordPolicy(policies, name)
  return generateFromPolicy(policy, `password policy "${name}"`)
}

/** Maps a token display name or role name onto the safe alphabet before it enters a template. */
export function safeInput(value: string): string {
  return value.replace(/[^A-Za-z0-9._-]/g, '_')
}

/**
 * Compiles a username template and proves it on sample input: the result must be non-empty, at
 * most `maxLength` characters and inside the safe alphabet. Throws `TemplateError` (a 400).
 */
export function checkedUsernameTemplate(template: string, maxLength: number): UsernameTemplate {
  const compiled = compileUsernameTemplate(template)
  const generate: UsernameTemplate = (input) => {
    const name = compiled({
      DisplayName: safeInput(input.DisplayName),
      RoleName: safeInput(input.RoleName),
    })
    if (!name || !SAFE_VALUE.test(name)) {
      throw new TemplateError('username_template produced characters outside [A-Za-z0-9._-]')
    }
    if (name.length > maxLength) {
      throw new TemplateError(
        `username_template produced a name longer than ${maxLength} characters`,
      )
    }
    return name
  }
  generate({ DisplayName: 'token', RoleName: 'role' })
  return generate
}
