import { describe, expect, it } from 'vitest'
import { findViolations, importGraph, type ImportGraph } from './import-graph.js'

/**
 * The layering rules of docs/architecture.md, checked on the real source tree: every relative
 * import of every file under src/ and plugins/ (type-only imports count too: a type that points
 * up still couples the layers). A rule broken here names the file and the import.
 */
const graph = importGraph()

describe('layering (docs/architecture.md)', () => {
  it('reads the whole tree', () => {
    expect(graph.files.size).toBeGreaterThan(100)
    expect(graph.files.has('src/core/core.ts')).toBe(true)
    expect(graph.files.has('plugins/contract.ts')).toBe(true)
  })

  it('breaks none of the rules', () => {
    expect(findViolations(graph)).toEqual([])
  })

  it('catches a deliberately added violating import of each kind, and a cycle', () => {
    const withExtra = (from: string, to: string): ImportGraph => {
      const files = new Map(graph.files)
      files.set(from, [...(files.get(from) ?? []), to])
      return { files }
    }
    const cases: Array<[string, string, RegExp]> = [
      ['src/core/core.ts', 'src/access/service.ts', /src\/core .* must not import src\/access/],
      ['src/core/tokens.ts', 'src/observability/metrics.ts', /must not import src\/observability/],
      ['src/core/mounts.ts', 'src/engines/kv/index.ts', /must not import src\/engines/],
      ['src/core/seal.ts', 'src/http/api.ts', /must not import src\/http/],
      ['plugins/postgres/plugin.ts', 'src/core/sanitize.ts', /plugins\/ .* must not import src\//],
      ['src/cli/commands/kv.ts', 'src/core/policy/parse.ts', /src\/cli .* server side/],
      ['src/storage/storage.ts', 'src/core/errors.ts', /src\/storage .* must not import src\/core/],
      ['src/crypto/aead.ts', 'src/core/barrier.ts', /src\/crypto .* must not import src\/core/],
      [
        'src/identity/fields.ts',
        'src/auth/token-fields.ts',
        /src\/identity .* must not import src\/auth/,
      ],
      [
        'src/audit/install.ts',
        'src/engines/sys/audit.ts',
        /src\/audit .* must not import src\/engines/,
      ],
    ]
    for (const [from, to, message] of cases) {
      const found = findViolations(withExtra(from, to))
      expect(
        found.some((v) => message.test(v)),
        `${from} -> ${to}: ${found.join('; ')}`,
      ).toBe(true)
    }
    // A cycle between two files that are otherwise allowed to import each other's layer.
    const cyclic = withExtra('src/core/errors.ts', 'src/core/core.ts')
    expect(findViolations(cyclic).some((v) => v.startsWith('import cycle:'))).toBe(true)
  })

  it('lets the CLI load the server only through its server command, lazily', () => {
    const serverCommand = graph.files.get('src/cli/commands/server.ts') ?? []
    expect(serverCommand.filter((to) => to.startsWith('src/server/'))).toEqual([])
  })
})
