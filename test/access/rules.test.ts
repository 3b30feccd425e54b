import { describe, expect, it } from 'vitest'
import { autoApproves, parseRule, pathMatches, valueMatches } from '../../src/access/rules.js'
import { approvalsSatisfied, type Actor } from '../../src/access/requests.js'
import { ApiError } from '../../src/core/errors.js'

const actor = (key: string, groups: string[]): Actor => ({
  key,
  entityId: key,
  displayName: key,
  metadata: {},
  groups,
  mfa: false,
})

describe('access rule paths', () => {
  it('matches exact paths, trailing-star prefixes and plus segments like policies do', () => {
    expect(pathMatches('database/creds/prod-ro', 'database/creds/prod-ro')).toBe(true)
    expect(pathMatches('database/creds/prod-ro', 'database/creds/prod-rw')).toBe(false)
    expect(pathMatches('database/creds/prod-*', 'database/creds/prod-rw')).toBe(true)
    expect(pathMatches('database/creds/prod-*', 'database/creds/staging-rw')).toBe(false)
    expect(pathMatches('+/creds/prod-ro', 'db2/creds/prod-ro')).toBe(true)
    expect(pathMatches('+/creds/prod-ro', 'a/b/creds/prod-ro')).toBe(false)
    expect(pathMatches('database/*', 'database/creds/x')).toBe(true)
  })

  it('matches claim values with star globs and nothing else', () => {
    expect(valueMatches('refs/heads/release-*', 'refs/heads/release-1.2')).toBe(true)
    expect(valueMatches('refs/heads/main', 'refs/heads/main-evil')).toBe(false)
    expect(valueMatches('a.b', 'aXb')).toBe(false)
    expect(valueMatches('x', undefined)).toBe(false)
  })
})

describe('auto-approval conditions', () => {
  const rule = parseRule('r', {
    paths: ['database/creds/prod-*'],
    auto_approve: [
      {
        groups: ['sre'],
        max_duration: '15m',
        days: ['mon', 'tue', 'wed', 'thu', 'fri'],
        hours: '09:00-18:00',
      },
      { metadata: { repository: 'acme/app', ref: 'refs/heads/main' } },
    ],
  })
  const monday10 = new Date('2026-11-23T10:00:00Z')
  const sunday10 = new Date('2026-11-22T10:00:00Z')
  const monday20 = new Date('2026-11-23T20:00:00Z')

  it('approves a group member within the duration, days and hours', () => {
    const c = rule.autoApprove[0]!
    expect(autoApproves(c, { groups: ['sre'], claims: {}, duration: 600, at: monday10 })).toBe(true)
    expect(autoApproves(c, { groups: ['sre'], claims: {}, duration: 3600, at: monday10 })).toBe(
      false,
    )
    expect(autoApproves(c, { groups: ['sre'], claims: {}, duration: 600, at: sunday10 })).toBe(
      false,
    )
    expect(autoApproves(c, { groups: ['sre'], claims: {}, duration: 600, at: monday20 })).toBe(
      false,
    )
    expect(autoApproves(c, { groups: ['dev'], claims: {}, duration: 600, at: monday10 })).toBe(
      false,
    )
  })

  it('approves on verified login claims only when every listed key matches', () => {
    const c = rule.autoApprove[1]!
    const at = monday10
    expect(
      autoApproves(c, {
        groups: [],
        claims: { repository: 'acme/app', ref: 'refs/heads/main' },
        duration: 60,
        at,
      }),
    ).toBe(true)
    expect(
      autoApproves(c, {
        groups: [],
        claims: { repository: 'acme/app', ref: 'refs/heads/dev' },
        duration: 60,
        at,
      }),
    ).toBe(false)
    expect(
      autoApproves(c, { groups: [], claims: { repository: 'acme/app' }, duration: 60, at }),
    ).toBe(false)
  })
})

describe('approval factors', () => {
  const factors = [
    { group: 'dba', count: 2 },
    { group: 'security', count: 1 },
  ]

  it('needs every factor, each approver counting once', () => {
    const bob = actor('bob', ['dba'])
    const carol = actor('carol', ['dba', 'security'])
    const dave = actor('dave', ['security'])
    expect(approvalsSatisfied(factors, [bob, carol])).toBe(false)
    expect(approvalsSatisfied(factors, [bob, carol, dave])).toBe(true)
    expect(approvalsSatisfied(factors, [carol, dave])).toBe(false)
    expect(approvalsSatisfied(factors, [bob, dave, carol])).toBe(true)
  })

  it('finds an assignment when a greedy one would fail', () => {
    const both = actor('both', ['dba', 'security'])
    const dba = actor('dba1', ['dba'])
    const dba2 = actor('dba2', ['dba'])
    expect(approvalsSatisfied(factors, [both, dba, dba2])).toBe(true)
  })
})

describe('rule validation', () => {
  const bad = (body: unknown) => {
    try {
      parseRule('r', body)
    } catch (err) {
      return err instanceof ApiError && err.status === 400
    }
    return false
  }

  it('rejects rules that are empty, ambiguous or malformed', () => {
    expect(bad({ paths: [] })).toBe(true)
    expect(bad({ paths: ['x/*y'], approvals: [{ group: 'a', count: 1 }] })).toBe(true)
    expect(bad({ paths: ['x'] })).toBe(true)
    expect(bad({ paths: ['x'], approvals: [{ group: 'a', count: 0 }] })).toBe(true)
    expect(bad({ paths: ['x'], approvals: [{ group: 'a', count: 1 }], max_duration: '-1h' })).toBe(
      true,
    )
    expect(
      bad({ paths: ['x'], approvals: [{ group: 'a', count: 1 }], justification_pattern: '(' }),
    ).toBe(true)
    expect(bad({ paths: ['x'], approvals: [{ group: 'a', count: 1 }], unknown_field: 1 })).toBe(
      true,
    )
    expect(bad({ paths: ['x'], approvals: [{ group: 'a', count: 1 }] })).toBe(false)
  })
})
