import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { filledSlots, uncountedApproval, type Actor } from '../../src/access/requests.js'
import { group, human } from './support.js'

/*
 * Issue 12, item 14: what JIT access decided wrongly, against the real server.
 * (a) a request past its pending_ttl could still be approved until the worker's next tick;
 * (b) `pending_ttl: "0s"` silently became 24 h;
 * (c) an approval that cannot count (root: no entity, no groups; or a second approver of a factor
 *     already filled) answered 200 and changed nothing;
 * (d) `sys/access/report/unused` listed live grants seconds old as unused.
 */

let server: TestServer
const people: Record<string, { token: string; entityId: string }> = {}
const as = (who: string) => people[who]!.token

async function ask(path: string) {
  const res = await server.call('POST', 'sys/access/requests', {
    token: as('rita'),
    body: { path, duration: '5m' },
  })
  expect(res.status, JSON.stringify(res.body)).toBe(200)
  expect(res.body.data.state).toBe('pending')
  return res.body.data.id as string
}
async function act(who: string, id: string, action: string, body: Record<string, unknown> = {}) {
  const token = who === 'root' ? server.rootToken : as(who)
  return server.call('POST', `sys/access/requests/${id}/${action}`, { token, body })
}
async function readRequest(id: string) {
  return (await server.call('GET', `sys/access/requests/${id}`)).body.data
}
/** Puts a request's pending deadline in the past, as if its pending_ttl had just run out. */
async function pastPendingTtl(id: string) {
  await server.storage.db
    .updateTable('access_requests')
    .set({ pending_until: Date.now() - 1 })
    .where('id', '=', id)
    .execute()
}

beforeAll(async () => {
  server = await startTestServer()
  const ok = (res: { status: number; body: unknown }) => {
    if (res.status >= 300)
      throw new Error(`setup failed: ${res.status} ${JSON.stringify(res.body)}`)
  }
  ok(await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } }))
  ok(
    await server.call('PUT', 'sys/policies/acl/jit-requester', {
      body: {
        policy: `
path "secret/data/jit/*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
      },
    }),
  )
  for (const name of ['rita', 'ann', 'bea', 'cy'])
    people[name] = await human(server, name, ['jit-requester'])
  await group(server, 'team-a', [people.ann!.entityId, people.bea!.entityId])
  await group(server, 'team-b', [people.cy!.entityId])
  ok(
    await server.call('POST', 'sys/access/rules/one', {
      body: {
        paths: ['secret/data/jit/one'],
        approvals: [{ group: 'team-a', count: 1 }],
        pending_ttl: '1h',
        require_justification: false,
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/two', {
      body: {
        paths: ['secret/data/jit/two'],
        approvals: [
          { group: 'team-a', count: 1 },
          { group: 'team-b', count: 1 },
        ],
        require_justification: false,
      },
    }),
  )
  ok(
    await server.call('POST', 'sys/access/rules/later', {
      body: {
        paths: ['secret/data/jit/later'],
        approvals: [{ group: 'team-a', count: 1 }],
        clock_starts: 'first_use',
        require_justification: false,
      },
    }),
  )
  ok(await server.call('POST', 'secret/data/jit/later', { body: { data: { k: 'v' } } }))
}, 60_000)

afterAll(async () => {
  await server?.close()
})

describe('(a) pending expiry is checked when a request is decided', () => {
  it('repro: refuses to approve a request past its pending_ttl before the worker has expired it, and expires it', async () => {
    const id = await ask('secret/data/jit/one')
    await pastPendingTtl(id)
    const approved = await act('ann', id, 'approve')
    expect(approved.status).toBe(400)
    expect(approved.body.errors[0]).toMatch(/expired/)
    expect((await readRequest(id)).state).toBe('expired')
    expect((await server.call('GET', 'secret/data/jit/one', { token: as('rita') })).status).toBe(
      403,
    )
  })

  it('refuses a denial or a cancellation past the pending_ttl the same way', async () => {
    const denied = await ask('secret/data/jit/one')
    await pastPendingTtl(denied)
    const deny = await act('ann', denied, 'deny', { reason: 'too late anyway' })
    expect(deny.status).toBe(400)
    expect(deny.body.errors[0]).toMatch(/expired/)
    expect((await readRequest(denied)).state).toBe('expired')

    const cancelled = await ask('secret/data/jit/one')
    await pastPendingTtl(cancelled)
    const cancel = await act('rita', cancelled, 'cancel')
    expect(cancel.status).toBe(400)
    expect(cancel.body.errors[0]).toMatch(/expired/)
    expect((await readRequest(cancelled)).state).toBe('expired')
  })
})

describe('(a) first use', () => {
  it('repro: a first_use grant not used within its pending_ttl cannot be opened by a use before the worker expires it', async () => {
    const id = await ask('secret/data/jit/later')
    expect((await act('ann', id, 'approve')).body.data.state).toBe('approved')
    await pastPendingTtl(id)
    const read = await server.call('GET', 'secret/data/jit/later', { token: as('rita') })
    expect(read.status).toBe(403)
    expect((await readRequest(id)).state).toBe('expired')
  })
})

describe('(b) pending_ttl', () => {
  it('repro: refuses a rule with pending_ttl "0s" instead of making it 24 h', async () => {
    for (const pendingTtl of ['0s', 0, '0']) {
      const res = await server.call('POST', 'sys/access/rules/zero', {
        body: {
          paths: ['secret/data/jit/zero'],
          approvals: [{ group: 'team-a', count: 1 }],
          pending_ttl: pendingTtl,
        },
      })
      expect(res.status, String(pendingTtl)).toBe(400)
      expect(res.body.errors[0]).toMatch(/pending_ttl must be positive/)
    }
    expect((await server.call('GET', 'sys/access/rules/zero')).status).toBe(404)
  })

  it('still loads a rule stored with pending_ttl "0s" before the fix (24 h, as it has been served), so its paths stay guarded', async () => {
    const now = Date.now()
    await server.storage.db
      .insertInto('access_rules')
      .values({
        name: 'legacy-zero',
        body: JSON.stringify({
          paths: ['secret/data/jit/legacy'],
          approvals: [{ group: 'team-a', count: 1 }],
          pending_ttl: '0s',
          require_justification: false,
        }),
        created_at: now,
        updated_at: now,
      })
      .execute()
    // The rule cache lives 2 s.
    await new Promise((r) => setTimeout(r, 2100))
    expect((await server.call('GET', 'secret/data/jit/legacy', { token: as('rita') })).status).toBe(
      403,
    )
    const id = await ask('secret/data/jit/legacy')
    const pendingUntil = Date.parse((await readRequest(id)).pending_until)
    expect(pendingUntil - Date.now()).toBeGreaterThan(23 * 3600_000)
    await act('rita', id, 'cancel')
  })
})

describe('(c) an approval that cannot count is refused, not silently dropped', () => {
  it('repro: answers 403 to root, which is in none of the approver groups, and records nothing', async () => {
    const id = await ask('secret/data/jit/one')
    const res = await act('root', id, 'approve')
    expect(res.status).toBe(403)
    expect(res.body.errors[0]).toMatch(/would not count/)
    expect(res.body.errors[0]).toContain('team-a')
    const view = await readRequest(id)
    expect(view.state).toBe('pending')
    expect(view.decisions).toEqual([])
    // A real approver still can.
    expect((await act('ann', id, 'approve')).body.data.state).toBe('active')
  })

  it('repro: answers 403 to a second approver of a factor already filled, then counts the missing factor', async () => {
    const id = await ask('secret/data/jit/two')
    expect((await act('ann', id, 'approve')).body.data.state).toBe('pending')
    const res = await act('bea', id, 'approve')
    expect(res.status).toBe(403)
    expect(res.body.errors[0]).toMatch(/would not count/)
    expect(res.body.errors[0]).toContain('team-b')
    expect((await readRequest(id)).decisions).toHaveLength(1)
    expect((await act('cy', id, 'approve')).body.data.state).toBe('active')
  })

  it('still lets root deny a request (a denial needs no approver group)', async () => {
    const id = await ask('secret/data/jit/one')
    const res = await act('root', id, 'deny', { reason: 'not now' })
    expect(res.status).toBe(200)
    expect(res.body.data.state).toBe('denied')
  })
})

describe('counting approvals (pure)', () => {
  const person = (id: string, groups: string[]): Actor => ({
    key: id,
    entityId: id,
    displayName: id,
    metadata: {},
    groups,
    mfa: false,
  })
  const rule = {
    name: 'r',
    approvals: [
      { group: 'a', count: 1 },
      { group: 'b', count: 1 },
    ],
  }

  it('counts an approval that fills a slot once someone in two groups moves to the other one', () => {
    const both = person('both', ['a', 'b'])
    const onlyA = person('only-a', ['a'])
    expect(filledSlots(rule.approvals, [both])).toBe(1)
    expect(uncountedApproval(rule, [both], onlyA)).toBeUndefined()
    expect(filledSlots(rule.approvals, [both, onlyA])).toBe(2)
  })

  it('counts one person once, whichever alias approved', () => {
    const alias1 = { ...person('p', ['a']), key: 'token:one' }
    const alias2 = { ...person('p', ['a', 'b']), key: 'token:two' }
    expect(filledSlots(rule.approvals, [alias1, alias2])).toBe(1)
  })

  it('takes any approval on a rule without factors (root approves where nothing auto-approved)', () => {
    expect(uncountedApproval({ name: 'auto', approvals: [] }, [], person('root', []))).toBe(
      undefined,
    )
  })
})

describe('(d) the unused-grants report', () => {
  it('repro: does not list a live grant seconds old as unused; lists it apart as live, and as unused once it ended', async () => {
    const id = await ask('secret/data/jit/one')
    expect((await act('ann', id, 'approve')).body.data.state).toBe('active')
    let report = (await server.call('GET', 'sys/access/report/unused')).body.data
    const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id)
    expect(ids(report.unused)).not.toContain(id)
    const live = report.live.find((r: { id: string }) => r.id === id)
    expect(live).toMatchObject({ id, live: true, state: 'active' })

    expect((await act('rita', id, 'end')).body.data.state).toBe('ended')
    report = (await server.call('GET', 'sys/access/report/unused')).body.data
    expect(ids(report.unused)).toContain(id)
    expect(ids(report.live)).not.toContain(id)
    const ended = report.unused.find((r: { id: string }) => r.id === id)
    expect(ended.live).toBe(false)
    expect(ended.ended_at).toBeTypeOf('string')
  })
})
