import { UsageError } from '../args.js'
import { command, group, type Command } from '../command.js'
import { promptSecret } from '../io.js'
import { printSealStatus } from './status.js'

const init = command({
  name: 'operator init',
  flags: ['key-shares', 'key-threshold'],
  help: `Usage: stint operator init [options]

  Initialises a new server: creates the root key, splits it into unseal key shares and prints
  them with the initial root token. Store them safely; they are shown only once.

  -key-shares=<n>      Number of unseal key shares (default 5).
  -key-threshold=<n>   Shares needed to unseal (default 3).`,
  async run(ctx) {
    const shares = intFlag(ctx.str('key-shares'), 'key-shares') ?? 5
    const threshold = intFlag(ctx.str('key-threshold'), 'key-threshold') ?? 3
    const client = await ctx.client()
    ctx.doing('initializing')
    const { body } = await client.request('PUT', 'sys/init', {
      body: { secret_shares: shares, secret_threshold: threshold },
      token: null,
    })
    if (ctx.out.format !== 'table' || ctx.out.field !== undefined) {
      const keys: string[] = body.keys_base64 ?? []
      const pairs: Array<[string, unknown]> = [
        ['unseal_keys_b64', keys],
        ['unseal_keys_hex', body.keys ?? []],
        ['unseal_shares', shares],
        ['unseal_threshold', threshold],
        ['root_token', body.root_token],
      ]
      ctx.out.keyValues(pairs, Object.fromEntries(pairs))
      return 0
    }
    const keys: string[] = body.keys_base64 ?? []
    const lines = keys.map((k, i) => `Unseal Key ${i + 1}: ${k}`)
    ctx.io.stdout.write(`${lines.join('\n')}

Initial Root Token: ${String(body.root_token)}

Stint initialized with ${shares} key shares and a key threshold of ${threshold}. Please securely
distribute the key shares printed above. When the server is re-sealed or restarted, it must be
unsealed with at least ${threshold} of these keys (stint operator unseal).

Keep the root token and the unseal keys safe: they are not shown again.
`)
    return 0
  },
})

const unseal = command({
  name: 'operator unseal',
  flags: [],
  help: `Usage: stint operator unseal [options] [key]

  Provides one unseal key share. Without a key, prompts for it without echo on a terminal, or
  reads one line from stdin. Repeat until the threshold is reached.

  -reset   Discard the shares given so far.`,
  booleans: ['reset'],
  args: [0, 1],
  async run(ctx) {
    const client = await ctx.client()
    let body: Record<string, unknown>
    if (ctx.bool('reset')) {
      body = { reset: true }
    } else {
      let key = ctx.positionals[0]
      if (key === undefined || key === '-') {
        key = (await promptSecret(ctx.io, 'Unseal Key (will be hidden): ')).trim()
      }
      if (!key) throw new UsageError('An unseal key is required')
      body = { key }
    }
    ctx.doing('unsealing')
    const result = await client.request('PUT', 'sys/unseal', { body, token: null })
    printSealStatus(ctx, result.body)
    return 0
  },
})

const seal = command({
  name: 'operator seal',
  flags: [],
  help: `Usage: stint operator seal [options]

  Seals the server (needs sudo on sys/seal). It then serves nothing until unsealed again.`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('sealing')
    await client.request('PUT', 'sys/seal')
    ctx.out.info('Success! Stint is sealed.')
    return 0
  },
})

const keyStatus = command({
  name: 'operator key-status',
  flags: [],
  help: `Usage: stint operator key-status [options]

  Prints the current data encryption key's term and install time.`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('reading key status')
    const { body } = await client.request('GET', 'sys/key-status')
    const data = body?.data ?? body
    ctx.out.keyValues(
      [
        ['Key Term', data.term],
        ['Install Time', data.install_time],
      ],
      data,
    )
    return 0
  },
})

const rotate = command({
  name: 'operator rotate',
  flags: [],
  help: `Usage: stint operator rotate [options]

  Adds a new data encryption key to the keyring (needs sudo). New data is sealed with it; old
  data stays readable.`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('rotating key')
    await client.request('PUT', 'sys/rotate')
    const { body } = await client.request('GET', 'sys/key-status')
    const data = body?.data ?? body
    ctx.out.info('Success! Rotated key\n')
    ctx.out.keyValues(
      [
        ['Key Term', data.term],
        ['Install Time', data.install_time],
      ],
      data,
    )
    return 0
  },
})

function intFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value)) throw new UsageError(`-${name} must be a whole number`)
  return Number(value)
}

export const operatorCommand: Command = group(
  'operator',
  `Usage: stint operator <subcommand> [options] [args]

  Operator commands for the server's seal and keys.

Subcommands:
  init          Initialise a new server
  unseal        Provide an unseal key share
  seal          Seal the server
  rotate        Add a new data encryption key
  key-status    Show the current key term`,
  { init, unseal, seal, rotate, 'key-status': keyStatus },
)
