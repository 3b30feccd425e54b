import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Worker threads: cheaper to start and to talk to than child processes (native addons,
    // WebAssembly and the HCL parser's own worker threads all run in them).
    pool: 'threads',
    fileParallelism: true,
    // Most files wait on databases, sockets and child processes more than they compute: three
    // workers keep two cores busy.
    maxWorkers: 3,
    minWorkers: 3,
    // Each file used to import the whole server afresh (libsodium and the HCL parser are
    // WebAssembly): 140 of 175 s went to collecting. A worker now keeps its module cache from
    // file to file. Tests own no module-level state (the composition root builds every node
    // from scratch), so nothing leaks from one file into the next.
    isolate: false,
  },
})
