import type { Kysely } from 'kysely'
import type { ColumnTypes } from './column-types.js'

/** JIT access: rules, requests (grants), approvals, leases issued under grants, notifiers. */
export async function up(db: Kysely<unknown>, t: ColumnTypes): Promise<void> {
  await db.schema
    .createTable('access_rules')
    .addColumn('name', t.key, (c) => c.primaryKey())
    .addColumn('body', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('access_requests')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('kind', t.key, (c) => c.notNull())
    .addColumn('parent_id', t.key)
    .addColumn('rule_name', t.key, (c) => c.notNull())
    .addColumn('path', t.key, (c) => c.notNull())
    .addColumn('requester', t.key, (c) => c.notNull())
    .addColumn('requester_info', t.text, (c) => c.notNull())
    .addColumn('duration', t.bigint, (c) => c.notNull())
    .addColumn('justification', t.text, (c) => c.notNull())
    .addColumn('ticket', t.key, (c) => c.notNull())
    .addColumn('state', t.key, (c) => c.notNull())
    .addColumn('break_glass', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('review', t.text)
    .addColumn('auto_approved', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('start_at', t.bigint)
    .addColumn('pending_until', t.bigint)
    .addColumn('approved_at', t.bigint)
    .addColumn('activated_at', t.bigint)
    .addColumn('ends_at', t.bigint)
    .addColumn('ended_at', t.bigint)
    .addColumn('deny_reason', t.text)
    .addColumn('creds_issued', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_seen', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('warned_expiring', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .addColumn('updated_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('access_requests_state')
    .on('access_requests')
    .columns(['state', 'ends_at'])
    .execute()
  await db.schema
    .createIndex('access_requests_requester')
    .on('access_requests')
    .columns(['requester', 'state'])
    .execute()

  await db.schema
    .createTable('access_decisions')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('request_id', t.key, (c) => c.notNull())
    .addColumn('actor', t.key, (c) => c.notNull())
    .addColumn('actor_info', t.text, (c) => c.notNull())
    .addColumn('decision', t.key, (c) => c.notNull())
    .addColumn('comment', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('access_decisions_unique')
    .on('access_decisions')
    .columns(['request_id', 'actor', 'decision'])
    .unique()
    .execute()

  await db.schema
    .createTable('access_grant_leases')
    .addColumn('lease_id', t.key, (c) => c.primaryKey())
    .addColumn('request_id', t.key, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('access_grant_leases_request')
    .on('access_grant_leases')
    .column('request_id')
    .execute()

  await db.schema
    .createTable('access_notifiers')
    .addColumn('name', t.key, (c) => c.primaryKey())
    .addColumn('format', t.key, (c) => c.notNull())
    .addColumn('events', t.text, (c) => c.notNull())
    .addColumn('secret', t.text, (c) => c.notNull())
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()

  await db.schema
    .createTable('access_deliveries')
    .addColumn('id', t.key, (c) => c.primaryKey())
    .addColumn('notifier', t.key, (c) => c.notNull())
    .addColumn('event', t.key, (c) => c.notNull())
    .addColumn('request_id', t.key, (c) => c.notNull())
    .addColumn('payload', t.text, (c) => c.notNull())
    .addColumn('attempts', t.int, (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', t.bigint, (c) => c.notNull())
    .addColumn('state', t.key, (c) => c.notNull())
    .addColumn('last_error', t.text)
    .addColumn('created_at', t.bigint, (c) => c.notNull())
    .execute()
  await db.schema
    .createIndex('access_deliveries_due')
    .on('access_deliveries')
    .columns(['state', 'next_attempt_at'])
    .execute()
}
