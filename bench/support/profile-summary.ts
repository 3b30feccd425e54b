import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Summarises `.cpuprofile` files (from `BENCH_CPU_PROF=<dir> npm run bench`): self time by
 * function and by source file, so the read path's cost can be read without DevTools.
 * Usage: `tsx bench/support/profile-summary.ts <dir> [top]`.
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const [dir, topArg] = process.argv.slice(2)
if (!dir) {
  console.error('usage: profile-summary.ts <dir> [top]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  )
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map<string, number>()
  const byFunction = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame
    const where = frame.url.replace(/^.*\/node_modules\//, 'npm:').replace(/^.*\/work\/main\//, '')
    const fn = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
    const key = where || frame.functionName
    byFile.set(key, (byFile.get(key) ?? 0) + us)
    // Inclusive time: every distinct function on the sampled stack gets the sample once.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)!.callFrame
      const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/node_modules\//, 'npm:').replace(/^.*\/work\/main\//, '')}:${f.lineNumber + 1}`
      if (seen.has(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + us)
    }
  }
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`)
    for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
    }
  }
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`)
  print('self time by file', byFile)
  print('self time by function', byFunction)
  print('inclusive time by function', inclusive)
}
