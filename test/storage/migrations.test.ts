import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { migrations } from '../../schema/index.js'

const schemaDir = join(dirname(fileURLToPath(import.meta.url)), '../../schema')
const files = readdirSync(schemaDir)
  .filter((f) => /^\d{4}-.+\.ts$/.test(f))
  .map((f) => f.replace(/\.ts$/, ''))
  .sort()

describe('schema migrations', () => {
  it('lists every schema/NNNN-*.ts file, and nothing else', () => {
    expect(files.length).toBeGreaterThan(0)
    expect(migrations.map((m) => m.name).sort()).toEqual(files)
  })

  it('keeps the list in file order', () => {
    const names = migrations.map((m) => m.name)
    expect(names).toEqual([...names].sort())
  })

  it('uses each number and each name once', () => {
    const numbers = files.map((f) => f.slice(0, 4))
    expect(new Set(numbers).size).toBe(numbers.length)
    const names = migrations.map((m) => m.name)
    expect(new Set(names).size).toBe(names.length)
  })

  it('wires each entry to the up function of the file with the same name', async () => {
    for (const m of migrations) {
      const mod = (await import(`../../schema/${m.name}.ts`)) as { up: unknown }
      expect(m.up, m.name).toBe(mod.up)
    }
  })

  it('exports an up function from every migration', () => {
    for (const m of migrations) expect(typeof m.up, m.name).toBe('function')
  })
})
