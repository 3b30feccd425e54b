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
    const { status, body } = force
      ? await client.request('PUT', `sys/leases/revoke-force/${id}`)
      : prefix
        ? await client.request('PUT', `sys/leases/revoke-prefix/${id}`, { body: { sync } })
        : await client.request('PUT', 'sys/leases/revoke', { body: { lease_id: id, sync } })
    // e.g. -force: "N lease(s) were removed although their backend revocation failed".
    ctx.out.warnings(body?.warnings)
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

  Lists the leases under a prefix (needs sudo) with the time each has left and its state.
  Entries ending in "/" are deeper prefixes.

    $ stint lease list database/creds/readonly/

  States:
    active        Issued and not yet due.
    expired       Due; the expiry worker has not revoked it yet.
    failing       Revoking it at the target failed; Stint retries.
    irrevocable   Revocation gave up after repeated failures: the credential may still exist
                  at the target. Fix the cause, then "stint lease revoke -prefix -force".
  Leases still being created are not shown.`,
  args: [1, 1],
  async run(ctx) {
    const prefix = ctx.positionals[0]!.replace(/^\/+/, '').replace(/\/*$/, '/')
    if (prefix.split('/').includes('..')) throw new UsageError('Prefixes may not contain ".."')
    if (ctx.out.field !== undefined) throw new UsageError('-field is not supported here')
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
        // Revoked between the listing and the lookup, or still being created (pending).
        continue
      }
      const data = body.data as Record<string, unknown>
      leases.push({ ...data, id, state: leaseState(data, now) })
    }
    const rows = leases.map((l) => {
      if (l.prefix) return [l.id, '-', '-', '-', '-']
      const expire = typeof l.expire_time === 'string' && l.expire_time ? l.expire_time : undefined
      const left = expire
        ? Math.max(0, Math.round((Date.parse(expire) - now) / 1000))
        : Number(l.ttl ?? 0)
      return [
        l.id,
        expire ? humanDuration(left) : 'never',
        expire ?? 'n/a',
        l.renewable ?? false,
        l.state,
      ]
    })
    ctx.out.columns(['Lease ID', 'Time Left', 'Expires', 'Renewable', 'State'], rows, leases)
    return 0
  },
})

/** A lease's state from its lookup data (Stint's lookup names the state once it is not active). */
function leaseState(data: Record<string, unknown>, now: number): string {
  if (data.state === 'irrevocable') return 'irrevocable'
  if (typeof data.revoke_error === 'string' && data.revoke_error) return 'failing'
  const expire = typeof data.expire_time === 'string' ? Date.parse(data.expire_time) : NaN
  if (Number.isFinite(expire) && expire <= now) return 'expired'
  return 'active'
}

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
