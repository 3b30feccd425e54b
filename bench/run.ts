/**
 * Runs the benchmarks: all of them in order (`npm run bench`), or the ones named
 * (`npm run bench -- kv-read`). To add one, write `bench/<name>.ts` exporting `run()` and add a
 * line to `benchmarks`.
 */
export interface Benchmark {
  name: string
  load: () => Promise<{ run(): Promise<void> }>
}

export const benchmarks: Benchmark[] = [
  { name: 'kv-read', load: () => import('./kv-read.js') },
  { name: 'lease-expiry', load: () => import('./lease-expiry.js') },
  { name: 'startup', load: () => import('./startup.js') },
  { name: 'issuance', load: () => import('./issuance.js') },
  { name: 'cli-start', load: () => import('./cli-start.js') },
]

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((n) => !benchmarks.some((b) => b.name === n))
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}`,
    )
    process.exit(2)
  }
  const selected = names.length > 0 ? benchmarks.filter((b) => names.includes(b.name)) : benchmarks
  for (const bench of selected) {
    const started = Date.now()
    await (await bench.load()).run()
    console.log(`${bench.name} finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
