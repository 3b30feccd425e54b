import { randomInt } from 'node:crypto'

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/**
 * `length` characters from `[0-9A-Za-z]`, uniformly from node:crypto's CSPRNG (24 characters hold
 * about 143 bits). For identifiers people pass around on command lines and in URLs: unlike
 * base64url, such an id never starts with `-` (which a CLI would read as a flag) or `_`.
 */
export function randomBase62(length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)]
  return out
}
