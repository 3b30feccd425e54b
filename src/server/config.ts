import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type * as Hcl2Json from '@cdktf/hcl2json'
import { z } from 'zod'

/** Everything `stint server -config <file>` can set. */
export interface ServerConfig {
  listenAddress: string
  tls?: { certFile: string; keyFile: string }
  storageUrl: string
  /** Auto-unseal: a file holding a base64 32-byte key, or the name of an environment variable. */
  unsealKeyFile?: string
  unsealKeyEnv?: string
  logLevel: string
  defaultLeaseTtl?: string
  maxLeaseTtl?: string
}

const listenerSchema = z.object({
  address: z.string().default('127.0.0.1:8200'),
  tls_disable: z.union([z.boolean(), z.string()]).optional(),
  tls_cert_file: z.string().optional(),
  tls_key_file: z.string().optional(),
})
const storageSchema = z.object({
  path: z.string().optional(),
  connection_url: z.string().optional(),
})
const fileSchema = z.object({
  listener: z.record(z.string(), z.union([listenerSchema, z.array(listenerSchema)])).optional(),
  storage: z.record(z.string(), z.union([storageSchema, z.array(storageSchema)])).optional(),
  seal: z
    .record(
      z.string(),
      z.union([
        z.object({ key_file: z.string().optional(), key_env: z.string().optional() }),
        z.array(z.object({ key_file: z.string().optional(), key_env: z.string().optional() })),
      ]),
    )
    .optional(),
  log_level: z.string().optional(),
  default_lease_ttl: z.string().optional(),
  max_lease_ttl: z.string().optional(),
  ui: z.boolean().optional(),
})

const first = <T>(v: T | T[] | undefined): T | undefined => (Array.isArray(v) ? v[0] : v)

/**
 * Reads a server config file (Vault-style HCL, or JSON when the name ends in `.json`):
 *
 * ```hcl
 * listener "tcp" { address = "0.0.0.0:8200"  tls_cert_file = "..."  tls_key_file = "..." }
 * storage "postgres" { connection_url = "postgres://stint@db/stint" }   # or "mysql", or "sqlite" { path = "..." }
 * seal "static" { key_file = "/etc/stint/unseal.key" }                   # or key_env = "STINT_UNSEAL_KEY"
 * log_level = "info"
 * ```
 * Environment variables override the file: STINT_LISTEN_ADDRESS, STINT_STORAGE_URL,
 * STINT_UNSEAL_KEY_FILE, STINT_LOG_LEVEL.
 */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerConfig> {
  const text = await readFile(file, 'utf8')
  let raw: unknown
  try {
    raw = file.endsWith('.json')
      ? JSON.parse(text)
      : await (createRequire(import.meta.url)('@cdktf/hcl2json') as typeof Hcl2Json).parse(
          file,
          text,
        )
  } catch (err) {
    throw new Error(
      `config file ${file} could not be parsed: ${(err as Error).message.split('\n')[0]}`,
    )
  }
  const parsed = fileSchema.safeParse(raw)
  if (!parsed.success) {
    throw new Error(
      `config file ${file} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    )
  }
  return configFrom(parsed.data, env)
}

export function configFrom(data: z.infer<typeof fileSchema>, env: NodeJS.ProcessEnv): ServerConfig {
  const listener = first(data.listener?.tcp)
  const storageKind = Object.keys(data.storage ?? {})[0]
  const storageBlock = storageKind ? first(data.storage![storageKind]) : undefined
  let storageUrl = 'sqlite:./.data/stint.db'
  if (storageKind) {
    if (!['sqlite', 'postgres', 'postgresql', 'mysql', 'mariadb'].includes(storageKind)) {
      throw new Error(`unknown storage type "${storageKind}" (use sqlite, postgres or mysql)`)
    }
    if (storageKind === 'sqlite') storageUrl = `sqlite:${storageBlock?.path ?? './.data/stint.db'}`
    else if (storageBlock?.connection_url) storageUrl = storageBlock.connection_url
    else throw new Error(`storage "${storageKind}" needs connection_url`)
  }
  const seal = first(data.seal?.static)
  const tlsDisabled =
    listener?.tls_disable === true ||
    listener?.tls_disable === 'true' ||
    listener?.tls_disable === '1'
  const tls =
    !tlsDisabled && listener?.tls_cert_file && listener?.tls_key_file
      ? { certFile: listener.tls_cert_file, keyFile: listener.tls_key_file }
      : undefined
  return {
    listenAddress: env.STINT_LISTEN_ADDRESS || listener?.address || '127.0.0.1:8200',
    tls,
    storageUrl: env.STINT_STORAGE_URL || storageUrl,
    unsealKeyFile: env.STINT_UNSEAL_KEY_FILE || seal?.key_file,
    unsealKeyEnv: seal?.key_env ?? (env.STINT_UNSEAL_KEY ? 'STINT_UNSEAL_KEY' : undefined),
    logLevel: env.STINT_LOG_LEVEL || data.log_level || 'info',
    defaultLeaseTtl: data.default_lease_ttl,
    maxLeaseTtl: data.max_lease_ttl,
  }
}

/** Reads the auto-unseal key (base64 or hex of 32 bytes) from a file or an environment variable. */
export async function readUnsealKey(
  config: Pick<ServerConfig, 'unsealKeyFile' | 'unsealKeyEnv'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Uint8Array | undefined> {
  let text: string | undefined
  if (config.unsealKeyFile) text = (await readFile(config.unsealKeyFile, 'utf8')).trim()
  else if (config.unsealKeyEnv) text = env[config.unsealKeyEnv]?.trim()
  if (!text) return undefined
  const bytes = /^[0-9a-f]{64}$/i.test(text)
    ? Buffer.from(text, 'hex')
    : Buffer.from(text, 'base64')
  if (bytes.length !== 32)
    throw new Error('the auto-unseal key must be 32 bytes, base64 or hex encoded')
  return new Uint8Array(bytes)
}

/** Splits `host:port` (IPv6 as `[::1]:8200`). */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address)
  if (!m) throw new Error(`invalid listen address "${address}" (expected host:port)`)
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) }
}
