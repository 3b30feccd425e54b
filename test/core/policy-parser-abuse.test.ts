import { Writable } from 'node:stream'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/core/logger.js'
import {
  configureHclParser,
  DEFAULT_HCL_TIMEOUT_MS,
  HclParserCrashError,
  hclWorkersStarted,
  parseHclOffThread,
} from '../../src/core/policy/hcl.js'
import { startTestServer, type TestServer } from '../support/server.js'

// Issue 12 item 6: "Two policy writes break policy parsing for the whole process". An HCL policy
// nested 5,000 deep answered 400 (stack overflow in the Go parser), one nested 50,000 deep never
// answered; after both, the Go runtime in the parser worker had exited, every later HCL write
// failed with "Go program has already exited", and every non-root token was denied, even
// auth/token/lookup-self, until restart.

/** Fails the test when `promise` has not settled within `ms`. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

const deepBlocks = (n: number) => `path "secret/*" {\n${'a {\n'.repeat(n)}${'}\n'.repeat(n)}}\n`
const deepObjects = (n: number) =>
  `path "secret/*" {\n  allowed_parameters = ${'{a = '.repeat(n)}1${'}'.repeat(n)}\n}\n`
const deepLists = (n: number) => `x = ${'['.repeat(n)}${']'.repeat(n)}\n`
const deepTemplates = (n: number) => `x = ${'"${'.repeat(n)}1${'}"'.repeat(n)}\n`
const longNot = (n: number) => `x = ${'!'.repeat(n)}true\n`
const longConditional = (n: number) => `x = ${'true ? 1 : '.repeat(n)}2\n`

/** A valid ACL policy of about `bytes` that grants read on secret/data/app/*: slow to parse. */
function bigPolicy(bytes: number): string {
  const blocks = ['path "secret/data/app/*" { capabilities = ["read"] }\n']
  for (let i = 0, size = 0; size < bytes; i++) {
    const block = `path "secret/data/team-${i}/*" {\n  capabilities = ["read", "list"]\n}\n`
    blocks.push(block)
    size += block.length
  }
  return blocks.join('')
}

const PASSWORD_POLICY = 'length = 20\nrule "charset" {\n  charset = "abcdefghij0123456789"\n}\n'

describe('policy parser abuse (issue 12 item 6)', () => {
  let server: TestServer
  const logLines: string[] = []

  beforeAll(async () => {
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk))
        done()
      },
    })
    server = await startTestServer({ logger: createLogger('debug', stream) })
    const seeded = await server.call('POST', 'secret/data/app/config', {
      body: { data: { v: '1' } },
    })
    expect(seeded.status).toBe(200)
  })
  afterAll(async () => {
    await server?.close()
  })

  const putAcl = (name: string, policy: string) =>
    within(
      10_000,
      server.call('PUT', `sys/policies/acl/${name}`, { body: { policy } }),
      `PUT sys/policies/acl/${name}`,
    )
  const putPassword = (name: string, policy: string) =>
    within(
      10_000,
      server.call('PUT', `sys/policies/password/${name}`, { body: { policy } }),
      `PUT sys/policies/password/${name}`,
    )

  async function tokenWith(policy: string): Promise<string> {
    const created = await server.call('POST', 'auth/token/create', {
      body: { policies: [policy] },
    })
    expect(created.status, JSON.stringify(created.body)).toBe(200)
    return created.body.auth.client_token as string
  }

  /** A non-root token can look itself up and read what its policy allows, after a re-parse. */
  async function expectPolicyParsingWorks(label: string) {
    const normal = await putAcl(
      `reader-${label}`,
      'path "secret/data/app/*" { capabilities = ["read"] }',
    )
    expect(normal.status, JSON.stringify(normal.body)).toBe(204)
    const token = await tokenWith(`reader-${label}`)
    // What another node's write does: every cached policy is parsed again from storage.
    server.services.policies.invalidate()
    const self = await server.call('GET', 'auth/token/lookup-self', { token })
    expect(self.status, JSON.stringify(self.body)).toBe(200)
    const read = await server.call('GET', 'secret/data/app/config', { token })
    expect(read.status, JSON.stringify(read.body)).toBe(200)
    expect(read.body.data.data).toEqual({ v: '1' })
    const refused = await server.call('GET', 'sys/mounts', { token })
    expect(refused.status).toBe(403)
  }

  it('refuses ACL policies nested 5,000 and 50,000 deep with a quick 400, and parsing keeps working after', async () => {
    for (const depth of [5_000, 50_000]) {
      for (const [shape, text] of [
        ['blocks', deepBlocks(depth)],
        ['objects', deepObjects(depth)],
      ] as const) {
        const res = await putAcl(`deep-${shape}-${depth}`, text)
        expect(res.status, `${shape} ${depth}: ${JSON.stringify(res.body)}`).toBe(400)
        expect(Object.keys(res.body)).toEqual(['errors'])
        expect(res.body.errors[0]).toMatch(/^failed to parse policy: .*nest/)
      }
    }
    await expectPolicyParsingWorks('after-deep')
    expect((await server.call('GET', 'sys/policies/acl/deep-blocks-5000')).status).toBe(404)
  })

  it('refuses the other shapes that recurse in the Go parser: lists, templates, ! chains, conditionals', async () => {
    for (const text of [
      deepLists(20_000),
      deepTemplates(20_000),
      longNot(100_000),
      longConditional(50_000),
    ]) {
      const res = await putAcl('deep-other', text)
      expect(res.status, JSON.stringify(res.body)).toBe(400)
      expect(res.body.errors[0]).toMatch(/^failed to parse policy: .*nest/)
    }
    await expectPolicyParsingWorks('after-other')
  })

  it('refuses password policies nested 5,000 and 50,000 deep with a quick 400, and both kinds of policy still parse after', async () => {
    const inCharsetRule = (value: string) =>
      `length = 20\nrule "charset" {\n  charset = "abc"\n  min-chars = ${value}\n}\n`
    for (const text of [
      inCharsetRule(`${'{a = '.repeat(5_000)}1${'}'.repeat(5_000)}`),
      // 50,000 deep fits the 64 KiB password policy limit only unclosed.
      inCharsetRule('['.repeat(50_000)),
      inCharsetRule(`${'!'.repeat(50_000)}1`),
      `length = 20\n${'rule "charset" {\n'.repeat(3_000)}${'}\n'.repeat(3_000)}`,
    ]) {
      const res = await putPassword('deep', text)
      expect(res.status, JSON.stringify(res.body)).toBe(400)
      expect(res.body.errors[0]).toMatch(/^failed to parse password policy: .*nest/)
    }
    const ok = await putPassword('plain', PASSWORD_POLICY)
    expect(ok.status, JSON.stringify(ok.body)).toBe(204)
    const generated = await server.call('GET', 'sys/policies/password/plain/generate')
    expect(generated.status, JSON.stringify(generated.body)).toBe(200)
    expect(generated.body.data.password).toMatch(/^[a-j0-9]{20}$/)
    await expectPolicyParsingWorks('after-password')
  })

  afterEach(() => {
    configureHclParser({ timeoutMs: DEFAULT_HCL_TIMEOUT_MS })
  })

  /** The log lines at error level that name `policy`, parsed. */
  const errorsNaming = (policy: string) =>
    logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 50 && l.policy === policy)

  async function failureCount(type: string, reason: string): Promise<number> {
    const res = await server.call('GET', 'sys/metrics?format=prometheus')
    expect(res.status).toBe(200)
    const line = String(res.body)
      .split('\n')
      .find((l) =>
        l.startsWith(`stint_policy_load_failures_total{type="${type}",reason="${reason}"}`),
      )
    return line ? Number(line.split(' ').pop()) : 0
  }

  it('replaces the parser worker when a text kills its Go runtime, so the next parse and the server work', async () => {
    // Straight to the worker, past the nesting check: what a shape the check misses would do.
    await expect(parseHclOffThread('policy.hcl', 'a = 1')).resolves.toEqual({ a: 1 })
    const before = hclWorkersStarted()
    await expect(parseHclOffThread('policy.hcl', deepBlocks(5_000))).rejects.toBeInstanceOf(
      HclParserCrashError,
    )
    // The dead runtime's worker is gone; the next parse starts a new one and works.
    await expect(parseHclOffThread('policy.hcl', 'a = 1')).resolves.toEqual({ a: 1 })
    expect(hclWorkersStarted()).toBe(before + 1)
    await expectPolicyParsingWorks('after-crash')
  })

  it('stops a parse that runs past the timeout, answers 503 at once, and replaces the worker for the next parse', async () => {
    const text = bigPolicy(900_000)
    await expect(parseHclOffThread('policy.hcl', 'a = 1')).resolves.toEqual({ a: 1 })
    const before = hclWorkersStarted()
    configureHclParser({ timeoutMs: 50 })
    const res = await putAcl('slow', text)
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(503)
    expect(res.body.errors).toEqual([
      'policy parser unavailable: the HCL parser took longer than 0.05 s and was restarted',
    ])
    expect((await server.call('GET', 'sys/policies/acl/slow')).status).toBe(404)
    configureHclParser({ timeoutMs: DEFAULT_HCL_TIMEOUT_MS })
    await expectPolicyParsingWorks('after-timeout')
    // The stuck worker was terminated, not waited for: the parses since ran on a new one.
    expect(hclWorkersStarted()).toBe(before + 1)
  })

  it('logs and counts a stored ACL policy that no longer parses, which then grants nothing', async () => {
    const write = await putAcl('corrupt', 'path "secret/data/app/*" { capabilities = ["read"] }')
    expect(write.status).toBe(204)
    const token = await tokenWith('corrupt')
    expect((await server.call('GET', 'secret/data/app/config', { token })).status).toBe(200)
    const counted = await failureCount('acl', 'invalid')
    // Rows written before the nesting limit, or edited in storage: a syntax error, and the
    // 5,000-deep text that used to kill the parser for the whole process.
    for (const body of ['path "secret/data/app/*" { capabilities = [', deepBlocks(5_000)]) {
      await server.storage.db
        .updateTable('policies')
        .set({ body })
        .where('name', '=', 'corrupt')
        .execute()
      server.services.policies.invalidate()
      const denied = await server.call('GET', 'secret/data/app/config', { token })
      expect(denied.status).toBe(403)
      // The token's default policy still parses: only the broken one grants nothing.
      expect((await server.call('GET', 'auth/token/lookup-self', { token })).status).toBe(200)
    }
    expect(await failureCount('acl', 'invalid')).toBe(counted + 2)
    const logged = errorsNaming('corrupt')
    expect(logged).toHaveLength(2)
    expect(logged[0]!.msg).toBe(
      'stored ACL policy does not parse: it grants nothing until it is rewritten',
    )
    expect(logged[0]!.reason).toBe('invalid')
    expect(JSON.stringify(logged)).not.toContain('capabilities')
    // A rewrite clears it.
    expect(
      (await putAcl('corrupt', 'path "secret/data/app/*" { capabilities = ["read"] }')).status,
    ).toBe(204)
    expect((await server.call('GET', 'secret/data/app/config', { token })).status).toBe(200)
  })

  it('does not cache a stored ACL policy as empty when the parser gave no answer: 503, then the next use parses again', async () => {
    const write = await putAcl('slow-stored', bigPolicy(900_000))
    expect(write.status, JSON.stringify(write.body)).toBe(204)
    const token = await tokenWith('slow-stored')
    const counted = await failureCount('acl', 'unavailable')
    configureHclParser({ timeoutMs: 50 })
    server.services.policies.invalidate()
    const unavailable = await within(
      10_000,
      server.call('GET', 'secret/data/app/config', { token }),
      'read while the parser times out',
    )
    expect(unavailable.status, JSON.stringify(unavailable.body)).toBe(503)
    expect(unavailable.body.errors[0]).toMatch(/^policy parser unavailable: /)
    expect(await failureCount('acl', 'unavailable')).toBe(counted + 1)
    expect(errorsNaming('slow-stored').map((l) => l.reason)).toEqual(['unavailable'])
    configureHclParser({ timeoutMs: DEFAULT_HCL_TIMEOUT_MS })
    // Within the cache lifetime (30 s), without an invalidation: parsed again, and it grants.
    const read = await server.call('GET', 'secret/data/app/config', { token })
    expect(read.status, JSON.stringify(read.body)).toBe(200)
  })

  it('logs and counts a stored password policy that no longer parses, and answers a clear 400 for it', async () => {
    expect((await putPassword('corrupt-pw', PASSWORD_POLICY)).status).toBe(204)
    const counted = await failureCount('password', 'invalid')
    const deep = `length = 20\nrule "charset" {\n  charset = ${'{a = '.repeat(5_000)}1${'}'.repeat(5_000)}\n}\n`
    for (const body of ['length = 20\nrule "charset" {', deep]) {
      await server.storage.db
        .updateTable('password_policies')
        .set({ body })
        .where('name', '=', 'corrupt-pw')
        .execute()
      const res = await within(
        10_000,
        server.call('GET', 'sys/policies/password/corrupt-pw/generate'),
        'generate from a corrupt password policy',
      )
      expect(res.status, JSON.stringify(res.body)).toBe(400)
      expect(res.body.errors[0]).toMatch(/^failed to parse password policy: /)
    }
    expect(await failureCount('password', 'invalid')).toBe(counted + 2)
    const logged = errorsNaming('corrupt-pw')
    expect(logged.map((l) => l.msg)).toEqual([
      'stored password policy does not parse: nothing can use it until it is rewritten',
      'stored password policy does not parse: nothing can use it until it is rewritten',
    ])
    // The parser still works for everyone else.
    expect((await putPassword('corrupt-pw', PASSWORD_POLICY)).status).toBe(204)
    expect((await server.call('GET', 'sys/policies/password/corrupt-pw/generate')).status).toBe(200)
  })

  it('answers 503 for a stored password policy while the parser gives no answer, and parses it again on the next use', async () => {
    expect((await putPassword('slow-pw', PASSWORD_POLICY)).status).toBe(204)
    // A valid policy never parsed by this node (parses are memoised by text), slow enough to
    // parse that a 1 ms timeout always fires.
    const rules = 'rule "charset" {\n  charset = "abcdefghij0123456789"\n}\n'.repeat(1_200)
    await server.storage.db
      .updateTable('password_policies')
      .set({ body: `length = 20\n${rules}` })
      .where('name', '=', 'slow-pw')
      .execute()
    const counted = await failureCount('password', 'unavailable')
    configureHclParser({ timeoutMs: 1 })
    const res = await within(
      10_000,
      server.call('GET', 'sys/policies/password/slow-pw/generate'),
      'generate while the parser times out',
    )
    expect(res.status, JSON.stringify(res.body)).toBe(503)
    expect(res.body.errors[0]).toMatch(/^policy parser unavailable: /)
    expect(await failureCount('password', 'unavailable')).toBe(counted + 1)
    expect(errorsNaming('slow-pw').map((l) => l.reason)).toEqual(['unavailable'])
    configureHclParser({ timeoutMs: DEFAULT_HCL_TIMEOUT_MS })
    const again = await server.call('GET', 'sys/policies/password/slow-pw/generate')
    expect(again.status, JSON.stringify(again.body)).toBe(200)
  })
})
