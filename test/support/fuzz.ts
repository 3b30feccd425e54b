/**
 * A seeded generator of hostile HTTP requests for the fuzz suite. The same seed gives the same
 * requests, so a failure reproduces with `STINT_FUZZ_SEED=<seed> npx vitest run test/fuzz`.
 */

/** mulberry32: a tiny, fast, seedable PRNG (not for anything but tests). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface FuzzRequest {
  method: string
  /** Path after `/v1/`, possibly with a query string; may hold raw percent garbage. */
  path: string
  headers: Record<string, string>
  body?: string
  /** Which token the request carries, for the report. */
  tokenKind: string
}

export interface FuzzTokens {
  root: string
  /** A token with the default policy only. */
  plain: string
  /** A token limited to a few uses. */
  limited: string
}

const SEGMENTS = [
  'a',
  'x',
  'foo',
  'team-a',
  'my_app',
  'v1',
  '1',
  '0',
  '-1',
  '99999999999999999999',
  'data',
  'metadata',
  'config',
  'tune',
  'login',
  'create',
  'lookup',
  'roles',
  'keys',
  '..',
  '.',
  '',
  '%',
  '%zz',
  '%00',
  '%2e%2e',
  '%2F',
  '%c3%28',
  '%ff%fe',
  '%E2%82%AC',
  '%20',
  '秘密',
  'ü',
  '😀',
  'null',
  'undefined',
  '__proto__',
  'constructor',
  'prototype',
  '*',
  '+',
  '~',
  '$',
  ';',
  ',',
  '"',
  "'",
  '<script>',
  '${x}',
  '{{x}}',
  'a b',
  '\\',
]

const SYS_PATHS = [
  'init',
  'unseal',
  'seal-status',
  'health',
  'leader',
  'mounts',
  'mounts/$',
  'mounts/$/tune',
  'mounts/$/$',
  'auth',
  'auth/$',
  'auth/$/tune',
  'policy',
  'policy/$',
  'policies/acl',
  'policies/acl/$',
  'capabilities',
  'capabilities-self',
  'capabilities-accessor',
  'key-status',
  'rotate',
  'internal/ui/mounts',
  'internal/ui/mounts/$',
  'internal/ui/mounts/secret/$',
  'leases/lookup',
  'leases/lookup/$',
  'leases/renew',
  'leases/revoke',
  'leases/revoke-prefix/$',
  'leases/revoke-force/$',
  'leases/tidy',
  'leases/count',
  'revoke/$',
  'renew/$',
  'revoke-prefix/$',
  'metrics',
  'wrapping/unwrap',
  'wrapping/lookup',
  'audit',
  'audit/$',
  'audit-hash/$',
  'seal',
  'step-down',
  'raw/$',
  'remount',
  '$',
]

const TOKEN_PATHS = [
  'create',
  'create-orphan',
  'create/$',
  'lookup',
  'lookup-self',
  'lookup-accessor',
  'renew',
  'renew-self',
  'renew-accessor',
  'revoke',
  'revoke-self',
  'revoke-accessor',
  'revoke-orphan',
  'accessors',
  'accessors/',
  'roles',
  'roles/$',
  'tidy',
  '$',
]

const KV_PATHS = [
  'data/$',
  'data/$/$',
  'metadata/$',
  'metadata/',
  'metadata/$/$',
  'delete/$',
  'undelete/$',
  'destroy/$',
  'config',
  'subkeys/$',
  '$',
]

const OTHER_PREFIXES = [
  'cubbyhole/$',
  'identity/entity',
  'identity/entity/id/$',
  'identity/group/name/$',
  'auth/approle/role/$',
  'auth/approle/login',
  'auth/jwt/login',
  'auth/userpass/login/$',
  'kv/$',
  'database/creds/$',
  '$/$',
  '$',
]

const METHODS_COMMON = ['GET', 'POST', 'PUT', 'DELETE', 'LIST', 'PATCH', 'HEAD']
const METHODS_ODD = [
  'OPTIONS',
  'PROPFIND',
  'LOCK',
  'UNLOCK',
  'MKCOL',
  'COPY',
  'MOVE',
  'SEARCH',
  'PURGE',
]
/** Methods fetch's Request refuses, only sent over a socket. */
export const SOCKET_ONLY_METHODS = ['TRACE']

const FIELD_NAMES = [
  'type',
  'options',
  'config',
  'policy',
  'policies',
  'rules',
  'ttl',
  'max_ttl',
  'explicit_max_ttl',
  'period',
  'num_uses',
  'renewable',
  'meta',
  'display_name',
  'no_parent',
  'no_default_policy',
  'id',
  'token',
  'accessor',
  'increment',
  'paths',
  'path',
  'key',
  'reset',
  'secret_shares',
  'secret_threshold',
  'data',
  'version',
  'versions',
  'cas',
  'max_versions',
  'cas_required',
  'delete_version_after',
  'description',
  'default_lease_ttl',
  'max_lease_ttl',
  'list',
  'lease_id',
  'prefix',
  'role_id',
  'secret_id',
  'bound_cidrs',
  'token_policies',
  'token_ttl',
  'token_type',
  'token_bound_cidrs',
  'username',
  'password',
  'role',
  'jwt',
  'name',
  'metadata',
  'custom_metadata',
  'sync',
  'local',
  'seal_wrap',
  'listing_visibility',
  'type',
  'options',
  'audit_non_hmac_request_keys',
  'user_claim',
  'bound_audiences',
  'policy_ids',
  'member_entity_ids',
]

/** Mount types the fuzzer may enable: never ones that dial the network. */
const MOUNT_TYPES = [
  'kv',
  'kv-v2',
  'generic',
  'approle',
  'jwt',
  'nope',
  '',
  'system',
  'token',
  'cubbyhole',
]

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/merge-patch+json',
  'multipart/form-data',
  'application/xml',
  '',
  'garbage/x',
  'application/json; charset=latin1',
]

/** Paths that would stop the server from answering the rest of the run (not bugs). */
const DISRUPTIVE = /^(sys\/(seal|step-down|audit|raw)|auth\/token\/revoke-self)/

export function createFuzzer(seed: number, tokens: FuzzTokens) {
  const rand = prng(seed)
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
  const chance = (p: number) => rand() < p

  const segment = (): string => {
    if (chance(0.02)) return 'L'.repeat(1000 + int(6000))
    return pick(SEGMENTS)
  }
  const fill = (template: string) => template.replace(/\$/g, () => segment())

  function path(): string {
    const family = int(5)
    let p: string
    if (family === 0) p = `sys/${fill(pick(SYS_PATHS))}`
    else if (family === 1) p = `auth/token/${fill(pick(TOKEN_PATHS))}`
    else if (family === 2) p = `secret/${fill(pick(KV_PATHS))}`
    else if (family === 3) p = fill(pick(OTHER_PREFIXES))
    else p = Array.from({ length: 1 + int(6) }, segment).join('/')
    if (chance(0.1)) p = p.replace(/\/[^/]*$/, '/..$&')
    if (chance(0.05)) p = `${p}/`
    if (chance(0.15)) p += `?${query()}`
    return p
  }

  function query(): string {
    const parts: string[] = []
    for (let i = 0; i < 1 + int(3); i++) {
      const key = pick([
        'list',
        'version',
        'token',
        'standbyok',
        'activecode',
        'sealedcode',
        'uninitcode',
        'cas',
        'x',
        '%zz',
      ])
      const value = pick([
        'true',
        '1',
        't',
        'banana',
        '',
        '-1',
        '999',
        '2.5',
        'null',
        '%',
        '%c3%28',
        'x'.repeat(200),
      ])
      parts.push(`${key}=${value}`)
    }
    return parts.join('&')
  }

  function scalar(depth = 0): unknown {
    switch (int(depth > 3 ? 8 : 11)) {
      case 0:
        return null
      case 1:
        return chance(0.5)
      case 2:
        return int(1000) - 100
      case 3:
        return pick([1e308, -1e308, 2 ** 53 + 1, 0.5, -0, 1e-300, 4294967296])
      case 4:
        return pick([
          '',
          ' ',
          '0',
          'true',
          '1h',
          '-5s',
          '768h',
          '99999999h',
          'default',
          'root',
          'kv',
        ])
      case 5:
        return pick(MOUNT_TYPES)
      case 6:
        return pick([
          '秘密の値',
          'ünïcödé',
          '😀😀',
          '\u0000',
          '\ud800',
          'a\nb\tc',
          '"quoted"',
          '<script>',
        ])
      case 7:
        return 'S'.repeat(int(3) === 0 ? 100_000 + int(400_000) : int(300))
      case 8:
        return Array.from({ length: int(4) }, () => scalar(depth + 1))
      case 9:
        return object(depth + 1)
      default:
        return Array.from({ length: int(3) }, () => pick(['default', 'root', 'a', 'b', '*']))
    }
  }

  function object(depth = 0): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (let i = 0; i < int(6); i++) {
      const key = chance(0.85)
        ? pick(FIELD_NAMES)
        : pick(['', '__proto__', 'constructor', '秘密', 'x'.repeat(500)])
      out[key] = scalar(depth)
    }
    return out
  }

  function body(): string | undefined {
    switch (int(12)) {
      case 0:
        return undefined
      case 1:
        return ''
      case 2: {
        const text = JSON.stringify(object())
        return text.slice(0, int(text.length))
      }
      case 3:
        return pick([
          '{',
          '{"a":}',
          '{"a" 1}',
          'nul',
          '[1,',
          '}{',
          '\u0000\u0001',
          '{"a":"\\x"}',
          '{"a":1,}',
        ])
      case 4:
        return pick(['null', '[]', '"string"', '123', 'true', '[{"a":1}]', '{}'])
      case 5: {
        const d = 1000 + int(20_000)
        return `${'['.repeat(d)}${']'.repeat(d)}`
      }
      case 6: {
        const d = 1000 + int(20_000)
        return `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`
      }
      case 7:
        return JSON.stringify({ data: object(1), options: object(1) })
      case 8:
        return 'a=1&b=2&policies=root&type=kv&ttl=-1'
      case 9:
        return JSON.stringify({ data: { v: 'x'.repeat(200_000 + int(800_000)) } })
      default:
        return JSON.stringify(object())
    }
  }

  function headers(kind: string): Record<string, string> {
    const h: Record<string, string> = {}
    const token =
      kind === 'root'
        ? tokens.root
        : kind === 'plain'
          ? tokens.plain
          : kind === 'limited'
            ? tokens.limited
            : kind === 'garbage'
              ? pick([
                  'x',
                  'sts.',
                  'sts.' + 'A'.repeat(600),
                  'hvs.abc',
                  '../../etc/passwd',
                  "' OR 1=1 --",
                  'null',
                  'Bearer x',
                ])
              : ''
    if (token) {
      if (chance(0.7)) h['X-Vault-Token'] = token
      else h.Authorization = `Bearer ${token}`
    }
    if (chance(0.1))
      h.Authorization = pick([
        'Bearer',
        'Bearer ',
        'Basic Zm9vOmJhcg==',
        'bearer sts.nope',
        'Token x',
      ])
    if (chance(0.2)) h['X-Vault-Namespace'] = pick(['', 'root', 'root/', '/', 'ns1', 'a/b/c', ' '])
    if (chance(0.05)) h['X-Vault-Wrap-TTL'] = pick(['5m', '-1', 'x', '0'])
    if (chance(0.1)) h['X-Vault-Request'] = 'true'
    if (chance(0.7)) h['Content-Type'] = pick(CONTENT_TYPES)
    return h
  }

  /** Well-formed requests, so the run also reaches the success paths of real handlers. */
  function valid(): FuzzRequest {
    const name = pick(['a', 'b', 'team/x', 'ü'])
    const templates: Array<[string, string, unknown]> = [
      ['POST', `secret/data/${name}`, { data: object(1) }],
      ['GET', `secret/data/${name}`, undefined],
      ['LIST', 'secret/metadata/', undefined],
      ['POST', 'auth/token/create', { policies: ['default'], ttl: pick(['1h', '10m', 60]) }],
      ['GET', 'auth/token/lookup-self', undefined],
      [
        'PUT',
        `sys/policy/fuzz-${int(5)}`,
        { policy: 'path "secret/*" { capabilities = ["read"] }' },
      ],
      ['GET', 'sys/mounts', undefined],
      ['POST', 'sys/capabilities-self', { paths: [`secret/data/${name}`] }],
      ['GET', 'sys/health', undefined],
    ]
    const [method, p, b] = pick(templates)
    return {
      method,
      path: p,
      headers: { 'X-Vault-Token': tokens.root, 'Content-Type': 'application/json' },
      body: b === undefined ? undefined : JSON.stringify(b),
      tokenKind: 'root',
    }
  }

  /** The next request. `inProcess` leaves out what fetch's Request cannot express. */
  function next(inProcess: boolean): FuzzRequest {
    if (chance(0.1)) return valid()
    const methods = chance(0.85)
      ? METHODS_COMMON
      : inProcess
        ? METHODS_ODD
        : [...METHODS_ODD, ...SOCKET_ONLY_METHODS]
    const method = pick(methods)
    const p = path()
    let tokenKind = pick(['root', 'root', 'root', 'plain', 'limited', 'garbage', 'none'])
    if (DISRUPTIVE.test(normalise(p))) tokenKind = pick(['garbage', 'none'])
    let b = method === 'GET' || method === 'HEAD' ? undefined : body()
    if (!inProcess && b !== undefined && b.length > 2_000_000) b = b.slice(0, 2_000_000)
    return { method, path: p, headers: headers(tokenKind), body: b, tokenKind }
  }

  return { next }
}

/** The logical path the server will see (dot segments resolved, percent-decoding tolerated). */
export function normalise(path: string): string {
  let pathname: string
  try {
    pathname = new URL(`/v1/${path}`, 'http://x').pathname.slice(4)
  } catch {
    return path
  }
  try {
    return decodeURIComponent(pathname)
  } catch {
    return pathname
  }
}

/** A short, printable description of a request for failure reports. */
export function describeRequest(r: FuzzRequest): string {
  const p = r.path.length > 120 ? `${r.path.slice(0, 120)}…(${r.path.length})` : r.path
  const b =
    r.body === undefined
      ? '-'
      : r.body.length > 80
        ? `${r.body.slice(0, 80)}…(${r.body.length})`
        : r.body
  return `${r.method} /v1/${p} token=${r.tokenKind} body=${b}`
}
