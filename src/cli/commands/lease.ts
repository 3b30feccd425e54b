import { UsageError } from '../args.js'
import { command, group, type Command } from '../command.js'
import { humanDuration } from '../output.js'

const lookup = command({
  name: 'lease lookup',
  flags: [],
  help: `Usage: stint lease lookup [options] <lease_id>

  Shows a lease's issue time, expiry and remaining TTL.`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('looking up lease')
    const { body } = await client.request('PUT', 'sys/leases/lookup', {
      body: { lease_id: ctx.positionals[0] },
    })
    ctx.out.secret(body)
    return 0
  },
})

const renew = command({
  name: 'lease renew',
  flags: ['increment', 'i'],
  help: `Usage: stint lease renew [options] <lease_id>

  Renews a lease, capped by the role's and mount's maximum TTL.

  -increment=<dur>   Requested new TTL (default: the backend's default).`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    const body: Record<string, unknown> = { lease_id: ctx.positionals[0] }
    const increment = ctx.str('increment') ?? ctx.str('i')
    if (increment !== undefined) body.increment = increment
    ctx.doing('renewing lease')
    const { body: result } = await client.request('PUT', 'sys/leases/renew', { body })
    if (!result) {
      ctx.out.info(`Success! Renewed lease: ${String(body.lease_id)}`)
      return 0
    }
    ctx.out.secret(result)
    return 0
  },
})

const revoke = command({
  name: 'lease revoke',
  flags: [],
  help: `Usage: stint lease revoke [options] <lease_id | prefix>

  Revokes a lease, or with -prefix every lease under a prefix (e.g. database/creds/ci/).

  -prefix   Treat the argument as a prefix (needs sudo).
  -force    With -prefix: remove the leases even when revoking them at the target fails
            (credentials may be left behind; needs sudo).
  -sync     Wait for revocation to finish (default true).`,
  booleans: ['prefix', 'force', 'sync'],
  args: [1, 1],
  async run(ctx) {
    const id = ctx.positionals[0]!
    const prefix = ctx.bool('prefix')
    const force = ctx.bool('force')
    if (force && !prefix) throw new UsageError('-force requires -prefix')
    if (id.split('/').includes('..')) throw new UsageError('Lease ids may not contain ".."')
    const sync = ctx.bool('sync', true)
    const client = await ctx.client()
    ctx.doing(`revoking ${prefix ? 'prefix' : 'lease'} ${id}`)
    let status: number
    if (force) {
      ;({ status } = await client.request('PUT', `sys/leases/revoke-force/${id}`))
    } else if (prefix) {
      ;({ status } = await client.request('PUT', `sys/leases/revoke-prefix/${id}`, {
        body: { sync },
      }))
    } else {
      ;({ status } = await client.request('PUT', 'sys/leases/revoke', {
        body: { lease_id: id, sync },
      }))
    }
    if (status === 202) ctx.out.info('All revocation operations queued successfully!')
    else if (force) ctx.out.info(`Success! Force revoked any leases with prefix: ${id}`)
    else if (prefix) ctx.out.info(`Success! Revoked any leases with prefix: ${id}`)
    else ctx.out.info(`Success! Revoked lease: ${id}`)
    return 0
  },
})

const list = command({
  name: 'lease list',
  flags: [],
  help: `Usage: stint lease list [options] <prefix>

  Lists the leases under a prefix (needs sudo) with the time each has left. Entries ending in
  "/" are deeper prefixes.

    $ stint lease list database/creds/readonly/`,
  args: [1, 1],
  async run(ctx) {
    const prefix = ctx.positionals[0]!.replace(/^\/+/, '').replace(/\/*$/, '/')
    if (prefix.split('/').includes('..')) throw new UsageError('Prefixes may not contain ".."')
    const client = await ctx.client()
    ctx.doing(`listing leases under ${prefix}`)
    const listed = await client.list(`sys/leases/lookup/${prefix}`, { allow: [404] })
    const keys: string[] = (listed.body?.data?.keys ?? []).map(String)
    if (listed.status === 404 || keys.length === 0) {
      ctx.io.stderr.write(`No leases found under ${prefix}\n`)
      return 2
    }
    const now = Date.now()
    const leases: Array<Record<string, unknown>> = []
    for (const key of keys) {
      if (key.endsWith('/')) {
        leases.push({ id: `${prefix}${key}`, prefix: true })
        continue
      }
      const id = `${prefix}${key}`
      const { status, body } = await client.request('PUT', 'sys/leases/lookup', {
        body: { lease_id: id },
        allow: [400, 404],
      })
      if (status >= 400 || !body?.data) {
        // Revoked between the listing and the lookup.
        continue
      }
      leases.push({ ...body.data, id })
    }
    const rows = leases.map((l) => {
      if (l.prefix) return [l.id, '-', '-', '-']
      const expire = typeof l.expire_time === 'string' && l.expire_time ? l.expire_time : undefined
      const left = expire
        ? Math.max(0, Math.round((Date.parse(expire) - now) / 1000))
        : Number(l.ttl ?? 0)
      return [l.id, expire ? humanDuration(left) : 'never', expire ?? 'n/a', l.renewable ?? false]
    })
    if (ctx.out.field !== undefined) throw new UsageError('-field is not supported here')
    ctx.out.columns(['Lease ID', 'Time Left', 'Expires', 'Renewable'], rows, leases)
    return 0
  },
})

export const leaseCommand: Command = group(
  'lease',
  `Usage: stint lease <subcommand> [options] [args]

  Looks up, renews and revokes leases.

Subcommands:
  lookup    Show a lease
  renew     Renew a lease
  revoke    Revoke a lease or every lease under a prefix
  list      List leases under a prefix with their time left`,
  { lookup, renew, revoke, list },
)
