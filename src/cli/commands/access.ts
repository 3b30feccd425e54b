import { command, group, type Command, type CommandContext } from '../command.js'

/** Prints an access request: its summary as a table, or the whole object with -format=json. */
function show(ctx: CommandContext, body: { data?: Record<string, unknown> } | undefined) {
  const r = body?.data ?? {}
  if (ctx.out.field !== undefined) {
    ctx.out.secret(body as never)
    return
  }
  const requester = (r.requester ?? {}) as Record<string, unknown>
  const usage = (r.usage ?? {}) as Record<string, unknown>
  const rows: Array<[string, unknown]> = [
    ['id', r.id],
    ['state', r.state],
    ['kind', r.kind],
    ['path', r.path],
    ['duration', `${String(r.duration)}s`],
    ['requester', `${String(requester.display_name ?? '')} (${String(requester.id ?? '')})`],
    ['justification', r.justification],
    ['ticket', r.ticket || 'n/a'],
    ['rule', r.rule],
    ['ends_at', r.ends_at ?? 'n/a'],
    ['break_glass', r.break_glass],
    ['credentials_issued', usage.credentials_issued],
    ['sessions_seen', usage.sessions_seen],
  ]
  if (r.deny_reason) rows.push(['deny_reason', r.deny_reason])
  const meta = requester.metadata as Record<string, string> | undefined
  for (const [k, v] of Object.entries(meta ?? {})) rows.push([`requester.${k}`, v])
  for (const d of (r.decisions ?? []) as Array<Record<string, unknown>>) {
    rows.push([
      `decision`,
      `${String(d.decision)} by ${String(d.by)}${d.comment ? `: ${String(d.comment)}` : ''}`,
    ])
  }
  if (r.target) rows.push(['target', JSON.stringify(r.target)])
  ctx.out.keyValues(rows, body)
}

async function post(ctx: CommandContext, path: string, body: Record<string, unknown>) {
  const client = await ctx.client()
  const { body: result } = await client.request('POST', path, { body })
  return result as { data?: Record<string, unknown> } | undefined
}

const request = command({
  name: 'access request',
  flags: ['ttl', 'duration', 'justification', 'ticket', 'start'],
  booleans: ['wait'],
  help: `Usage: stint access request [options] <path>

  Asks for just-in-time access to a guarded path. Policy may approve it at once; otherwise
  approvers decide.

    $ stint access request database/creds/prod-ro -ttl=30m -justification="INC-42 slow queries" -wait

  -ttl=<dur>             How long access should last (required).
  -justification=<text>  Why (the rule may require a pattern).
  -ticket=<id>           A ticket reference.
  -start=<time>          RFC 3339 start time (default: at approval).
  -wait                  Wait until the request is decided (polls up to 10 minutes).`,
  args: [1, 1],
  async run(ctx) {
    ctx.doing('requesting access')
    const body: Record<string, unknown> = {
      path: ctx.positionals[0],
      duration: ctx.str('ttl') ?? ctx.str('duration'),
      justification: ctx.str('justification') ?? '',
      ticket: ctx.str('ticket') ?? '',
    }
    const start = ctx.str('start')
    if (start) body.start_time = start
    let result = await post(ctx, 'sys/access/requests', body)
    if (ctx.bool('wait')) {
      const client = await ctx.client()
      const deadline = Date.now() + 10 * 60_000
      while (result?.data?.state === 'pending' && Date.now() < deadline) {
        ;({ body: result } = await client.request(
          'GET',
          `sys/access/requests/${String(result.data.id)}`,
          { query: { wait: '30s' } },
        ))
      }
    }
    show(ctx, result)
    const state = result?.data?.state
    return state === 'denied' || state === 'expired' ? 1 : 0
  },
})

const list = command({
  name: 'access list',
  flags: ['state', 'filter'],
  help: `Usage: stint access list [options]

  Lists the access requests you may see: your own and those you may decide.

  -state=<state>     pending, approved, active, denied, expired, cancelled or ended.
  -filter=<which>    mine, approvable (waiting for my approval), or all (every
                     request: needs sudo on sys/access/requests).`,
  args: [0, 0],
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('listing access requests')
    const query: Record<string, string> = {}
    const state = ctx.str('state')
    const filter = ctx.str('filter')
    if (state) query.state = state
    if (filter) query.filter = filter
    const { status, body } = await client.list('sys/access/requests', { query, allow: [404] })
    if (status === 404) {
      ctx.io.stderr.write('No access requests found\n')
      return 2
    }
    const info = (body?.data?.key_info ?? {}) as Record<string, Record<string, unknown>>
    const rows = Object.entries(info).map(([id, r]) => [
      id,
      r.state,
      r.path,
      r.requester,
      `${String(r.duration)}s`,
      r.ends_at ?? 'n/a',
      r.break_glass ? 'yes' : '',
    ])
    ctx.out.columns(
      ['ID', 'State', 'Path', 'Requester', 'Duration', 'Ends', 'Break-glass'],
      rows,
      body,
    )
    return 0
  },
})

const showCmd = command({
  name: 'access show',
  flags: [],
  help: `Usage: stint access show [options] <id>

  Shows a request: what will run, who asked, the decisions, and whether the grant was used.`,
  args: [1, 1],
  async run(ctx) {
    const client = await ctx.client()
    ctx.doing('reading access request')
    const { body } = await client.request('GET', `sys/access/requests/${ctx.positionals[0]}`)
    show(ctx, body)
    return 0
  },
})

/** approve, deny, cancel, end, extend, review, activate: one POST each. */
function action(
  name: string,
  flag: string | undefined,
  field: string | undefined,
  help: string,
  required = false,
): Command {
  return command({
    name: `access ${name}`,
    flags: flag ? [flag] : [],
    help,
    args: [1, 1],
    async run(ctx) {
      ctx.doing(`${name === 'end' ? 'ending' : `${name.replace(/e$/, '')}ing`} access request`)
      const body: Record<string, unknown> = {}
      const value = flag ? ctx.str(flag) : undefined
      if (required && !value) {
        ctx.io.stderr.write(`-${flag} is required\n`)
        return 2
      }
      if (field && value !== undefined) body[field] = value
      show(ctx, await post(ctx, `sys/access/requests/${ctx.positionals[0]}/${name}`, body))
      return 0
    },
  })
}

const breakGlass = command({
  name: 'access break-glass',
  flags: ['justification', 'ttl', 'ticket'],
  help: `Usage: stint access break-glass [options] <path>

  Opens emergency access at once, without approval. Every approver is notified and the grant
  stays flagged until an approver reviews it.

  -justification=<text>  Why (required).
  -ttl=<dur>             How long (default and maximum: the rule's break-glass window).`,
  args: [1, 1],
  async run(ctx) {
    const justification = ctx.str('justification')
    if (!justification) {
      ctx.io.stderr.write('-justification is required\n')
      return 2
    }
    ctx.doing('breaking glass')
    const body: Record<string, unknown> = {
      path: ctx.positionals[0],
      justification,
      ticket: ctx.str('ticket') ?? '',
    }
    const ttl = ctx.str('ttl')
    if (ttl) body.duration = ttl
    const result = await post(ctx, 'sys/access/break-glass', body)
    ctx.io.stderr.write(
      'BREAK-GLASS access is open. Approvers have been notified; this grant will be reviewed.\n',
    )
    show(ctx, result)
    return 0
  },
})

export const accessCommand: Command = group(
  'access',
  `Usage: stint access <subcommand> [options] [args]

  Just-in-time access requests.

Subcommands:
  request       Ask for access to a guarded path
  list          List requests
  show          Show one request
  approve       Approve a request
  deny          Deny a request (with -reason)
  cancel        Withdraw your request
  end           End a live grant now (its credentials are revoked)
  extend        Ask for more time on a live grant (-ttl)
  review        Review a break-glass grant (-note)
  activate      Confirm an approved grant with a TOTP code (-totp)
  break-glass   Emergency access without approval`,
  {
    request,
    list,
    show: showCmd,
    approve: action(
      'approve',
      'comment',
      'comment',
      `Usage: stint access approve [-comment=<text>] <id>`,
    ),
    deny: action('deny', 'reason', 'reason', `Usage: stint access deny -reason=<text> <id>`, true),
    cancel: action('cancel', undefined, undefined, `Usage: stint access cancel <id>`),
    end: action(
      'end',
      undefined,
      undefined,
      `Usage: stint access end <id>\n\n  Ends the grant now: its credentials are revoked and their sessions killed.`,
    ),
    extend: action(
      'extend',
      'ttl',
      'duration',
      `Usage: stint access extend -ttl=<dur> <id>\n\n  Asks for more time; only the added time goes through approval.`,
      true,
    ),
    review: action('review', 'note', 'note', `Usage: stint access review -note=<text> <id>`, true),
    activate: action(
      'activate',
      'totp',
      'totp',
      `Usage: stint access activate -totp=<code> <id>`,
      true,
    ),
    'break-glass': breakGlass,
  },
)
