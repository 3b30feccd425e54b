import { command, type Command, type CommandContext } from '../command.js'

/** Prints a `sys/seal-status` body as Vault's `status` table. */
export function printSealStatus(ctx: CommandContext, s: Record<string, unknown>): void {
  const pairs: Array<[string, unknown]> = [
    ['Seal Type', s.type],
    ['Initialized', s.initialized],
    ['Sealed', s.sealed],
    ['Total Shares', s.n],
    ['Threshold', s.t],
  ]
  if (s.sealed) {
    pairs.push(['Unseal Progress', `${String(s.progress)}/${String(s.t)}`])
    pairs.push(['Unseal Nonce', s.nonce || 'n/a'])
  }
  pairs.push(['Version', s.version], ['Storage Type', s.storage_type], ['HA Enabled', false])
  ctx.out.keyValues(pairs, s)
}

export const statusCommand: Command = command({
  name: 'status',
  flags: [],
  help: `Usage: stint status [options]

  Prints the server's seal status. Exit code 0 when unsealed, 2 when sealed, 1 on error.`,
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('checking seal status')
    const { body } = await client.request('GET', 'sys/seal-status', { token: null })
    printSealStatus(ctx, body)
    return body?.sealed ? 2 : 0
  },
})
