#!/usr/bin/env node
import { existsSync } from 'node:fs'
import { URL } from 'node:url'

// Runs the compiled CLI, dist/ (`npm run build`; `npm ci` builds it through `prepare`). A checkout
// that has not been built yet falls back to the TypeScript source through tsx, a development
// dependency, so `npm link` works before the first build; `npm run dev` always runs the source.
const built = new URL('../dist/src/cli/main.js', import.meta.url)
if (existsSync(built)) {
  await import(built.href)
} else {
  const tsx = await import('tsx/esm/api').catch(() => undefined)
  if (!tsx) {
    console.error('stint: dist/ is missing and tsx is not installed: run `npm run build`')
    process.exit(1)
  }
  tsx.register()
  await import('../src/cli/main.ts')
}
