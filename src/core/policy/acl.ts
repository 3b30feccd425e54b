import { isDeepStrictEqual } from 'node:util'
import type { Operation } from '../request.js'
import type { Policy, PolicyCapability, PolicyRule } from './parse.js'

/** A capability as reported by `sys/capabilities*`: a policy capability, or `root`. */
export type Capability = PolicyCapability | 'root'

/** The token's identity, used to resolve `{{identity...}}` templates in policy paths. */
export interface AclContext {
  entityId?: string
  entityName?: string
  /** Entity metadata, for `{{identity.entity.metadata.<key>}}`. */
  metadata?: Record<string, string>
  groupIds?: string[]
  /** Groups with names, for `{{identity.groups.ids.<id>.name}}` and `...names.<name>.id`. */
  groups?: { id: string; name: string }[]
}

export interface AclCheckOptions {
  /** The path is root-protected: the winning rule must also grant `sudo`. */
  sudo?: boolean
  /**
   * Request data. When given, `required_parameters`, `denied_parameters` and
   * `allowed_parameters` of the winning rule are enforced (read, create, update, patch).
   */
  data?: Record<string, unknown>
}

export interface AclResult {
  allowed: boolean
  /** The winning rule grants `sudo` (always true for root). */
  rootPrivs: boolean
  /** Policies whose rule granted the needed capability (empty when denied). */
  grantingPolicies: string[]
}

/**
 * The compiled access rules of one token: every policy merged, matched the way Vault does.
 *
 * Matching: an exact rule for the path wins; otherwise the single most specific glob wins
 * (later first `+`/`*`, then not ending in `*`, then fewer `+` segments, then longer, then
 * lexicographically larger). Rules for the identical pattern across policies are merged, and a
 * `deny` in any of them makes the merged rule deny-only. LIST requests also try the path without
 * its trailing `/` first. No matching rule means denied.
 */
export interface Acl {
  /** The token holds the `root` policy: everything is allowed. */
  readonly root: boolean
  /** Capabilities on a path as `sys/capabilities-self` reports them (sorted; `['deny']` if none). */
  capabilities(path: string): Capability[]
  /** Decides one request. */
  check(path: string, operation: Operation, opts?: AclCheckOptions): AclResult
  /**
   * Whether any rule grants something at or below a mount path (ending in `/`), as the
   * `sys/internal/ui/mounts` pre-flight check requires.
   */
  hasAnyUnder(mountPath: string): boolean
}

const READ = 1
const LIST = 2
const CREATE = 4
const UPDATE = 8
const DELETE = 16
const PATCH = 32
const SUDO = 64
const DENY = 128

const CAP_BITS: Record<PolicyCapability, number> = {
  read: READ,
  list: LIST,
  create: CREATE,
  update: UPDATE,
  delete: DELETE,
  patch: PATCH,
  sudo: SUDO,
  deny: DENY,
}
const CAP_NAMES = (Object.entries(CAP_BITS) as [PolicyCapability, number][]).sort(([a], [b]) =>
  a < b ? -1 : 1,
)
const OP_BITS: Record<Operation, number> = {
  read: READ,
  list: LIST,
  create: CREATE,
  update: UPDATE,
  delete: DELETE,
  patch: PATCH,
}
const PARAMETER_OPS = new Set<Operation>(['read', 'create', 'update', 'patch'])

interface Perms {
  bits: number
  /** Capability bit → policies that granted it. */
  granting: Map<number, string[]>
  allowed?: Map<string, unknown[]>
  denied?: Map<string, unknown[]>
  required?: string[]
}

interface GlobRule {
  perms: Perms
  /** Position of the first `+` or `*`. */
  firstWildcard: number
  isPrefix: boolean
  wildcards: number
  /** Pattern without its trailing `*`. */
  base: string
  /** Segments of `base` when the pattern has `+` segments. */
  parts?: string[]
}

const ROOT_ACL: Acl = Object.freeze({
  root: true,
  capabilities: (): Capability[] => ['root'],
  check: (): AclResult => ({ allowed: true, rootPrivs: true, grantingPolicies: ['root'] }),
  hasAnyUnder: () => true,
})

/**
 * Compiles policies into an {@link Acl}. Templated paths are resolved against `ctx`; a rule whose
 * template cannot be resolved is dropped. A `root` policy makes the ACL allow everything.
 */
export function compileAcl(policies: Policy[], ctx: AclContext = {}): Acl {
  if (policies.some((p) => p.name === 'root')) return ROOT_ACL
  const exact = new Map<string, Perms>()
  const globPerms = new Map<string, Perms>()
  for (const policy of policies) {
    for (const rule of policy.rules) {
      const path = policy.templated ? resolveTemplates(rule.path, ctx) : rule.path
      if (path === undefined) continue
      const table = path.endsWith('*') || path.split('/').includes('+') ? globPerms : exact
      mergeRule(table, path, rule, policy.name)
    }
  }
  const globs = [...globPerms].map(([pattern, perms]) => describeGlob(pattern, perms))
  globs.sort(byPriority)
  return createAcl(exact, globs)
}

function createAcl(exact: Map<string, Perms>, globs: GlobRule[]): Acl {
  // Plain prefix rules are found by probing each distinct prefix length (longest first), like
  // Vault's radix tree; only `+` rules are scanned, in priority order.
  const prefixes = new Map<string, GlobRule>()
  for (const glob of globs) if (!glob.parts) prefixes.set(glob.base, glob)
  const prefixLengths = [...new Set([...prefixes.keys()].map((k) => k.length))].sort(
    (a, b) => b - a,
  )
  const segmentGlobs = globs.filter((g) => g.parts)

  const matchGlob = (path: string): Perms | undefined => {
    let prefix: GlobRule | undefined
    for (const length of prefixLengths) {
      if (length > path.length) continue
      prefix = prefixes.get(path.slice(0, length))
      if (prefix) break
    }
    if (segmentGlobs.length > 0) {
      const pathParts = path.split('/')
      for (const glob of segmentGlobs) {
        if (prefix && byPriority(glob, prefix) > 0) break
        if (matchSegments(glob, pathParts)) return glob.perms
      }
    }
    return prefix?.perms
  }

  const find = (rawPath: string, operation: Operation): Perms | undefined => {
    const path = rawPath.replace(/^\/+/, '')
    const direct = exact.get(path)
    if (direct) return direct
    if (operation === 'list' && path.endsWith('/')) {
      const trimmed = path.slice(0, -1)
      const found = exact.get(trimmed) ?? matchGlob(trimmed)
      if (found) return found
    }
    return matchGlob(path)
  }

  // Vault reports capabilities as a LIST would see them (trailing-slash fallback included).
  const capabilities = (path: string): Capability[] => {
    const perms = find(path, 'list')
    if (!perms || perms.bits & DENY || perms.bits === 0) return ['deny']
    return CAP_NAMES.filter(([, bit]) => perms.bits & bit).map(([name]) => name)
  }

  return {
    root: false,
    capabilities,
    check(path, operation, opts = {}) {
      const perms = find(path, operation)
      if (!perms) return { allowed: false, rootPrivs: false, grantingPolicies: [] }
      const rootPrivs = (perms.bits & SUDO) !== 0
      const bit = OP_BITS[operation]
      const denied = { allowed: false, rootPrivs, grantingPolicies: [] }
      if (!(perms.bits & bit)) return denied
      if (opts.sudo && !rootPrivs) return denied
      if (opts.data && PARAMETER_OPS.has(operation) && !parametersAllowed(perms, opts.data)) {
        return denied
      }
      return { allowed: true, rootPrivs, grantingPolicies: [...(perms.granting.get(bit) ?? [])] }
    },
    hasAnyUnder(mountPath) {
      if (capabilities(mountPath)[0] !== 'deny') return true
      const grants = (p: Perms) => p.bits !== 0 && !(p.bits & DENY)
      for (const [path, perms] of exact)
        if (path.startsWith(mountPath) && grants(perms)) return true
      const mountParts = mountPath.split('/')
      for (const glob of globs) {
        if (!grants(glob.perms)) continue
        if (!glob.parts) {
          if (glob.base.startsWith(mountPath)) return true
        } else if (segmentsReachMount(glob, mountParts)) return true
      }
      return false
    },
  }
}

function matchSegments(glob: GlobRule, pathParts: string[]): boolean {
  const parts = glob.parts!
  if (pathParts.length < parts.length) return false
  if (!glob.isPrefix && pathParts.length !== parts.length) return false
  const last = parts.length - 1
  for (let i = 0; i <= last; i++) {
    const rule = parts[i]!
    const part = pathParts[i]!
    if (rule === '+' || rule === part) continue
    if (glob.isPrefix && i === last && part.startsWith(rule)) continue
    return false
  }
  return true
}

// Vault's bare-mount check: the rule's leading segments match the mount's segments.
function segmentsReachMount(glob: GlobRule, mountParts: string[]): boolean {
  const parts = glob.parts!
  const need = mountParts.length - 1
  if (parts.length < need) return false
  for (let i = 0; i < need; i++) {
    const rule = parts[i]!
    const part = mountParts[i]!
    if (rule === '+' || rule === part) continue
    if (glob.isPrefix && i === parts.length - 1 && part.startsWith(rule)) return true
    return false
  }
  return true
}

function describeGlob(pattern: string, perms: Perms): GlobRule {
  const isPrefix = pattern.endsWith('*')
  const base = isPrefix ? pattern.slice(0, -1) : pattern
  const parts = base.split('/')
  const wildcards = parts.filter((p) => p === '+').length
  if (wildcards === 0) return { perms, firstWildcard: base.length, isPrefix, wildcards, base }
  return { perms, firstWildcard: pattern.indexOf('+'), isPrefix, wildcards, base, parts }
}

// Highest priority first.
function byPriority(a: GlobRule, b: GlobRule): number {
  if (a.firstWildcard !== b.firstWildcard) return b.firstWildcard - a.firstWildcard
  if (a.isPrefix !== b.isPrefix) return a.isPrefix ? 1 : -1
  if (a.wildcards !== b.wildcards) return a.wildcards - b.wildcards
  if (a.base.length !== b.base.length) return b.base.length - a.base.length
  return a.base < b.base ? 1 : a.base > b.base ? -1 : 0
}

function mergeRule(table: Map<string, Perms>, key: string, rule: PolicyRule, policy: string) {
  const bits = rule.capabilities.reduce((acc, cap) => acc | CAP_BITS[cap], 0)
  const existing = table.get(key)
  if (!existing) {
    const perms: Perms = { bits, granting: new Map() }
    addGranting(perms, bits, policy)
    if (rule.allowedParameters) perms.allowed = new Map(Object.entries(rule.allowedParameters))
    if (rule.deniedParameters) perms.denied = new Map(Object.entries(rule.deniedParameters))
    if (rule.requiredParameters) perms.required = [...rule.requiredParameters]
    table.set(key, perms)
    return
  }
  if (existing.bits & DENY) return
  if (bits & DENY) {
    existing.bits = DENY
    existing.allowed = undefined
    existing.denied = undefined
    return
  }
  existing.bits |= bits
  addGranting(existing, bits, policy)
  existing.allowed = mergeParameters(existing.allowed, rule.allowedParameters)
  existing.denied = mergeParameters(existing.denied, rule.deniedParameters)
  for (const name of rule.requiredParameters ?? []) {
    existing.required ??= []
    if (!existing.required.includes(name)) existing.required.push(name)
  }
}

function addGranting(perms: Perms, bits: number, policy: string) {
  for (const [, bit] of CAP_NAMES) {
    if (!(bits & bit)) continue
    const names = perms.granting.get(bit)
    if (!names) perms.granting.set(bit, [policy])
    else if (!names.includes(policy)) names.push(policy)
  }
}

// An empty list (any value) absorbs other lists; otherwise values are concatenated.
function mergeParameters(
  existing: Map<string, unknown[]> | undefined,
  added: Record<string, unknown[]> | undefined,
): Map<string, unknown[]> | undefined {
  if (!added || Object.keys(added).length === 0) return existing
  if (!existing) return new Map(Object.entries(added))
  for (const [key, values] of Object.entries(added)) {
    const current = existing.get(key)
    if (values.length === 0 || (current && current.length === 0)) existing.set(key, [])
    else existing.set(key, [...values, ...(current ?? [])])
  }
  return existing
}

function parametersAllowed(perms: Perms, data: Record<string, unknown>): boolean {
  for (const name of perms.required ?? []) {
    if (!Object.hasOwn(data, name.toLowerCase())) return false
  }
  const entries = Object.entries(data)
  if (entries.length === 0) return true
  if (perms.denied && perms.denied.size > 0) {
    if (perms.denied.has('*')) return false
    for (const [key, value] of entries) {
      const list = perms.denied.get(key.toLowerCase())
      if (list && valueInDeniedList(value, list)) return false
    }
  }
  if (!perms.allowed || perms.allowed.size === 0) return true
  const allowAll = perms.allowed.has('*')
  if (allowAll && perms.allowed.size === 1) return true
  for (const [key, value] of entries) {
    const list = perms.allowed.get(key.toLowerCase())
    if (!list) {
      if (!allowAll) return false
    } else if (!valueInAllowedList(value, list)) return false
  }
  return true
}

// Vault also checks each element of a list value, and each item of a comma-separated string.
const valueItems = (value: unknown): unknown[] | undefined =>
  Array.isArray(value)
    ? value
    : typeof value === 'string' && value.includes(',')
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : undefined

function valueInAllowedList(value: unknown, list: unknown[]): boolean {
  if (list.length === 0 || valueInList(value, list)) return true
  const items = valueItems(value)
  return items !== undefined && items.length > 0 && items.every((v) => valueInList(v, list))
}

function valueInDeniedList(value: unknown, list: unknown[]): boolean {
  if (list.length === 0 || valueInList(value, list)) return true
  return (valueItems(value) ?? []).some((v) => valueInList(v, list))
}

function valueInList(value: unknown, list: unknown[]): boolean {
  for (const item of list) {
    if (item === null || item === undefined || value === null || value === undefined) {
      if ((item ?? null) === (value ?? null)) return true
    } else if (typeof item === 'string') {
      if (typeof value === 'string' && globMatch(item, value)) return true
    } else if (isDeepStrictEqual(item, value)) return true
  }
  return false
}

// Parameter value globs: `*` at the start and/or end only.
function globMatch(pattern: string, value: string): boolean {
  if (pattern.length < 2) return pattern === value
  const head = pattern.startsWith('*')
  const tail = pattern.endsWith('*')
  if (head && tail) return value.includes(pattern.slice(1, -1))
  if (head) return value.endsWith(pattern.slice(1))
  if (tail) return value.startsWith(pattern.slice(0, -1))
  return pattern === value
}

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g

/** Replaces `{{identity...}}` templates; undefined when one cannot be resolved safely. */
function resolveTemplates(path: string, ctx: AclContext): string | undefined {
  let unresolved = false
  const out = path.replace(TEMPLATE, (_, name: string) => {
    const value = templateValue(name, ctx)
    // A value must not smuggle in globs: no `*` and no `+` segment.
    if (!value || value.includes('*') || value.split('/').includes('+')) unresolved = true
    return value ?? ''
  })
  return unresolved || out.includes('{{') ? undefined : out
}

function templateValue(name: string, ctx: AclContext): string | undefined {
  if (name === 'identity.entity.id') return ctx.entityId
  if (name === 'identity.entity.name') return ctx.entityName
  const meta = /^identity\.entity\.metadata\.(.+)$/.exec(name)
  if (meta) return ctx.metadata?.[meta[1]!]
  const byId = /^identity\.groups\.ids\.([^.]+)\.name$/.exec(name)
  if (byId) return ctx.groups?.find((g) => g.id === byId[1])?.name
  const byName = /^identity\.groups\.names\.([^.]+)\.id$/.exec(name)
  if (byName) return ctx.groups?.find((g) => g.name === byName[1])?.id
  return undefined
}
