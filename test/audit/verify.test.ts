import { describe, expect, it } from 'vitest'
import { chainLine, checkpointEntry, GENESIS, type ChainState } from '../../src/audit/chain.js'
import { createAuditSigner, generateSigningKey } from '../../src/audit/signer.js'
import { verifyAuditLog } from '../../src/audit/verify.js'

const key = generateSigningKey()
const signer = createAuditSigner(key.privateKey)

/** A closed log: open checkpoint, `n` request entries, close checkpoint. Line k+1 is entry k. */
function buildLog(n: number, start: ChainState = GENESIS): { lines: string[]; state: ChainState } {
  const lines: string[] = []
  let state = start
  const push = (entry: Record<string, unknown>) => {
    const next = chainLine(entry, state, signer)
    lines.push(next.line)
    state = next.state
  }
  push(checkpointEntry('open', state, signer))
  for (let i = 1; i <= n; i++)
    push({ type: 'request', request: { id: `req-${i}`, path: `secret/data/${i}` } })
  push(checkpointEntry('close', state, signer))
  return { lines, state }
}

const verify = (lines: string[], pub = key.publicKey) =>
  verifyAuditLog([{ name: 'audit.log', lines }], pub)

describe('verifyAuditLog', () => {
  it('passes an intact log and counts its entries and checkpoints', () => {
    const result = verify(buildLog(5).lines)
    expect(result).toMatchObject({ ok: true, entries: 5, checkpoints: 2, warnings: [] })
  })

  it('reports the line where one byte of an entry was changed', () => {
    const { lines } = buildLog(5)
    lines[3] = lines[3]!.replace('secret/data/3', 'secret/data/4')
    expect(verify(lines).problem).toMatchObject({
      line: 4,
      reason: expect.stringContaining('signature'),
    })
  })

  it('reports the line after a deleted entry', () => {
    const { lines } = buildLog(5)
    lines.splice(2, 1)
    expect(verify(lines).problem).toMatchObject({
      line: 3,
      reason: expect.stringContaining('deleted'),
    })
  })

  it('reports the first of two swapped entries', () => {
    const { lines } = buildLog(5)
    ;[lines[2], lines[3]] = [lines[3]!, lines[2]!]
    expect(verify(lines).problem?.line).toBe(3)
  })

  it('reports a forged entry appended at the end, even with correct seq and prev_hash', () => {
    const { lines, state } = buildLog(3)
    const forger = createAuditSigner(generateSigningKey().privateKey)
    lines.push(chainLine({ type: 'request', request: { id: 'forged' } }, state, forger).line)
    expect(verify(lines).problem).toMatchObject({
      line: 6,
      reason: expect.stringContaining('forged'),
    })
  })

  it('reports an inserted unsigned line', () => {
    const { lines } = buildLog(3)
    lines.splice(2, 0, JSON.stringify({ type: 'request', request: { id: 'x' } }))
    expect(verify(lines).problem?.line).toBe(3)
  })

  it('reports a file whose first entries were cut', () => {
    const { lines } = buildLog(3)
    expect(verify(lines.slice(2)).problem).toMatchObject({
      line: 1,
      reason: expect.stringContaining('open checkpoint'),
    })
  })

  it('warns, without failing, when the log does not end with a close checkpoint', () => {
    const { lines } = buildLog(3)
    const result = verify(lines.slice(0, -1))
    expect(result.ok).toBe(true)
    expect(result.warnings.join()).toContain('close checkpoint')
  })

  it('verifies rotated files alone and as a sequence, and catches a missing file', () => {
    const first = buildLog(2)
    const second = buildLog(2, first.state)
    const third = buildLog(2, second.state)
    const files = [first, second, third].map((f, i) => ({ name: `audit.log.${i}`, lines: f.lines }))
    for (const f of files) expect(verifyAuditLog([f], key.publicKey).ok).toBe(true)
    expect(verifyAuditLog(files, key.publicKey).ok).toBe(true)
    const gap = verifyAuditLog([files[0]!, files[2]!], key.publicKey)
    expect(gap.problem).toMatchObject({ file: 'audit.log.2', line: 1 })
  })

  it('rejects a log signed by another key', () => {
    const other = generateSigningKey().publicKey
    expect(verify(buildLog(1).lines, other).problem?.line).toBe(1)
  })

  it('falls back to the key written in the log, with a warning, when none is given', () => {
    const result = verifyAuditLog([{ name: 'a', lines: buildLog(2).lines }])
    expect(result.ok).toBe(true)
    expect(result.warnings.join()).toContain('no -key')
  })
})
