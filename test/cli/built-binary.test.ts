import { execFile, spawn, type ChildProcess } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  readdirSync,
  statSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('../..', import.meta.url))

/** Whether the checkout's dist/ was built after every source file it is built from changed. */
function builtIsFresh(): boolean {
  const built = join(repo, 'dist/src/cli/main.js')
  if (!existsSync(built)) return false
  const builtAt = statSync(built).mtimeMs
  const newest = (dir: string): number =>
    readdirSync(join(repo, dir), { withFileTypes: true }).reduce((latest, entry) => {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) return Math.max(latest, newest(path))
      return entry.name.endsWith('.ts')
        ? Math.max(latest, statSync(join(repo, path)).mtimeMs)
        : latest
    }, 0)
  const sources = Math.max(
    newest('src'),
    newest('plugins'),
    newest('schema'),
    statSync(join(repo, 'tsconfig.build.json')).mtimeMs,
    statSync(join(repo, 'tsconfig.json')).mtimeMs,
  )
  return builtAt > sources
}

/**
 * The package as it ships: `tsc -p tsconfig.build.json` output run through `bin/stint.js`, in a
 * copy of its own (dist/, bin/ and a link to node_modules), so the test neither needs nor
 * touches the checkout's dist/. Proves that nothing reads files next to the TypeScript source at
 * run time: the HCL parser's worker, the storage, the CLI's lazily loaded commands.
 */
describe('the built stint binary', () => {
  const root = mkdtempSync(join(tmpdir(), 'stint-built-'))
  const bin = join(root, 'bin', 'stint.js')
  const loaded = join(root, 'loaded.txt')
  let server: ChildProcess
  let exited: Promise<number | null>
  let env: NodeJS.ProcessEnv

  const stint = async (args: string[], options: { trace?: boolean } = {}) => {
    const flags = options.trace ? ['--import', join(root, 'trace.mjs')] : []
    try {
      const { stdout, stderr } = await run(process.execPath, [...flags, bin, ...args], { env })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }

  beforeAll(async () => {
    if (builtIsFresh()) {
      // `npm ci` (prepare) or `npm run build` has just built the checkout's dist/: test that.
      cpSync(join(repo, 'dist'), join(root, 'dist'), { recursive: true })
    } else {
      // --noCheck: type errors are `npm run typecheck`'s business; this proves the emitted code.
      await run(
        process.execPath,
        [
          join(repo, 'node_modules/typescript/bin/tsc'),
          '-p',
          join(repo, 'tsconfig.build.json'),
          '--noCheck',
          '--outDir',
          join(root, 'dist'),
        ],
        { cwd: repo },
      )
    }
    mkdirSync(join(root, 'bin'))
    copyFileSync(join(repo, 'bin/stint.js'), bin)
    symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'))
    // Records every module file a process loads, for the "client commands stay small" test.
    writeFileSync(
      join(root, 'trace.mjs'),
      `import { register } from 'node:module'
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(${JSON.stringify(loaded)}, result.url + '\\\\n')
  return result
}\`))
`,
    )

    server = spawn(
      process.execPath,
      [bin, 'server', '-dev', '-dev-root-token-id=root', '-dev-listen-address=127.0.0.1:0'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)))
    let banner = ''
    const address = await new Promise<string>((resolve, reject) => {
      server.stdout!.on('data', (chunk: Buffer) => {
        banner += chunk.toString('utf8')
        const found = /Address:\s+(\S+)/.exec(banner)?.[1]
        if (found) resolve(found)
      })
      void exited.then((code) => reject(new Error(`server exited with ${code}:\n${banner}`)))
    })
    env = { ...process.env, STINT_ADDR: address, STINT_TOKEN: 'root', HOME: root }
    delete env.VAULT_ADDR
    delete env.VAULT_TOKEN
  }, 120_000)

  afterAll(() => {
    if (server?.exitCode === null) server.kill('SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })

  test('runs the compiled CLI, not the TypeScript source', async () => {
    const res = await stint(['-h'], { trace: true })
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('Usage: stint <command>')
    const files = readFileSync(loaded, 'utf8')
    expect(files).toContain(`${root}/dist/src/cli/main.js`)
    expect(files).not.toMatch(/\.ts\n/)
  })

  test('status, kv put and kv get work against a dev server started from dist/', async () => {
    expect((await stint(['status'])).stdout).toMatch(/Sealed\s+false/)
    expect((await stint(['kv', 'put', 'secret/app', 'password=hunter2'])).code).toBe(0)
    const got = await stint(['kv', 'get', '-field=password', 'secret/app'])
    expect(got).toMatchObject({ code: 0, stdout: 'hunter2' })
  })

  test('an HCL policy is parsed by the server (its WebAssembly worker) and read back', async () => {
    const file = join(root, 'app.hcl')
    writeFileSync(file, 'path "secret/data/app" {\n  capabilities = ["read"]\n}\n')
    const written = await stint(['policy', 'write', 'app-read', file])
    expect(written.stderr).toBe('')
    expect(written.code).toBe(0)
    const read = await stint(['policy', 'read', 'app-read'])
    expect(read.stdout).toContain('capabilities = ["read"]')
  })

  test('client commands load no server code', async () => {
    rmSync(loaded, { force: true })
    expect((await stint(['status'], { trace: true })).code).toBe(0)
    expect((await stint(['kv', 'get', 'secret/app'], { trace: true })).code).toBe(0)
    const files = readFileSync(loaded, 'utf8').split('\n').filter(Boolean)
    expect(files).toContain(`file://${root}/dist/src/cli/commands/kv.js`)
    const server = files.filter(
      (f) =>
        /\/dist\/(plugins|schema)\//.test(f) ||
        (/\/dist\/src\//.test(f) && !/\/dist\/src\/(cli\/|version\.js$)/.test(f)) ||
        /node_modules\/(kysely|libsodium|@cdktf|better-sqlite3|zod|pino)\//.test(f),
    )
    expect(server).toEqual([])
  })

  test('SIGTERM stops the server cleanly', async () => {
    server.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
