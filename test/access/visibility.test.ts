import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'
import { group, human } from './support.js'

/*
 * Issue 12 item 12, found again by the second adversarial pass. Repro: sid approves only the
 * `stage` rule; frank files a `prod` request with a confidential justification and a `stage`
 * one; `GET` of the stage request showed sid the prod request (id, path, justification) in
 * `requester_recent`. And someone who may not decide a request learnt its state from `approve`
 * ("the request is denied, not pending") and from `review`.
 */
describe('what a viewer of one request learns about others', () => {
  let server: TestServer
  let frank: { token: string; entityId: string }
  let bob: { token: string; entityId: string }
  let sid: { token: string; entityId: string }
  let prodId = ''
  let stageId = ''

  beforeAll(async () => {
    server = await startTestServer()
    await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
    await server.call('PUT', 'sys/policies/acl/people', {
      body: {
        policy: `path "secret/data/*" { capabilities = ["read"] }
path "sys/access/requests" { capabilities = ["update", "list"] }
path "sys/access/requests/*" { capabilities = ["read", "update"] }`,
      },
    })
    frank = await human(server, 'frank', ['people'])
    bob = await human(server, 'bob', ['people'])
    sid = await human(server, 'sid', ['people'])
    await group(server, 'dba', [bob.entityId])
    await group(server, 'stagers', [sid.entityId])
    for (const [name, glob, approvers] of [
      ['prod', 'secret/data/prod/*', 'dba'],
      ['stage', 'secret/data/stage/*', 'stagers'],
    ] as const) {
      const res = await server.call('POST', `sys/access/rules/${name}`, {
        body: { paths: [glob], approvals: [{ group: approvers, count: 1 }], max_duration: '1h' },
      })
      expect(res.status).toBe(204)
    }
    const file = async (path: string, justification: string) => {
      const res = await server.call('POST', 'sys/access/requests', {
        token: frank.token,
        body: { path, duration: '10m', justification },
      })
      expect(res.status).toBe(200)
      return res.body.data.id as string
    }
    prodId = await file('secret/data/prod/db', 'SECRET: acquisition of contoso')
    stageId = await file('secret/data/stage/db', 'load test')
  })
  afterAll(async () => {
    await server?.close()
  })

  const recentOf = async (token: string, id: string) => {
    const res = await server.call('GET', `sys/access/requests/${id}`, { token })
    expect(res.status).toBe(200)
    return (res.body.data.requester_recent as Array<{ id: string; justification: string }>).map(
      (r) => r.id,
    )
  }

  it('repro: an approver of one rule does not see the requester’s requests under another rule', async () => {
    expect(await recentOf(sid.token, stageId)).toEqual([])
    expect(await recentOf(bob.token, prodId)).toEqual([])
    const direct = await server.call('GET', `sys/access/requests/${prodId}`, { token: sid.token })
    expect(direct.status).toBe(403)
  })

  it('shows the requester their own recent requests, and root everything', async () => {
    expect(await recentOf(frank.token, stageId)).toEqual([prodId])
    expect(await recentOf(server.rootToken, prodId)).toEqual([stageId])
  })

  it('repro: someone who may not decide a request learns nothing of its state from approve or review', async () => {
    const denied = await server.call('POST', `sys/access/requests/${prodId}/deny`, {
      token: bob.token,
      body: { reason: 'not now' },
    })
    expect(denied.body.data.state).toBe('denied')
    const approve = await server.call('POST', `sys/access/requests/${prodId}/approve`, {
      token: sid.token,
    })
    expect(approve.status).toBe(403)
    expect(approve.body.errors).toEqual(['you are not an approver for this request'])
    const review = await server.call('POST', `sys/access/requests/${prodId}/review`, {
      token: sid.token,
      body: { note: 'looked' },
    })
    expect(review.status).toBe(403)
    expect(review.body.errors).toEqual(['only approvers may review a break-glass request'])
    // An approver still hears why: the request is no longer pending.
    const late = await server.call('POST', `sys/access/requests/${prodId}/approve`, {
      token: bob.token,
    })
    expect(late.status).toBe(400)
    expect(late.body.errors[0]).toContain('denied, not pending')
  })
})
