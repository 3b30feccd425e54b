import { randomBytes } from 'node:crypto'
import type { Barrier } from '../core/barrier.js'
import { nowMs, type Storage } from '../storage/storage.js'
import { SECRET_OPTION_KEYS, type DeviceOptions } from './device.js'
import { generateSigningKey } from './signer.js'
import type { ChainState } from './chain.js'

declare module '../storage/tables.js' {
  interface Tables {
    audit_devices: AuditDeviceRow
  }
}

interface AuditDeviceRow {
  path: string
  type: string
  description: string
  /** JSON of the options that are not secret. */
  options: string
  /** Barrier ciphertext of the secret options' JSON (http headers), or null. */
  sealed_options: string | null
  local: number
  /** Barrier ciphertext of the 32-byte HMAC salt (base64). */
  salt: string
  /** Barrier ciphertext of the Ed25519 private key (PKCS#8 DER, base64). */
  signing_key: string
  public_key: string
  chain_seq: number
  chain_head: string
  created_at: number
}

const TABLE = 'audit_devices'

/** A device's configuration with its secrets opened. */
export interface StoredDevice {
  path: string
  type: string
  description: string
  options: DeviceOptions
  local: boolean
  salt: Uint8Array
  signingKey: string
  publicKey: string
  chain: ChainState
}

/** Persists audit devices; salts, signing keys and secret options are sealed by the barrier. */
export function createAuditStore(deps: { storage: Storage; barrier: Barrier }) {
  const { storage, barrier } = deps
  const db = storage.db

  function open(row: AuditDeviceRow): StoredDevice {
    const secret = row.sealed_options
      ? (JSON.parse(
          barrier.decrypt(TABLE, 'sealed_options', row.path, row.sealed_options),
        ) as DeviceOptions)
      : {}
    return {
      path: row.path,
      type: row.type,
      description: row.description,
      options: { ...(JSON.parse(row.options) as DeviceOptions), ...secret },
      local: row.local === 1,
      salt: Buffer.from(barrier.decrypt(TABLE, 'salt', row.path, row.salt), 'base64'),
      signingKey: barrier.decrypt(TABLE, 'signing_key', row.path, row.signing_key),
      publicKey: row.public_key,
      chain: { seq: Number(row.chain_seq), head: row.chain_head },
    }
  }

  return {
    async list(): Promise<StoredDevice[]> {
      const rows = await db.selectFrom(TABLE).selectAll().orderBy('path').execute()
      return rows.map(open)
    },

    async exists(path: string): Promise<boolean> {
      const row = await db
        .selectFrom(TABLE)
        .select('path')
        .where('path', '=', path)
        .executeTakeFirst()
      return row !== undefined
    },

    /** Creates a device with a fresh salt and signing key. */
    async create(input: {
      path: string
      type: string
      description: string
      options: DeviceOptions
      local: boolean
    }): Promise<StoredDevice> {
      const { path } = input
      const plain: DeviceOptions = {}
      const secret: DeviceOptions = {}
      for (const [k, v] of Object.entries(input.options))
        (SECRET_OPTION_KEYS.has(k) ? secret : plain)[k] = v
      const salt = randomBytes(32)
      const key = generateSigningKey()
      await db
        .insertInto(TABLE)
        .values({
          path,
          type: input.type,
          description: input.description,
          options: JSON.stringify(plain),
          sealed_options: Object.keys(secret).length
            ? barrier.encrypt(TABLE, 'sealed_options', path, JSON.stringify(secret))
            : null,
          local: input.local ? 1 : 0,
          salt: barrier.encrypt(TABLE, 'salt', path, salt.toString('base64')),
          signing_key: barrier.encrypt(TABLE, 'signing_key', path, key.privateKey),
          public_key: key.publicKey,
          chain_seq: 0,
          chain_head: '',
          created_at: nowMs(),
        })
        .execute()
      return {
        ...input,
        salt,
        signingKey: key.privateKey,
        publicKey: key.publicKey,
        chain: { seq: 0, head: '' },
      }
    },

    async remove(path: string): Promise<void> {
      await db.deleteFrom(TABLE).where('path', '=', path).execute()
    },

    /** Remembers the chain head at a checkpoint, so a restart on a fresh file still links. */
    async saveChain(path: string, chain: ChainState): Promise<void> {
      await db
        .updateTable(TABLE)
        .set({ chain_seq: chain.seq, chain_head: chain.head })
        .where('path', '=', path)
        .execute()
    },
  }
}

export type AuditStore = ReturnType<typeof createAuditStore>
