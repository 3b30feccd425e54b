import { afterEach, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from '../support/server.js'

let server: TestServer
afterEach(async () => {
  await server?.close()
})

/** Strict Prometheus text exposition (0.0.4) check, line by line; returns the samples. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*'
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
  const sample = new RegExp(
    `^(${name})(\\{${label}(?:,${label})*\\})? (-?[0-9.e+-]+|NaN|\\+Inf|-Inf)$`,
  )
  const comment = new RegExp(
    `^# (HELP ${name} .*|TYPE ${name} (counter|gauge|histogram|summary|untyped))$`,
  )
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('#')) {
      if (!comment.test(line)) throw new Error(`bad comment line: ${line}`)
      continue
    }
    const m = sample.exec(line)
    if (!m) throw new Error(`bad sample line: ${line}`)
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]))
  }
  return samples
}

const scrape = async (s: TestServer) => {
  const res = await s.call('GET', 'sys/metrics?format=prometheus')
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
  return parsePrometheus(res.body as string)
}

const kvWrites = (m: Map<string, number>) =>
  [...m].find(
    ([k]) =>
      k.startsWith('stint_http_requests_total{') &&
      k.includes('mount_type="kv"') &&
      k.includes('method="POST"'),
  )?.[1] ?? 0

describe('sys/metrics', () => {
  it('serves Prometheus text whose request counter moves with the requests made', async () => {
    server = await startTestServer()
    const before = kvWrites(await scrape(server))
    for (let i = 0; i < 3; i++)
      await server.call('POST', `secret/data/m${i}`, { body: { data: { v: 'x' } } })
    const after = await scrape(server)
    expect(kvWrites(after) - before).toBe(3)
    expect(after.get('stint_sealed')).toBe(0)
    expect(after.get('stint_tokens')).toBeGreaterThanOrEqual(1)
    const histogram = [...after.keys()].find((k) =>
      k.startsWith('stint_http_request_duration_seconds_count{'),
    )
    expect(histogram).toBeDefined()
  })

  it('labels requests by route pattern, never by the raw path', async () => {
    server = await startTestServer()
    await server.call('POST', 'secret/data/customer-4711', { body: { data: { v: 'x' } } })
    const text = (await server.call('GET', 'sys/metrics?format=prometheus')).body as string
    expect(text).not.toContain('customer-4711')
    expect(text).toContain('route="^data\\\\/(?<path>.*)$"')
  })

  it('counts tokens and reports revocation lag and failures reported by the lease manager', async () => {
    server = await startTestServer()
    const t0 = (await scrape(server)).get('stint_tokens')!
    await server.call('POST', 'auth/token/create', { body: { policies: ['default'] } })
    server.services.metrics.observeRevocation(1500)
    server.services.metrics.revocationFailure('database/')
    const m = await scrape(server)
    expect(m.get('stint_tokens')).toBe(t0 + 1)
    expect(m.get('stint_lease_revocation_lag_seconds_count')).toBe(1)
    expect(m.get('stint_lease_revocation_lag_seconds_sum')).toBe(1.5)
    expect(m.get('stint_lease_revocation_failures_total{mount="database/"}')).toBe(1)
  })

  it('counts leases by mount and state at scrape time', async () => {
    server = await startTestServer()
    const row = (id: string, mount: string, state: string) => ({
      id,
      mount_accessor: `acc-${mount}`,
      mount_path: mount,
      path: `${mount}creds/r`,
      token_id: 't',
      state,
      ttl: 60,
      issue_time: 0,
      expire_time: 0,
      max_expire_time: 0,
      last_renewal: null,
      renewable: 1,
      internal: '',
      target_key: mount,
      attempts: 0,
      next_attempt_at: 0,
      last_error: null,
      claimed_by: null,
      claim_until: null,
    })
    await server.storage.db
      .insertInto('leases')
      .values([
        row('database/creds/r/a', 'database/', 'active'),
        row('database/creds/r/b', 'database/', 'active'),
        row('database/creds/r/c', 'database/', 'irrevocable'),
        row('db2/creds/r/d', 'db2/', 'pending'),
      ] as never)
      .execute()
    const m = await scrape(server)
    expect(m.get('stint_leases{mount="database/",state="active"}')).toBe(2)
    expect(m.get('stint_leases{mount="database/",state="irrevocable"}')).toBe(1)
    expect(m.get('stint_leases{mount="db2/",state="pending"}')).toBe(1)
  })

  it('is protected by policy: no token, or a token without read on sys/metrics, is denied', async () => {
    server = await startTestServer()
    expect(
      (await server.call('GET', 'sys/metrics?format=prometheus', { token: null })).status,
    ).toBe(403)
    const plain = await server.call('POST', 'auth/token/create', {
      body: { policies: ['default'] },
    })
    const token = plain.body.auth.client_token
    expect((await server.call('GET', 'sys/metrics?format=prometheus', { token })).status).toBe(403)
    await server.call('PUT', 'sys/policies/acl/metrics', {
      body: { policy: 'path "sys/metrics" { capabilities = ["read"] }' },
    })
    const ok = await server.call('POST', 'auth/token/create', { body: { policies: ['metrics'] } })
    const res = await server.call('GET', 'sys/metrics?format=prometheus', {
      token: ok.body.auth.client_token,
    })
    expect(res.status).toBe(200)
  })

  it('answers JSON without a format, and 400 for an unknown format', async () => {
    server = await startTestServer()
    const res = await server.call('GET', 'sys/metrics')
    expect(res.status).toBe(200)
    expect(res.body.metrics.map((m: { name: string }) => m.name)).toContain(
      'stint_http_requests_total',
    )
    expect((await server.call('GET', 'sys/metrics?format=xml')).status).toBe(400)
  })

  it('keeps separate counters for separate servers in one process', async () => {
    server = await startTestServer()
    const other = await startTestServer()
    try {
      await other.call('POST', 'secret/data/x', { body: { data: { v: 'x' } } })
      expect(kvWrites(await scrape(server))).toBe(0)
    } finally {
      await other.close()
    }
  })
})
