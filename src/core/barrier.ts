import { createHmac, timingSafeEqual } from 'node:crypto'
import * as aead from '../crypto/aead.js'
import { sealedError } from './errors.js'

/** The keyring as stored (encrypted by the root key). */
export interface KeyringData {
  activeTerm: number
  keys: Array<{ term: number; key: string; installTime: number }>
  /** Key of the HMAC that stores tokens and other lookup secrets; never rotated. */
  hmacKey: string
}

export function newKeyring(): KeyringData {
  return {
    activeTerm: 1,
    keys: [
      { term: 1, key: Buffer.from(aead.generateKey()).toString('base64'), installTime: Date.now() },
    ],
    hmacKey: Buffer.from(aead.generateKey()).toString('base64'),
  }
}

/**
 * The barrier: seals and opens sensitive values with the keyring's data keys.
 *
 * Every ciphertext is bound to `table:column:rowId` as associated data, so it cannot be copied to
 * another row or column. Format: `<term>:<base64(nonce || ciphertext)>`; old terms stay readable
 * after a rotation.
 */
export class Barrier {
  #keys = new Map<number, Uint8Array>()
  #activeTerm = 0
  #hmacKey: Buffer | undefined
  #keyring: KeyringData | undefined

  get sealed(): boolean {
    return this.#hmacKey === undefined
  }

  load(keyring: KeyringData): void {
    this.#keys = new Map(
      keyring.keys.map((k) => [k.term, new Uint8Array(Buffer.from(k.key, 'base64'))]),
    )
    this.#activeTerm = keyring.activeTerm
    this.#hmacKey = Buffer.from(keyring.hmacKey, 'base64')
    this.#keyring = keyring
  }

  unload(): void {
    for (const key of this.#keys.values()) key.fill(0)
    this.#hmacKey?.fill(0)
    this.#keys = new Map()
    this.#hmacKey = undefined
    this.#keyring = undefined
    this.#activeTerm = 0
  }

  /** Adds a new data key and makes it active; returns the keyring to persist. */
  rotate(): KeyringData {
    const ring = this.#require()
    const term = Math.max(...ring.keys.map((k) => k.term)) + 1
    const next: KeyringData = {
      ...ring,
      activeTerm: term,
      keys: [
        ...ring.keys,
        { term, key: Buffer.from(aead.generateKey()).toString('base64'), installTime: Date.now() },
      ],
    }
    this.load(next)
    return next
  }

  keyStatus(): { term: number; installTime: number; encryptions?: number } {
    const ring = this.#require()
    const active = ring.keys.find((k) => k.term === ring.activeTerm)
    return { term: ring.activeTerm, installTime: active?.installTime ?? 0 }
  }

  encrypt(table: string, column: string, rowId: string, plaintext: string | Uint8Array): string {
    this.#require()
    const key = this.#keys.get(this.#activeTerm)!
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext
    const sealed = aead.seal(key, bytes, `${table}:${column}:${rowId}`)
    return `${this.#activeTerm}:${Buffer.from(sealed).toString('base64')}`
  }

  decryptBytes(table: string, column: string, rowId: string, ciphertext: string): Uint8Array {
    this.#require()
    const sep = ciphertext.indexOf(':')
    const term = Number(ciphertext.slice(0, sep))
    const key = this.#keys.get(term)
    if (sep < 1 || !key)
      throw new Error(`ciphertext for ${table}.${column} uses an unknown key term`)
    try {
      return aead.open(
        key,
        Buffer.from(ciphertext.slice(sep + 1), 'base64'),
        `${table}:${column}:${rowId}`,
      )
    } catch {
      throw new Error(`ciphertext for ${table}.${column} failed authentication`)
    }
  }

  decrypt(table: string, column: string, rowId: string, ciphertext: string): string {
    return Buffer.from(this.decryptBytes(table, column, rowId, ciphertext)).toString('utf8')
  }

  /** True when the ciphertext was written under an older key term (rewrite it lazily). */
  isStale(ciphertext: string): boolean {
    return Number(ciphertext.slice(0, ciphertext.indexOf(':'))) !== this.#activeTerm
  }

  /** Keyed hash (HMAC-SHA256, hex) for values that are looked up but never stored: tokens. */
  hmac(purpose: string, value: string): string {
    const key = this.#hmacKey
    if (!key) throw sealedError()
    return createHmac('sha256', key).update(purpose).update('\0').update(value).digest('hex')
  }

  /** A key derived from the HMAC key for one purpose (audit salts, signing), stable across restarts. */
  deriveKey(purpose: string): Buffer {
    const key = this.#hmacKey
    if (!key) throw sealedError()
    return createHmac('sha256', key).update('derive\0').update(purpose).digest()
  }

  #require(): KeyringData {
    if (!this.#keyring) throw sealedError()
    return this.#keyring
  }
}

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
