import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { TargetInfo } from './target.js'

const TARGET = fileURLToPath(new URL('./target.ts', import.meta.url))

export interface RunningTarget extends TargetInfo {
  /** CPU time (user + system, µs) the target process has used so far. */
  cpuUs(): Promise<number>
  /** Stops the target and waits for it to exit (and write its CPU profile, if any). */
  stop(): Promise<void>
}

/**
 * Starts a benchmark target in a child process. With `cpuProfDir`, the child runs under
 * `node --cpu-prof` and writes a `.cpuprofile` there when it stops.
 */
export async function startTarget(
  kind: 'hello' | 'floor' | 'stint',
  options: { cpuProfDir?: string; experiments?: string } = {},
): Promise<RunningTarget> {
  const flags = options.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`] : []
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', TARGET, kind], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_EXPERIMENTS: options.experiments ?? '' },
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const lines = createInterface({ input: child.stdout })
  const waiting: Array<{ resolve(line: string): void; reject(err: Error): void }> = []
  lines.on('line', (line) => waiting.shift()?.resolve(line))
  child.once('exit', (code) => {
    for (const w of waiting.splice(0))
      w.reject(new Error(`${kind} target exited with code ${code}`))
  })
  const nextLine = () => new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }))
  const info = JSON.parse(await nextLine()) as TargetInfo
  return {
    ...info,
    cpuUs: async () => {
      const answer = nextLine()
      child.stdin.write('cpu\n')
      return (JSON.parse(await answer) as { cpuUs: number }).cpuUs
    },
    stop: async () => {
      child.stdin.end()
      await exited
    },
  }
}
