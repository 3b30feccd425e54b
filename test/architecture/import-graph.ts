import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Every source file under src/, plugins/ and schema/, with the repository files it imports statically. */
export interface ImportGraph {
  /** `src/core/core.ts` → [`src/core/errors.ts`, …] (paths relative to the repository). */
  files: Map<string, string[]>
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

// `import … from '…'`, `export … from '…'` and `import '…'`, type-only ones included, at the start
// of a line (import-shaped text inside template strings, as in worker sources, is not an import).
// Dynamic `import()` is lazy loading and not an edge of the static graph.
const STATIC_IMPORT = /^\s*(?:import|export)\s(?:[^'"`;]*?\sfrom\s)?\s*['"]([^'"]+)['"]/gm

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`
    if (entry.isDirectory()) walk(path, out)
    else if (/\.ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path)
  }
}

/** Reads the tree as it is on disk now. */
export function importGraph(): ImportGraph {
  const sources: string[] = []
  walk('src', sources)
  walk('plugins', sources)
  walk('schema', sources)
  const files = new Map<string, string[]>()
  for (const file of sources) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const targets: string[] = []
    for (const m of text.matchAll(STATIC_IMPORT)) {
      const spec = m[1]!
      if (!spec.startsWith('.')) continue
      const resolved = relative(ROOT, normalize(join(ROOT, dirname(file), spec)))
      targets.push(resolved.replace(/\.js$/, '.ts'))
    }
    files.set(file, targets)
  }
  return { files }
}

/** The top folder of a file under src/ (`src/core/policy/acl.ts` → `core`), or its root. */
function layerOf(file: string): string {
  const parts = file.split('/')
  if (parts[0] !== 'src') return parts[0]!
  return parts.length > 2 ? parts[1]! : parts[1]!.replace(/\.ts$/, '')
}

/**
 * The layers, bottom first: a module imports only its own folder and folders of a lower rank.
 * `server/` is the composition root (it wires everything); `cli/` is a client of the HTTP API.
 */
const RANK: Record<string, number> = {
  crypto: 0,
  version: 0,
  schema: 0,
  storage: 1,
  core: 2,
  plugins: 1,
  observability: 3,
  identity: 3,
  audit: 3,
  auth: 4,
  engines: 4,
  access: 5,
  http: 6,
  server: 7,
  cli: 8,
}
/** What the CLI may import statically besides itself: nothing of the server side. */
const CLI_MAY_IMPORT = new Set(['cli', 'version'])

/**
 * Every broken rule, as one sentence each:
 * - a module imports nothing from a layer at or above its own rank (see `RANK`): `src/core`
 *   knows no auth method, engine, audit, access, transport or metrics; `src/storage` and
 *   `src/crypto` know nothing of the core;
 * - `plugins/` import nothing of `src/` (a plugin knows its target and the contract), nor do
 *   the migrations in `schema/`;
 * - `src/cli` imports nothing of the server side statically (commands that run server code load
 *   it lazily with `import()`, so every other command starts without it);
 * - no import cycle, between any files.
 */
export function findViolations(graph: ImportGraph): string[] {
  const found: string[] = []
  for (const [from, targets] of graph.files) {
    const fromLayer = layerOf(from)
    for (const to of targets) {
      const toLayer = layerOf(to)
      if (toLayer === fromLayer) continue
      if (from.startsWith('schema/')) {
        if (to.startsWith('src/')) found.push(`schema/ (${from}) must not import src/ (${to})`)
        continue
      }
      if (from.startsWith('plugins/')) {
        if (to.startsWith('src/')) found.push(`plugins/ (${from}) must not import src/ (${to})`)
        continue
      }
      if (fromLayer === 'cli') {
        if (!CLI_MAY_IMPORT.has(toLayer)) {
          found.push(`src/cli (${from}) must not import the server side statically (${to})`)
        }
        continue
      }
      const up = RANK[toLayer] ?? Infinity
      if (up >= (RANK[fromLayer] ?? -1)) {
        found.push(`src/${fromLayer} (${from}) must not import src/${toLayer} (${to})`)
      }
    }
  }
  for (const cycle of cycles(graph)) found.push(`import cycle: ${cycle.join(' -> ')}`)
  return found
}

/** Strongly connected components of more than one file (or a file importing itself). */
function cycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const result: string[][] = []
  let next = 0
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.files.get(v) ?? []) {
      if (!graph.files.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!))
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      const selfLoop = (graph.files.get(v) ?? []).includes(v)
      if (component.length > 1 || selfLoop) result.push(component.sort())
    }
  }
  for (const v of [...graph.files.keys()].sort()) if (!index.has(v)) visit(v)
  return result
}
