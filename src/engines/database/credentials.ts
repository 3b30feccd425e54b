import { randomInt } from 'node:crypto'
import {
  compileUsernameTemplate,
  TemplateError,
  type UsernameTemplate,
} from './username-template.js'

const LOWER = 'abcdefghijklmnopqrstuvwxyz'
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const DIGITS = '0123456789'
const ALL = LOWER + UPPER + DIGITS + '-'

/** Generated usernames and passwords use only these characters, so they can never break out of SQL quoting. */
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
