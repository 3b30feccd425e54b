import type { KeyObject } from 'node:crypto'
import { splitLine } from './chain.js'
import { parsePublicKey, verifySignature } from './signer.js'

/** One log file's lines, in the order written. */
export interface LogFile {
  name: string
  lines: string[]
}

export interface VerifyProblem {
  file: string
  /** 1-based line number inside `file`. */
  line: number
  reason: string
}

export interface VerifyResult {
  ok: boolean
  /** The first problem found; verification stops there. */
  problem?: VerifyProblem
  entries: number
  checkpoints: number
  /** Things that are not proof of tampering (a live log's unsigned tail, a key taken from the log). */
  warnings: string[]
}

/**
 * Verifies audit files as one sequence (pass rotated files oldest first). Pure: no I/O.
 *
 * Reports the first line that was edited or forged (bad JSON or signature), or where an entry was
 * deleted, reordered or inserted (`seq`/`prev_hash` links break). Each file must begin with an
 * `open` checkpoint; a file that does not end with a `close` checkpoint gets a warning (it is
 * still being written, or its tail was cut).
 *
 * `publicKey` is the device's `ed25519:<base64url>` key from `GET sys/audit/<path>/public-key`;
 * without it the key named by the first checkpoint is used and a warning says so.
 */
export function verifyAuditLog(files: LogFile[], publicKey?: string | KeyObject): VerifyResult {
  const warnings: string[] = []
  let key: KeyObject | undefined
  if (publicKey) key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey
  let prev: { seq: number; hash: string } | undefined
  let entries = 0
  let checkpoints = 0
  const fail = (file: string, line: number, reason: string): VerifyResult => ({
    ok: false,
    problem: { file, line, reason },
    entries,
    checkpoints,
    warnings,
  })

  for (const file of files) {
    const lines = file.lines.at(-1) === '' ? file.lines.slice(0, -1) : file.lines
    if (lines.length === 0) return fail(file.name, 1, 'file is empty')
    let lastType = ''
    for (let i = 0; i < lines.length; i++) {
      const n = i + 1
      const text = lines[i]!.replace(/\r$/, '')
      const parts = splitLine(text)
      let entry: Record<string, unknown>
      try {
        if (!parts) throw new Error('unsigned')
        entry = JSON.parse(parts.body) as Record<string, unknown>
      } catch {
        return fail(file.name, n, 'entry is not a signed audit line (edited or inserted)')
      }
      if (!key) {
        if (entry.type !== 'checkpoint' || typeof entry.public_key !== 'string') {
          return fail(
            file.name,
            n,
            'no public key given and the log does not start with a checkpoint',
          )
        }
        key = parsePublicKey(entry.public_key)
        warnings.push('no -key given: trusted the public key written in the log itself')
      }
      if (!verifySignature(key, parts!.hash, parts!.sig)) {
        return fail(file.name, n, 'signature does not match (entry edited or forged)')
      }
      const seq = entry.seq
      const prevHash = entry.prev_hash
      if (typeof seq !== 'number' || typeof prevHash !== 'string') {
        return fail(file.name, n, 'entry has no seq/prev_hash')
      }
      if (i === 0 && !(entry.type === 'checkpoint' && entry.reason === 'open')) {
        return fail(
          file.name,
          n,
          'file does not begin with an open checkpoint (entries deleted at its start?)',
        )
      }
      if (prev) {
        if (seq > prev.seq + 1) {
          return fail(
            file.name,
            n,
            `expected entry #${prev.seq + 1} but found #${seq}: entries deleted or reordered before this line`,
          )
        }
        if (seq <= prev.seq) {
          return fail(
            file.name,
            n,
            `entry #${seq} after #${prev.seq}: entries reordered or duplicated`,
          )
        }
        if (prevHash !== prev.hash) {
          return fail(file.name, n, 'entry does not link to the previous one (chain broken)')
        }
      }
      if (entry.type === 'checkpoint') {
        checkpoints++
        if (entry.chain_hash !== prevHash || entry.chain_seq !== seq - 1) {
          return fail(file.name, n, 'checkpoint does not match the chain')
        }
      } else {
        entries++
      }
      lastType =
        entry.type === 'checkpoint' ? `checkpoint:${String(entry.reason)}` : String(entry.type)
      prev = { seq, hash: parts!.hash }
    }
    if (lastType !== 'checkpoint:close') {
      warnings.push(
        `${file.name}: does not end with a close checkpoint (still open, or its tail was cut)`,
      )
    }
  }
  return { ok: true, entries, checkpoints, warnings }
}

/** Splits file text into lines for `verifyAuditLog`. */
export function toLogFile(name: string, text: string): LogFile {
  return { name, lines: text.split('\n') }
}
