import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto'

/** Prefix of an exported audit public key: `ed25519:<base64url of the 32 raw bytes>`. */
export const PUBLIC_KEY_PREFIX = 'ed25519:'

/** Signs chain hashes with a device's Ed25519 key (node:crypto; never hand-written). */
export interface AuditSigner {
  /** `ed25519:<base64url>`: what `stint audit verify -key=...` takes. */
  publicKey: string
  /** Detached signature (base64url) over the bytes of a hex chain hash. */
  sign(hashHex: string): string
}

/** A new key pair; `privateKey` is PKCS#8 DER as base64, to be sealed by the barrier. */
export function generateSigningKey(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return {
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
    publicKey: exportPublicKey(publicKey),
  }
}

export function createAuditSigner(privateKeyDer: string): AuditSigner {
  const key = createPrivateKey({
    key: Buffer.from(privateKeyDer, 'base64'),
    format: 'der',
    type: 'pkcs8',
  })
  const publicKey = exportPublicKey(createPublicKey(key))
  return {
    publicKey,
    sign: (hashHex) => sign(null, Buffer.from(hashHex, 'hex'), key).toString('base64url'),
  }
}

function exportPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' })
  return PUBLIC_KEY_PREFIX + String(jwk.x)
}

/** Parses `ed25519:<base64url>` (or bare base64url/base64); throws on anything else. */
export function parsePublicKey(text: string): KeyObject {
  const raw = text.trim().replace(/^ed25519:/, '')
  const bytes = Buffer.from(
    raw.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
    'base64url',
  )
  if (bytes.length !== 32) throw new Error('audit public key must be 32 bytes of Ed25519 key')
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') },
    format: 'jwk',
  })
}

/** Checks a detached signature made by `AuditSigner.sign`. */
export function verifySignature(key: KeyObject, hashHex: string, sigB64url: string): boolean {
  try {
    return verify(null, Buffer.from(hashHex, 'hex'), key, Buffer.from(sigB64url, 'base64url'))
  } catch {
    return false
  }
}
