import type { Storage } from '../../storage/storage.js'
import { MAX_CHAR, toLeaseInfo } from './rows.js'
import type { LeaseState } from './types.js'

const PAGE = 500

/** Read-only views of the leases table: prefix listing, counts and the irrevocable list. */
export function createLeaseListing(deps: { storage: Storage; now: () => number }) {
  const db = deps.storage.db
  const now = deps.now

  /** Direct children of `prefix`, skipping each sub-prefix's subtree with one range seek. */
  async function list(prefix: string): Promise<string[]> {
    const keys: string[] = []
    let from = prefix
    let inclusive = true
    const upper = prefix + MAX_CHAR
    for (;;) {
      const rows = await db
        .selectFrom('leases')
        .select('id')
        .where('id', inclusive ? '>=' : '>', from)
        .where('id', '<', upper)
        .orderBy('id')
        .limit(PAGE)
        .execute()
      if (rows.length === 0) return keys
      let skipTo: string | undefined
      for (const { id } of rows) {
        if (!id.startsWith(prefix)) continue
        const rest = id.slice(prefix.length)
        const slash = rest.indexOf('/')
        if (slash === -1) {
          keys.push(rest)
          continue
        }
        const child = rest.slice(0, slash + 1)
        keys.push(child)
        skipTo = prefix + child + MAX_CHAR
        break
      }
      if (skipTo !== undefined) {
        from = skipTo
        inclusive = true
      } else if (rows.length < PAGE) {
        return keys
      } else {
        from = rows[rows.length - 1]!.id
        inclusive = false
      }
    }
  }

  async function count(opts: { state?: LeaseState } = {}) {
    const row = await db
      .selectFrom('leases')
      .select((eb) => eb.fn.countAll().as('n'))
      .$if(opts.state !== undefined, (q) => q.where('state', '=', opts.state!))
      .executeTakeFirst()
    return Number(row?.n ?? 0)
  }

  async function countByMount(opts: { state?: LeaseState } = {}) {
    const rows = await db
      .selectFrom('leases')
      .select((eb) => ['mount_path', eb.fn.countAll().as('n')])
      .$if(opts.state !== undefined, (q) => q.where('state', '=', opts.state!))
      .groupBy('mount_path')
      .execute()
    return Object.fromEntries(rows.map((r) => [r.mount_path, Number(r.n)]))
  }

  async function irrevocable(limit = 10_000) {
    const rows = await db
      .selectFrom('leases')
      .selectAll()
      .where('state', '=', 'irrevocable')
      .orderBy('id')
      .limit(limit)
      .execute()
    const at = now()
    return rows.map((r) => toLeaseInfo(r, at))
  }

  return { list, count, countByMount, irrevocable }
}
