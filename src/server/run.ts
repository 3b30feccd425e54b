import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { composeServer, type Stint } from './compose.js'
import { loadConfig, readUnsealKey, splitAddress } from './config.js'
import { listen } from '../http/server.js'
import { createLogger } from '../core/logger.js'
import { createRootToken } from '../engines/sys/seal.js'
import { parseDuration } from '../core/duration.js'

/** Raised for a command line the server cannot run with (the CLI prints it as usage). */
export class ServerUsageError extends Error {}

/**
 * Runs a Stint server from the CLI's flags: dev mode, or a configured server. Resolves when the
 * server has stopped (SIGTERM/SIGINT drain in-flight requests first).
 */
export async function runServer(flags: Record<string, string | boolean>): Promise<number> {
  if (flags.dev) return runDev(flags)
  if (typeof flags.config !== 'string')
    throw new ServerUsageError('stint server needs -dev or -config=<file>')
  const config = await loadConfig(flags.config)
  const logger = createLogger(config.logLevel)
  const stint = await composeServer({
    storage: config.storageUrl,
    staticUnsealKey: await readUnsealKey(config),
    logger,
    defaultLeaseTtl: config.defaultLeaseTtl
      ? parseDuration(config.defaultLeaseTtl, 'default_lease_ttl')
      : undefined,
    maxLeaseTtl: config.maxLeaseTtl
      ? parseDuration(config.maxLeaseTtl, 'max_lease_ttl')
      : undefined,
  })
  const tls = config.tls
    ? { cert: await readFile(config.tls.certFile), key: await readFile(config.tls.keyFile) }
    : undefined
  const { host, port } = splitAddress(config.listenAddress)
  const running = await listen(stint.api, { host, port, tls })
  const status = await stint.services.seal.status()
  logger.info(
    {
      address: running.address,
      storage: stint.storage.dialect,
      initialized: status.initialized,
      sealed: status.sealed,
    },
    'stint server started',
  )
  return serveUntilSignal(stint, running.close, logger)
}

async function runDev(flags: Record<string, string | boolean>): Promise<number> {
  const logger = createLogger(process.env.STINT_LOG_LEVEL ?? 'warn')
  const stint = await composeServer({ storage: 'sqlite::memory:', logger })
  const rootId =
    typeof flags['dev-root-token-id'] === 'string' ? flags['dev-root-token-id'] : undefined
  let rootToken = ''
  const keys = await stint.services.seal.initialize(
    1,
    1,
    async () => {
      await stint.services.policies.ensureBuiltins()
      rootToken = await createRootToken(
        stint.services,
        rootId ?? `sts.${randomBytes(24).toString('base64url')}`,
      )
    },
    true,
  )
  await stint.services.mounts.enable({
    path: 'secret/',
    kind: 'secret',
    type: 'kv',
    description: 'key/value secret storage',
    options: { version: '2' },
  })
  const address =
    typeof flags['dev-listen-address'] === 'string' ? flags['dev-listen-address'] : '127.0.0.1:8200'
  const { host, port } = splitAddress(address)
  const running = await listen(stint.api, { host, port })
  process.stdout.write(`==> Stint server started in dev mode. Do not run dev mode in production.

    Storage:      in-memory SQLite (everything is lost on exit)
    Address:      ${running.address}

You may need to set the following environment variables:

    $ export STINT_ADDR='${running.address}'
    $ export VAULT_ADDR='${running.address}'

The unseal key and root token are displayed below in case you want to seal/unseal the server
or re-authenticate.

Unseal Key: ${Buffer.from(keys[0]!).toString('base64')}
Root Token: ${rootToken}

Development mode should NOT be used in production installations!

`)
  return serveUntilSignal(stint, running.close, logger)
}

function serveUntilSignal(
  stint: Stint,
  closeHttp: () => Promise<void>,
  logger: { info: (o: object, m: string) => void },
): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false
    const stop = async (signal: string) => {
      if (stopping) return
      stopping = true
      logger.info({ signal }, 'draining in-flight requests')
      await closeHttp()
      await stint.shutdown()
      logger.info({}, 'stint server stopped')
      resolve(0)
    }
    process.once('SIGTERM', () => void stop('SIGTERM'))
    process.once('SIGINT', () => void stop('SIGINT'))
  })
}
