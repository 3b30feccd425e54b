import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestServer } from './server.js'

/** One parsed audit line (entries are free-form JSON). */

export type AuditLine = Record<string, any>

export interface FileAudit {
  /** Device path as enabled (`file/`). */
  path: string
  dir: string
  filePath: string
  publicKey: string
  /** Parsed lines of the current file (checkpoints included). */
  lines(): AuditLine[]
  /** Request/response entries only. */
  entries(): AuditLine[]
  /** Makes the file unwritable, even for root: its directory becomes a regular file, then SIGHUP. */
  breakDevice(): Promise<void>
  /** Puts the directory back; the device reopens on its next entry. */
  fixDevice(): void
}

/**
 * Enables a file audit device on a test server, with helpers to read its entries and to make it
 * fail (for fail-closed tests: the request must be refused and change nothing).
 */
export async function enableFileAudit(
  server: TestServer,
  options: { path?: string; dir?: string; extra?: Record<string, string> } = {},
): Promise<FileAudit> {
  const dir = options.dir ?? join(mkdtempSync(join(tmpdir(), 'stint-audit-')), 'logs')
  const filePath = join(dir, 'audit.log')
  const path = options.path ?? 'file'
  const res = await server.call('PUT', `sys/audit/${path}`, {
    body: { type: 'file', options: { file_path: filePath, ...options.extra } },
  })
  if (res.status !== 204)
    throw new Error(`enabling the audit device failed: ${JSON.stringify(res.body)}`)
  const key = await server.call('GET', `sys/audit/${path}/public-key`)
  const read = () =>
    readFileSync(filePath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditLine)
  return {
    path: `${path}/`,
    dir,
    filePath,
    publicKey: key.body.data.public_key,
    lines: read,
    entries: () => read().filter((e) => e.type !== 'checkpoint'),
    async breakDevice() {
      renameSync(dir, `${dir}.broken-${Date.now()}`)
      writeFileSync(dir, 'not a directory')
      process.emit('SIGHUP')
      await new Promise((r) => setTimeout(r, 20))
    },
    fixDevice() {
      rmSync(dir, { force: true })
      mkdirSync(dir, { recursive: true })
    },
  }
}
