import { randomBytes } from 'node:crypto'
import { buildStint, type Stint } from '../../server/build.js'
import { loadConfig, readUnsealKey, splitAddress } from '../../server/config.js'
import { listen } from '../../http/server.js'
import { createLogger } from '../../core/logger.js'
import { createRootToken } from '../../engines/sys/seal.js'
import { parseDuration } from '../../core/duration.js'
import { readFile } from 'node:fs/promises'
import { parseArgs, UsageError } from '../args.js'

export const serverHelp = `Usage: stint server [options]

  Starts a Stint server.

  -dev                        Development mode: in-memory storage, initialised and unsealed,
                              KV v2 at secret/, prints the unseal key and root token.
  -dev-root-token-id=<id>     Root token to use in dev mode (default: random).
  -dev-listen-address=<addr>  Address to listen on in dev mode (default 127.0.0.1:8200).
  -config=<file>              Server configuration file (HCL or JSON).
`

/** `stint server`: dev mode or a configured server. Resolves when the server has stopped. */
export async function serverCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, ['dev'])
  if (flags.help || flags.h) {
    console.log(serverHelp)
    return 0
  }
  if (flags.dev) return runDev(flags)
  if (typeof flags.config !== 'string')
    throw new UsageError('stint server needs -dev or -config=<file>')
  const config = await loadConfig(flags.config)
  const logger = createLogger(config.logLevel)
  const stint = await buildStint({
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
  const running = await listen(stint.app, { host, port, tls })
  const status = await stint.core.seal.status()
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
  const stint = await buildStint({ storage: 'sqlite::memory:', logger })
  const rootId =
    typeof flags['dev-root-token-id'] === 'string' ? flags['dev-root-token-id'] : undefined
  let rootToken = ''
  const keys = await stint.core.seal.initialize(
    1,
    1,
    async () => {
      await stint.core.policies.ensureBuiltins()
      rootToken = await createRootToken(
        stint.core,
        rootId ?? `sts.${randomBytes(24).toString('base64url')}`,
      )
    },
    true,
  )
  await stint.core.mounts.enable({
    path: 'secret/',
    kind: 'secret',
    type: 'kv',
    description: 'key/value secret storage',
    options: { version: '2' },
  })
  const address =
    typeof flags['dev-listen-address'] === 'string' ? flags['dev-listen-address'] : '127.0.0.1:8200'
  const { host, port } = splitAddress(address)
  const running = await listen(stint.app, { host, port })
  console.log(`==> Stint server started in dev mode. Do not run dev mode in production.

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
