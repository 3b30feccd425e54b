/**
 * Collects items from concurrent callers and hands them to `flush` together (one statement and
 * one commit instead of one per item): a group closes after `delayMs` (0: once the current burst
 * of work yields) or at `maxItems`. Each caller's promise settles with its group's flush.
 */
export function groupCommit<T>(
  flush: (items: T[]) => Promise<void>,
  { delayMs = 0, maxItems = 500 }: { delayMs?: number; maxItems?: number } = {},
): { add(item: T): Promise<void>; settled(): Promise<void> } {
  let open: { items: T[]; close(): void; done: Promise<void> } | undefined
  const inFlight = new Set<Promise<void>>()
  const settled = async () => {
    open?.close()
    await Promise.allSettled([...inFlight])
  }
  const add = (item: T) => {
    if (!open) {
      let close!: () => void
      const closed = new Promise<void>((resolve) => (close = resolve))
      const group = { items: [] as T[], close, done: Promise.resolve() }
      group.done = closed.then(() => flush(group.items))
      inFlight.add(group.done)
      void group.done.finally(() => inFlight.delete(group.done)).catch(() => {})
      const timer = delayMs > 0 ? setTimeout(close, delayMs) : setImmediate(close)
      group.close = () => {
        if (delayMs > 0) clearTimeout(timer as NodeJS.Timeout)
        else clearImmediate(timer as NodeJS.Immediate)
        close()
      }
      void closed.then(() => {
        if (open === group) open = undefined
      })
      open = group
    }
    const group = open
    group.items.push(item)
    if (group.items.length >= maxItems) {
      open = undefined
      group.close()
    }
    return group.done
  }
  return { add, settled }
}
