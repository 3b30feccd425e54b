import { createRequire } from 'node:module'
import type sodiumType from 'libsodium-wrappers'

// libsodium-wrappers' ESM build points at a file it does not ship; its CommonJS build works.
const sodium = createRequire(import.meta.url)('libsodium-wrappers') as typeof sodiumType

let ready: Promise<typeof sodiumType> | undefined

/** Resolves once libsodium's WebAssembly is loaded. */
export function loadSodium(): Promise<typeof sodiumType> {
  ready ??= sodium.ready.then(() => sodium)
  return ready
}
