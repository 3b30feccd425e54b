import { randomUUID } from 'node:crypto'
import { split, combine } from 'shamir-secret-sharing'
import * as aead from '../crypto/aead.js'
import { ApiError, badRequest } from './errors.js'
import { Barrier, newKeyring, type KeyringData } from './barrier.js'
import type { Storage } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    stint_meta: { key: string; value: string }
  }
}

export interface SealConfig {
  type: 'shamir' | 'static'
  secretShares: number
  secretThreshold: number
}

export interface SealStatus {
  type: string
  initialized: boolean
  sealed: boolean
  t: number
  n: number
  progress: number
  nonce: string
}

export interface InitResult {
  /** Unseal key shares (empty with a static/auto-unseal key). */
  keys: Uint8Array[]
  /** Runs with the barrier open, then the server is sealed again (or stays open for dev). */
  rootKey: Uint8Array
}

const ROOT_KEY_AAD = 'stint_meta:value:root_key'
const KEYRING_AAD = 'stint_meta:value:keyring'

/**
 * Initialisation, unsealing and sealing.
 *
 * Key hierarchy: the unseal key (split with Shamir into shares, or given as a static
 * auto-unseal key) encrypts the root key; the root key encrypts the keyring; the keyring's data
 * keys encrypt every sensitive column. Only ciphertext is stored.
 */
export class SealManager {
  readonly barrier = new Barrier()
  #storage: Storage
  #staticKey: Uint8Array | undefined
  #shares: Uint8Array[] = []
  #nonce = ''
  #config: SealConfig | undefined
  #rootKey: Uint8Array | undefined
  #onUnseal: Array<() => Promise<void>> = []
  #onSeal: Array<() => Promise<void>> = []

  constructor(deps: { storage: Storage; staticKey?: Uint8Array }) {
    this.#storage = deps.storage
    this.#staticKey = deps.staticKey
  }

  /** Registers work to run right after unseal (load mounts, start workers) and before seal. */
  hooks(onUnseal: () => Promise<void>, onSeal: () => Promise<void>): void {
    this.#onUnseal.push(onUnseal)
    this.#onSeal.push(onSeal)
  }

  get sealed(): boolean {
    return this.barrier.sealed
  }

  async config(): Promise<SealConfig | undefined> {
    if (this.#config) return this.#config
    const row = await this.#meta('seal_config')
    if (row) this.#config = JSON.parse(row) as SealConfig
    return this.#config
  }

  async initialized(): Promise<boolean> {
    return (await this.config()) !== undefined
  }

  async status(): Promise<SealStatus> {
    const config = await this.config()
    return {
      type: config?.type ?? (this.#staticKey ? 'static' : 'shamir'),
      initialized: config !== undefined,
      sealed: this.sealed,
      t: config?.secretThreshold ?? 0,
      n: config?.secretShares ?? 0,
      progress: this.#shares.length,
      nonce: this.#nonce,
    }
  }

  /**
   * Creates the root key and keyring. With shares, returns the unseal key shares; with a static
   * key, none. The barrier is left open so the caller can create the root token, then seals it
   * unless `keepUnsealed`.
   */
  async initialize(
    shares: number,
    threshold: number,
    withOpenBarrier: (rootKey: Uint8Array) => Promise<void>,
    keepUnsealed = false,
  ): Promise<Uint8Array[]> {
    if (await this.initialized()) throw badRequest('Vault is already initialized')
    const isStatic = this.#staticKey !== undefined
    if (!isStatic) {
      if (!Number.isInteger(shares) || shares < 1 || shares > 255)
        throw badRequest('secret_shares must be between 1 and 255')
      if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares)
        throw badRequest('secret_threshold must be between 1 and secret_shares')
      if (shares > 1 && threshold < 2)
        throw badRequest('secret_threshold must be greater than one for multiple shares')
    }
    const unsealKey = this.#staticKey ?? aead.generateKey()
    const rootKey = aead.generateKey()
    const keyring = newKeyring()
    const config: SealConfig = isStatic
      ? { type: 'static', secretShares: 0, secretThreshold: 0 }
      : { type: 'shamir', secretShares: shares, secretThreshold: threshold }

    this.barrier.load(keyring)
    this.#rootKey = rootKey
    try {
      await withOpenBarrier(rootKey)
      await this.#storage.db.transaction().execute(async (tx) => {
        await tx
          .insertInto('stint_meta')
          .values([
            { key: 'root_key', value: b64(aead.seal(unsealKey, rootKey, ROOT_KEY_AAD)) },
            { key: 'keyring', value: b64(aead.seal(rootKey, json(keyring), KEYRING_AAD)) },
            { key: 'seal_config', value: JSON.stringify(config) },
          ])
          .execute()
      })
    } catch (err) {
      this.barrier.unload()
      throw err
    }
    this.#config = config
    if (keepUnsealed) {
      await this.#runUnsealHooks()
    } else {
      this.barrier.unload()
      this.#rootKey = undefined
    }
    if (isStatic) return []
    if (shares === 1) return [unsealKey]
    return split(unsealKey, shares, threshold)
  }

  /** Adds one key share; unseals once the threshold is reached. */
  async submitShare(encoded: string): Promise<SealStatus> {
    const config = await this.config()
    if (!config) throw badRequest('Vault is not initialized')
    if (!this.sealed) throw badRequest('vault is unsealed')
    if (config.type === 'static') throw badRequest('this server unseals with its configured key')
    const share = decodeShare(encoded)
    const expected = config.secretShares === 1 ? aead.KEY_BYTES : aead.KEY_BYTES + 1
    if (share.length !== expected) throw badRequest('invalid key: wrong length')
    if (this.#shares.some((s) => Buffer.from(s).equals(share))) {
      throw badRequest('given key has already been provided during this unseal operation')
    }
    if (this.#shares.length === 0) this.#nonce = randomUUID()
    this.#shares.push(share)
    if (this.#shares.length < config.secretThreshold) return this.status()

    // Take the shares out of the progress state first: a failed attempt starts over.
    const given = this.#shares
    this.#shares = []
    this.#nonce = ''
    try {
      let unsealKey: Uint8Array
      try {
        unsealKey = given.length === 1 ? Uint8Array.from(given[0]!) : await combine(given)
      } catch {
        throw badRequest('invalid key: the shares could not be combined')
      }
      await this.#openWith(unsealKey)
      unsealKey.fill(0)
    } finally {
      for (const s of given) s.fill(0)
    }
    return this.status()
  }

  resetProgress(): void {
    for (const s of this.#shares) s.fill(0)
    this.#shares = []
    this.#nonce = ''
  }

  /** Unseals with the static (auto-unseal) key, if one is configured and storage is initialised. */
  async autoUnseal(): Promise<boolean> {
    if (!this.#staticKey || !(await this.initialized()) || !this.sealed) return false
    await this.#openWith(this.#staticKey)
    return true
  }

  async seal(): Promise<void> {
    if (this.sealed) return
    for (const hook of this.#onSeal) await hook()
    this.barrier.unload()
    this.#rootKey?.fill(0)
    this.#rootKey = undefined
  }

  /** Adds a data key (sys/rotate) and persists the keyring. */
  async rotate(): Promise<void> {
    const keyring = this.barrier.rotate()
    await this.#saveKeyring(keyring)
  }

  async #openWith(unsealKey: Uint8Array): Promise<void> {
    const sealedRoot = await this.#meta('root_key')
    const sealedRing = await this.#meta('keyring')
    if (!sealedRoot || !sealedRing) throw new ApiError(500, 'storage is missing the sealed keys')
    let rootKey: Uint8Array
    try {
      rootKey = aead.open(unsealKey, Buffer.from(sealedRoot, 'base64'), ROOT_KEY_AAD)
    } catch {
      throw badRequest('invalid key: unable to decrypt the root key with the given key')
    }
    const ring = aead.open(rootKey, Buffer.from(sealedRing, 'base64'), KEYRING_AAD)
    this.barrier.load(JSON.parse(Buffer.from(ring).toString('utf8')) as KeyringData)
    this.#rootKey = rootKey
    await this.#runUnsealHooks()
  }

  async #runUnsealHooks(): Promise<void> {
    try {
      for (const hook of this.#onUnseal) await hook()
    } catch (err) {
      this.barrier.unload()
      throw err
    }
  }

  async #saveKeyring(keyring: KeyringData): Promise<void> {
    if (!this.#rootKey) throw new ApiError(503, 'Vault is sealed')
    await this.#storage.db
      .updateTable('stint_meta')
      .set({ value: b64(aead.seal(this.#rootKey, json(keyring), KEYRING_AAD)) })
      .where('key', '=', 'keyring')
      .execute()
  }

  async #meta(key: string): Promise<string | undefined> {
    const row = await this.#storage.db
      .selectFrom('stint_meta')
      .select('value')
      .where('key', '=', key)
      .executeTakeFirst()
    return row?.value
  }
}

/** A share is hex if it parses as hex, else base64 (as Vault decodes keys). */
export function decodeShare(encoded: string): Uint8Array {
  const text = String(encoded).trim()
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0)
    return new Uint8Array(Buffer.from(text, 'hex'))
  if (/^[A-Za-z0-9+/]+=*$/.test(text)) return new Uint8Array(Buffer.from(text, 'base64'))
  throw badRequest('invalid key: not hex or base64')
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')
const json = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8')
