/** Background work that runs only while the node is unsealed (lease expiry, token expiry, sweeps). */
export interface Worker {
  start(): void
  stop(): Promise<void>
}

/**
 * A timer-driven worker: runs `tick` every `intervalMs` while started, never two at once; a
 * failed tick is reported to `onError` and the next one runs as usual.
 */
export function intervalWorker(
  tick: () => Promise<void>,
  intervalMs: number,
  onError: (err: unknown) => void,
): Worker {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  return {
    start() {
      timer ??= setInterval(() => {
        running ??= tick()
          .catch(onError)
          .finally(() => (running = undefined))
      }, intervalMs)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      await running
    },
  }
}
