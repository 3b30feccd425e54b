import { randomBytes } from 'node:crypto'
import { loadSodium } from './sodium.js'

const sodium = await loadSodium()

export const KEY_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
const NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

/** A fresh random key for XChaCha20-Poly1305. */
export function generateKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES))
}

/**
 * Encrypts with XChaCha20-Poly1305 (libsodium). Returns nonce || ciphertext.
 * Nonces come from node:crypto: libsodium-wrappers' own randombytes_buf is ~20x slower per call.
 */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES)
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key)
  const out = new Uint8Array(NONCE_BYTES + ct.length)
  out.set(nonce, 0)
  out.set(ct, NONCE_BYTES)
  return out
}

/** Decrypts nonce || ciphertext; throws if the key, the data or the associated data differ. */
export function open(key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array {
  if (sealed.length < NONCE_BYTES + 16) throw new Error('ciphertext too short')
  return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
    null,
    sealed.subarray(NONCE_BYTES),
    aad,
    sealed.subarray(0, NONCE_BYTES),
    key,
  )
}
