import { createHash } from 'node:crypto'
import type { AuditSigner } from './signer.js'

/**
 * The hash chain of one audit device.
 *
 * Every line is `{...entry, "seq": n, "prev_hash": "<hex>", "sig": "<base64url>"}` where
 * `prev_hash` is the chain hash of the line before, the line's own chain hash is SHA-256 of the
 * line's text without its trailing `,"sig":"..."` member, and `sig` is the device's Ed25519
 * signature over that hash. So an edited, inserted or forged line fails its signature, and a
 * deleted or reordered one breaks the `seq`/`prev_hash` links. Checkpoint lines
 * (`{"type":"checkpoint","reason":"open"|"interval"|"close","chain_hash":...}`) mark where a file
 * starts and ends, so truncation at either end of a closed file shows.
 */
export interface ChainState {
  /** Sequence number of the last line written (0 before any). */
  seq: number
  /** Chain hash of the last line written ('' before any). */
  head: string
}

export type CheckpointReason = 'open' | 'interval' | 'close'

export const GENESIS: ChainState = { seq: 0, head: '' }

/** Appends `seq`, `prev_hash` and the signature; returns the line and the state after it. */
export function chainLine(
  entry: Record<string, unknown>,
  state: ChainState,
  signer: AuditSigner,
): { line: string; state: ChainState } {
  const seq = state.seq + 1
  const body = JSON.stringify({ ...entry, seq, prev_hash: state.head })
  const hash = sha256Hex(body)
  const line = `${body.slice(0, -1)},"sig":"${signer.sign(hash)}"}`
  return { line, state: { seq, head: hash } }
}

/** A checkpoint entry that vouches for the chain up to `state`. */
export function checkpointEntry(
  reason: CheckpointReason,
  state: ChainState,
  signer: AuditSigner,
  now = new Date(),
): Record<string, unknown> {
  return {
    time: now.toISOString(),
    type: 'checkpoint',
    reason,
    chain_seq: state.seq,
    chain_hash: state.head,
    public_key: signer.publicKey,
  }
}

/** Splits a chained line into its signed body, hash and signature; undefined when malformed. */
export function splitLine(line: string): { body: string; hash: string; sig: string } | undefined {
  const m = /,"sig":"([A-Za-z0-9_-]+)"\}$/.exec(line)
  if (!m) return undefined
  const body = `${line.slice(0, m.index)}}`
  return { body, hash: sha256Hex(body), sig: m[1]! }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}
