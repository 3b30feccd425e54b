import { z } from 'zod'
import { badRequest } from '../core/errors.js'
import { parseDuration } from '../core/duration.js'
import { nowMs, type Storage } from '../storage/storage.js'

declare module '../storage/tables.js' {
  interface Tables {
    access_rules: { name: string; body: string; created_at: number; updated_at: number }
  }
}

const duration = z.union([z.string(), z.number()])
const groupList = z.array(z.string().min(1).max(128)).max(50)
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const

const autoApproveSchema = z
  .object({
    /** The requester must be in one of these identity groups (by name). */
    groups: groupList.optional(),
    /**
     * Exact (or `*`-glob) values of claims an auth method verified when the requester logged in
     * (a JWT's mapped claims, a userpass username). Never the token's caller-written `meta`.
     */
    claims: z.record(z.string(), z.string().max(512)).optional(),
    /** The former name of `claims` (same meaning: verified login claims only). */
    metadata: z.record(z.string(), z.string().max(512)).optional(),
    /** The auth mount (e.g. `auth/jwt/`) that must have verified those claims. */
    auth_mount: z.string().min(1).max(255).optional(),
    /** Values the requester's entity metadata must have (written by identity administrators). */
    entity_metadata: z.record(z.string(), z.string().max(512)).optional(),
    max_duration: duration.optional(),
    days: z.array(z.enum(DAYS)).optional(),
    /** UTC hours, `HH:MM-HH:MM`. */
    hours: z
      .string()
      .regex(/^\d{2}:\d{2}-\d{2}:\d{2}$/)
      .optional(),
  })
  .strict()

const ruleSchema = z
  .object({
    paths: z.array(z.string().min(1).max(512)).min(1).max(100),
    approvals: z
      .array(
        z
          .object({ group: z.string().min(1).max(128), count: z.number().int().min(1).max(20) })
          .strict(),
      )
      .max(10)
      .default([]),
    allow_self_approval: z.boolean().default(false),
    max_duration: duration.default('1h'),
    pending_ttl: duration.default('24h'),
    require_justification: z.boolean().default(true),
    justification_pattern: z.string().max(512).optional(),
    require_ticket: z.boolean().default(false),
    ticket_pattern: z.string().max(512).optional(),
    clock_starts: z.enum(['approval', 'first_use']).default('approval'),
    auto_approve: z.array(autoApproveSchema).max(20).default([]),
    break_glass: z
      .object({ groups: groupList.min(1), max_duration: duration.default('30m') })
      .strict()
      .optional(),
    notifiers: z.array(z.string().min(1).max(128)).max(20).default([]),
    requester_mfa: z.boolean().default(false),
    approver_mfa: z.boolean().default(false),
  })
  .strict()

export interface AutoApproveCondition {
  groups?: string[]
  /** Verified login claims (`claims`, or its former name `metadata`). */
  claims?: Record<string, string>
  /** Auth mount path with a trailing slash (`auth/jwt/`). */
  authMount?: string
  entityMetadata?: Record<string, string>
  maxDuration?: number
  days?: string[]
  hours?: { from: number; to: number }
}

/** An access rule: which paths it guards and how access to them is granted. Durations in seconds. */
export interface AccessRule {
  name: string
  paths: string[]
  approvals: Array<{ group: string; count: number }>
  allowSelfApproval: boolean
  maxDuration: number
  pendingTtl: number
  requireJustification: boolean
  justificationPattern?: RegExp
  requireTicket: boolean
  ticketPattern?: RegExp
  clockStarts: 'approval' | 'first_use'
  autoApprove: AutoApproveCondition[]
  breakGlass?: { groups: string[]; maxDuration: number }
  notifiers: string[]
  requesterMfa: boolean
  approverMfa: boolean
  /** The rule as written, returned on read. */
  raw: Record<string, unknown>
}

/** Validates a rule body (JSON) and compiles it; throws a 400 that says what is wrong. */
export function parseRule(
  name: string,
  body: unknown,
  opts: {
    /**
     * Read from storage: a `pending_ttl` of 0 written before it was refused keeps the 24 h it has
     * been served with, so the rule still loads and its paths stay guarded.
     */
    stored?: boolean
  } = {},
): AccessRule {
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) throw badRequest('invalid rule name')
  const parsed = ruleSchema.safeParse(body)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw badRequest(`invalid access rule: ${issue.path.join('.') || 'body'}: ${issue.message}`)
  }
  const r = parsed.data
  for (const p of r.paths) {
    if (/\*./.test(p) || p.includes('+*'))
      throw badRequest(`invalid path glob "${p}": "*" only at the end`)
  }
  const maxDuration = parseDuration(r.max_duration, 'max_duration')
  if (maxDuration <= 0) throw badRequest('max_duration must be positive')
  // 0 used to mean 24 h silently; a request that may not wait at all could never be approved.
  const pendingTtl = parseDuration(r.pending_ttl, 'pending_ttl')
  if (pendingTtl <= 0 && !opts.stored) throw badRequest('pending_ttl must be positive')
  const rule: AccessRule = {
    name,
    paths: r.paths.map((p) => p.replace(/^\/+/, '')),
    approvals: r.approvals,
    allowSelfApproval: r.allow_self_approval,
    maxDuration,
    pendingTtl: pendingTtl > 0 ? pendingTtl : 86400,
    requireJustification: r.require_justification,
    justificationPattern: compilePattern(r.justification_pattern, 'justification_pattern'),
    requireTicket: r.require_ticket,
    ticketPattern: compilePattern(r.ticket_pattern, 'ticket_pattern'),
    clockStarts: r.clock_starts,
    autoApprove: r.auto_approve.map((a) => ({
      groups: a.groups,
      claims: mergeClaims(a.claims, a.metadata),
      authMount: a.auth_mount === undefined ? undefined : mountPath(a.auth_mount),
      entityMetadata: a.entity_metadata,
      maxDuration:
        a.max_duration === undefined
          ? undefined
          : parseDuration(a.max_duration, 'auto_approve.max_duration'),
      days: a.days,
      hours: a.hours ? parseHours(a.hours) : undefined,
    })),
    breakGlass: r.break_glass
      ? {
          groups: r.break_glass.groups,
          maxDuration: parseDuration(r.break_glass.max_duration, 'break_glass.max_duration'),
        }
      : undefined,
    notifiers: r.notifiers,
    requesterMfa: r.requester_mfa,
    approverMfa: r.approver_mfa,
    raw: r as Record<string, unknown>,
  }
  if (rule.approvals.length === 0 && rule.autoApprove.length === 0 && !rule.breakGlass) {
    throw badRequest('a rule needs approvals, auto_approve conditions or a break_glass clause')
  }
  return rule
}

function mergeClaims(
  claims: Record<string, string> | undefined,
  legacy: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (!claims && !legacy) return undefined
  return { ...legacy, ...claims }
}

/** `jwt`, `auth/jwt` and `auth/jwt/` all name the mount `auth/jwt/`. */
function mountPath(name: string): string {
  const trimmed = name.replace(/^\/+|\/+$/g, '')
  return `${trimmed.startsWith('auth/') ? trimmed : `auth/${trimmed}`}/`
}

function compilePattern(source: string | undefined, field: string): RegExp | undefined {
  if (source === undefined || source === '') return undefined
  try {
    return new RegExp(source)
  } catch {
    throw badRequest(`${field} is not a valid regular expression`)
  }
}

function parseHours(text: string): { from: number; to: number } {
  const [a, b] = text.split('-') as [string, string]
  const minutes = (hm: string) => Number(hm.slice(0, 2)) * 60 + Number(hm.slice(3, 5))
  const from = minutes(a)
  const to = minutes(b)
  if (from >= 24 * 60 || to > 24 * 60) throw badRequest('hours must be within 00:00-24:00')
  return { from, to }
}

/**
 * Policy-style path glob: `*` at the end matches any suffix, `+` matches one segment.
 */
export function pathMatches(glob: string, path: string): boolean {
  const prefix = glob.endsWith('*')
  const pattern = prefix ? glob.slice(0, -1) : glob
  const gs = pattern.split('/')
  const ps = path.split('/')
  for (let i = 0; i < gs.length; i++) {
    const g = gs[i]!
    const p = ps[i]
    if (p === undefined) return false
    if (g === '+') continue
    if (i === gs.length - 1 && prefix) return p.startsWith(g)
    if (g !== p) return false
  }
  return prefix || gs.length === ps.length
}

/** Matches a value against `*`-globs (CI claim values such as `refs/heads/release-*`). */
export function valueMatches(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false
  if (!pattern.includes('*')) return pattern === value
  const re = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*')}$`)
  return re.test(value)
}

function allMatch(patterns: Record<string, string>, values: Record<string, string>): boolean {
  return Object.entries(patterns).every(([key, pattern]) =>
    valueMatches(pattern, Object.hasOwn(values, key) ? values[key] : undefined),
  )
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * What auto-approval may look at: only facts the server verified. `claims` come from the auth
 * method at login (with the mount that checked them), `entityMetadata` from identity
 * administrators, `groups` from identity membership.
 */
export interface VerifiedRequester {
  groups: string[]
  claims: Record<string, string>
  /** Path of the auth mount that verified `claims` (`auth/jwt/`); none when absent. */
  authMount?: string
  entityMetadata?: Record<string, string>
}

/** True when an auto-approval condition holds for this requester, duration and time. */
export function autoApproves(
  cond: AutoApproveCondition,
  input: VerifiedRequester & { duration: number; at: Date },
): boolean {
  if (cond.groups && !cond.groups.some((g) => input.groups.includes(g))) return false
  if (cond.authMount !== undefined && cond.authMount !== input.authMount) return false
  if (cond.claims && !allMatch(cond.claims, input.claims)) return false
  if (cond.entityMetadata && !allMatch(cond.entityMetadata, input.entityMetadata ?? {}))
    return false
  if (cond.maxDuration !== undefined && input.duration > cond.maxDuration) return false
  if (cond.days && !cond.days.includes(DAYS[input.at.getUTCDay()]!)) return false
  if (cond.hours) {
    const m = input.at.getUTCHours() * 60 + input.at.getUTCMinutes()
    const { from, to } = cond.hours
    const inside = from <= to ? m >= from && m < to : m >= from || m < to
    if (!inside) return false
  }
  return true
}

/** Rules in storage, compiled and cached (they are read on every guarded request). */
export function createRuleStore(deps: { storage: Storage }) {
  const { db } = deps.storage
  let cache: { at: number; rules: AccessRule[] } | undefined
  const load = async (): Promise<AccessRule[]> => {
    if (cache && nowMs() - cache.at < 2_000) return cache.rules
    const rows = await db.selectFrom('access_rules').selectAll().execute()
    const rules = rows.map((r) => parseRule(r.name, JSON.parse(r.body), { stored: true }))
    cache = { at: nowMs(), rules }
    return rules
  }
  return {
    all: load,
    async get(name: string): Promise<AccessRule | undefined> {
      return (await load()).find((r) => r.name === name)
    },
    /**
     * False only when the cached rules are fresh and none guards `path`: the request guard's
     * synchronous shortcut (most requests hit no rule).
     */
    mayGuard(path: string): boolean {
      if (!cache || nowMs() - cache.at >= 2_000) return true
      return cache.rules.some((r) => r.paths.some((g) => pathMatches(g, path)))
    },
    /** The rule that guards a path (the first by name when several do). */
    async forPath(path: string): Promise<AccessRule | undefined> {
      const rules = await load()
      return rules
        .filter((r) => r.paths.some((g) => pathMatches(g, path)))
        .sort((a, b) => a.name.localeCompare(b.name))[0]
    },
    async write(name: string, body: unknown): Promise<void> {
      const rule = parseRule(name, body)
      const now = nowMs()
      const text = JSON.stringify(rule.raw)
      const updated = await db
        .updateTable('access_rules')
        .set({ body: text, updated_at: now })
        .where('name', '=', name)
        .executeTakeFirst()
      if (Number(updated.numUpdatedRows) === 0) {
        await db
          .insertInto('access_rules')
          .values({ name, body: text, created_at: now, updated_at: now })
          .execute()
      }
      cache = undefined
    },
    async delete(name: string): Promise<void> {
      await db.deleteFrom('access_rules').where('name', '=', name).execute()
      cache = undefined
    },
    async names(): Promise<string[]> {
      return (await load()).map((r) => r.name).sort()
    },
  }
}

export type RuleStore = ReturnType<typeof createRuleStore>
