import { existsSync, readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { describe, expect, it } from 'vitest'
import { parseArgs } from '../../src/cli/args.js'
import { commands } from '../../src/cli/main.js'
import { serverHelp } from '../../src/cli/commands/server.js'
import { loadConfig, readUnsealKey, splitAddress } from '../../src/server/config.js'

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..')
const composeFile = join(repo, 'docker-compose.yml')

interface Service {
  image?: string
  command?: string[] | string
  entrypoint?: string[] | string
  environment?: Record<string, string> | string[]
  volumes?: string[]
  ports?: string[]
}

function compose(): { services: Record<string, Service> } {
  expect(existsSync(composeFile), 'docker-compose.yml must exist at the repository root').toBe(true)
  return parse(readFileSync(composeFile, 'utf8')) as { services: Record<string, Service> }
}

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {}
  if (!Array.isArray(env))
    return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))
  return Object.fromEntries(
    env.map((line) => {
      const eq = line.indexOf('=')
      return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)]
    }),
  )
}

const asList = (v: string[] | string | undefined) =>
  v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean)

/** A stand-in value for a `${VAR...}` interpolation compose would fill in at run time. */
function sample(name: string, value: string): string {
  if (!value.includes('${')) return value
  if (/UNSEAL_KEY$/.test(name)) return randomBytes(32).toString('base64')
  if (/URL$/.test(name)) return 'postgres://u:p@example:5432/db'
  if (/ADDRESS$/.test(name)) return '0.0.0.0:9999'
  if (/LEVEL$/.test(name)) return 'debug'
  return 'value'
}

/** The flags `stint server` documents in its help. */
const serverFlags = new Set([...serverHelp.matchAll(/^\s+-([a-z-]+)/gm)].map((m) => m[1]!))

describe('docker-compose.yml', () => {
  it('has Stint, its PostgreSQL storage, a PostgreSQL target and a MySQL target', () => {
    const { services } = compose()
    expect(Object.keys(services)).toEqual(
      expect.arrayContaining(['stint', 'storage', 'target-postgres', 'target-mysql']),
    )
    expect(services.storage!.image).toMatch(/^postgres/)
    expect(services['target-postgres']!.image).toMatch(/^postgres/)
    expect(services['target-mysql']!.image).toMatch(/^(mysql|mariadb)/)
  })

  it('gives Stint a command the real CLI accepts: server -config=<file>', () => {
    const stint = compose().services.stint!
    const [name, ...rest] = asList(stint.command)
    expect(name).toBe('server')
    expect(commands[name!]).toBeTypeOf('function')
    const { flags, positionals } = parseArgs(rest, ['dev'])
    expect(positionals).toEqual([])
    expect(typeof flags.config).toBe('string')
    for (const flag of Object.keys(flags)) expect(serverFlags, flag).toContain(flag)
    expect(flags.dev).toBeUndefined()
  })

  it('runs the real CLI entry point if it overrides the entrypoint', () => {
    const entry = asList(compose().services.stint!.entrypoint).join(' ')
    if (entry === '') return
    const scripts = [...entry.matchAll(/node\s+(\S+\.(?:js|ts))/g)].map((m) => m[1]!)
    expect(scripts.length).toBeGreaterThan(0)
    for (const script of scripts) expect(existsSync(join(repo, script)), script).toBe(true)
  })

  it('mounts a config file from the repository that loadConfig parses', async () => {
    const stint = compose().services.stint!
    const { flags } = parseArgs(asList(stint.command).slice(1), ['dev'])
    const target = flags.config as string
    const volume = (stint.volumes ?? []).find((v) => v.split(':')[1] === target)
    expect(volume, `a volume must provide ${target}`).toBeDefined()
    const hostPath = resolve(repo, volume!.split(':')[0]!)
    expect(hostPath.startsWith(repo)).toBe(true)
    expect(existsSync(hostPath), hostPath).toBe(true)

    const env = Object.fromEntries(
      Object.entries(environment(stint)).map(([k, v]) => [k, sample(k, v)]),
    )
    const config = await loadConfig(hostPath, env)
    // The listener port is the one the container publishes.
    const { port } = splitAddress(config.listenAddress)
    const published = (stint.ports ?? []).map((p) => Number(String(p).split(':').at(-1)))
    expect(published).toContain(port)
    // With the compose environment, storage is the compose PostgreSQL service.
    expect(config.storageUrl).toMatch(/^postgres(ql)?:\/\/[^@]+@storage:5432\//)
    const storage = environment(compose().services.storage!)
    const url = new URL(config.storageUrl)
    expect(decodeURIComponent(url.username)).toBe(storage.POSTGRES_USER ?? 'postgres')
    expect(decodeURIComponent(url.password)).toBe(storage.POSTGRES_PASSWORD)
    expect(url.pathname.slice(1)).toBe(storage.POSTGRES_DB ?? storage.POSTGRES_USER ?? 'postgres')
    // And the auto-unseal key is found, so the container starts unsealed.
    const key = await readUnsealKey(config, env)
    expect(key?.length).toBe(32)
  })

  it('only sets environment variables that the config reader uses', async () => {
    const stint = compose().services.stint!
    const { flags } = parseArgs(asList(stint.command).slice(1), ['dev'])
    const volume = (stint.volumes ?? []).find((v) => v.split(':')[1] === flags.config)!
    const hostPath = resolve(repo, volume.split(':')[0]!)
    const env = Object.fromEntries(
      Object.entries(environment(stint)).map(([k, v]) => [k, sample(k, v)]),
    )
    expect(Object.keys(env).length).toBeGreaterThan(0)
    const effect = async (e: NodeJS.ProcessEnv) => {
      const config = await loadConfig(hostPath, e)
      const key = await readUnsealKey(config, e)
      return JSON.stringify({ config, key: key && Buffer.from(key).toString('base64') })
    }
    const all = await effect(env)
    for (const name of Object.keys(env)) {
      const without = { ...env }
      delete without[name]
      // Give the variable a different value: if nothing changes, Stint does not read it.
      const changed = {
        ...env,
        [name]: sample(name, '${changed}') === env[name] ? 'other' : sample(name, '${changed}'),
      }
      const differs = (await effect(without)) !== all || (await effect(changed)) !== all
      expect(differs, `${name} is not read by the server config`).toBe(true)
    }
  })
})
