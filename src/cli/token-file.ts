import { chmod, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The file `stint login` keeps the token in (`~/.stint-token`, mode 0600). */
export function tokenFilePath(home: string): string {
  return join(home, '.stint-token')
}

/** The stored token, or undefined when there is none. */
export async function readTokenFile(home: string): Promise<string | undefined> {
  try {
    const token = (await readFile(tokenFilePath(home), 'utf8')).trim()
    return token || undefined
  } catch {
    return undefined
  }
}

/** Stores a token readable by the owner only (also tightening an existing file's mode). */
export async function writeTokenFile(home: string, token: string): Promise<void> {
  const path = tokenFilePath(home)
  await writeFile(path, token, { mode: 0o600 })
  await chmod(path, 0o600)
}

export async function removeTokenFile(home: string): Promise<void> {
  await rm(tokenFilePath(home), { force: true })
}
