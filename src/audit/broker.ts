import type { AuditBroker, RequestContext } from '../core/core.js'
import { ApiError, badRequest } from '../core/errors.js'
import type { Barrier } from '../core/barrier.js'
import type { Logger } from '../core/logger.js'
import type { LogicalResponse } from '../core/request.js'
import { sanitizeError } from '../../plugins/sanitize.js'
import type { Storage } from '../storage/storage.js'
import {
  chainLine,
  checkpointEntry,
  splitLine,
  type ChainState,
  type CheckpointReason,
} from './chain.js'
import { SECRET_OPTION_KEYS, type AuditDevice, type DeviceOptions } from './device.js'
import { requestEntry, responseEntry, type AuditEntry, type HashOptions } from './entry.js'
import { createFileDevice } from './file-device.js'
import { hashValue } from './hashing.js'
import { createHttpDevice } from './http-device.js'
import { createAuditSigner, parsePublicKey, verifySignature, type AuditSigner } from './signer.js'
import { createSocketDevice } from './socket-device.js'
import { createAuditStore, type StoredDevice } from './store.js'

/** Default number of entries between two signed `interval` checkpoints. */
export const DEFAULT_CHECKPOINT_INTERVAL = 100

/** What `GET sys/audit` shows for one device. */
export interface AuditDeviceInfo {
  type: string
  description: string
  options: DeviceOptions
  local: boolean
  path: string
}

/**
 * The audit broker: the core's `AuditBroker` plus device management. Every request and response
 * goes to every enabled device, each with its own salt and hash chain; a request that no device
 * recorded is refused (fail closed). With no device enabled nothing is required.
 */
export interface AuditService extends AuditBroker {
  list(): AuditDeviceInfo[]
  /** Validates, opens (a file that cannot be opened is a 400) and persists a device. */
  enable(input: {
    path: string
    type: string
    description: string
    options: DeviceOptions
    local: boolean
  }): Promise<void>
  disable(path: string): Promise<void>
  /** `hmac-sha256:<hex>` of `input` with the device's salt (sys/audit-hash). */
  hash(path: string, input: string): string
  publicKey(path: string): string | undefined
  /** Closes and reopens every device (SIGHUP): file rotation. Old files end with a checkpoint. */
  reopen(): Promise<void>
  /** Loads devices from storage (after unseal) and installs the SIGHUP handler. */
  load(): Promise<void>
  /** Writes close checkpoints, closes devices, removes the SIGHUP handler (before seal). */
  unload(): Promise<void>
}

export interface AuditBrokerDeps {
  storage: Storage
  barrier: Barrier
  logger: Logger
  /** Called once per device that failed to record an entry (metrics). */
  onFailure?: (path: string) => void
}

interface Slot {
  stored: StoredDevice
  device: AuditDevice
  signer: AuditSigner
  hashing: HashOptions
  state: ChainState
  open: boolean
  sinceCheckpoint: number
  interval: number
  queue: Promise<unknown>
}

/** Builds a device of the given type; bad options are 400s. */
export function createDevice(type: string, options: DeviceOptions): AuditDevice {
  switch (type) {
    case 'file':
      return createFileDevice(options)
    case 'socket':
      return createSocketDevice(options)
    case 'http':
      return createHttpDevice(options)
    default:
      throw badRequest(`unknown audit device type "${type}": use file, socket or http`)
  }
}

export function normalizeAuditPath(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '')
  if (!p || !/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(p))
    throw badRequest('invalid audit device path')
  return `${p}/`
}

export function createAuditBroker(deps: AuditBrokerDeps): AuditService {
  const { barrier, logger, onFailure } = deps
  const store = createAuditStore({ storage: deps.storage, barrier })
  const slots = new Map<string, Slot>()
  let sighup: (() => void) | undefined

  function makeSlot(stored: StoredDevice): Slot {
    const interval = Number(stored.options.checkpoint_interval ?? DEFAULT_CHECKPOINT_INTERVAL)
    return {
      stored,
      device: createDevice(stored.type, stored.options),
      signer: createAuditSigner(stored.signingKey),
      hashing: {
        salt: stored.salt,
        hmacAccessor: stored.options.hmac_accessor !== 'false',
        logRaw: stored.options.log_raw === 'true',
      },
      state: stored.chain,
      open: false,
      sinceCheckpoint: 0,
      interval: Number.isInteger(interval) && interval > 0 ? interval : DEFAULT_CHECKPOINT_INTERVAL,
      queue: Promise.resolve(),
    }
  }

  /** Runs `task` after everything already queued for this device (lines stay in seq order). */
  function enqueue<T>(slot: Slot, task: () => Promise<T>): Promise<T> {
    const run = slot.queue.then(task)
    slot.queue = run.catch(() => {})
    return run
  }

  async function writeLine(slot: Slot, entry: Record<string, unknown>): Promise<void> {
    const { line, state } = chainLine(entry, slot.state, slot.signer)
    try {
      await slot.device.write(line)
    } catch (err) {
      slot.open = false
      await slot.device.close().catch(() => {})
      throw err
    }
    slot.state = state
  }

  async function checkpoint(slot: Slot, reason: CheckpointReason): Promise<void> {
    await writeLine(slot, checkpointEntry(reason, slot.state, slot.signer))
    slot.sinceCheckpoint = 0
    const chain = { ...slot.state }
    await store.saveChain(slot.stored.path, chain).catch((err: unknown) => {
      logger.warn(
        { device: slot.stored.path, err: sanitizeError(err) },
        'audit chain head not saved',
      )
    })
  }

  async function openSlot(slot: Slot): Promise<void> {
    const { lastLine } = await slot.device.open()
    const resumed = lastLine ? resumeFrom(lastLine, slot.stored.publicKey) : undefined
    if (resumed) slot.state = resumed
    slot.open = true
    await checkpoint(slot, 'open')
  }

  async function closeSlot(slot: Slot): Promise<void> {
    if (slot.open) {
      await checkpoint(slot, 'close').catch((err: unknown) => {
        logger.warn(
          { device: slot.stored.path, err: sanitizeError(err) },
          'audit close checkpoint failed',
        )
      })
    }
    slot.open = false
    await slot.device.close().catch(() => {})
  }

  async function record(slot: Slot, entry: AuditEntry): Promise<void> {
    await enqueue(slot, async () => {
      if (!slot.open) await openSlot(slot)
      await writeLine(slot, entry)
      if (++slot.sinceCheckpoint >= slot.interval)
        await checkpoint(slot, 'interval').catch(() => {})
    })
  }

  /** Writes to every device; throws unless at least one recorded the entry. */
  async function broadcast(
    build: (hashing: HashOptions) => AuditEntry,
    what: string,
  ): Promise<void> {
    if (slots.size === 0) return
    const list = [...slots.values()]
    const results = await Promise.allSettled(list.map((slot) => record(slot, build(slot.hashing))))
    let recorded = 0
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        recorded++
        return
      }
      const path = list[i]!.stored.path
      onFailure?.(path)
      logger.error(
        { device: path, err: sanitizeError(r.reason) },
        `audit device failed to record ${what}`,
      )
    })
    if (recorded === 0) throw new ApiError(500, `failed to audit ${what}`)
  }

  function info(slot: Slot): AuditDeviceInfo {
    const options = Object.fromEntries(
      Object.entries(slot.stored.options).filter(([k]) => !SECRET_OPTION_KEYS.has(k)),
    )
    return {
      type: slot.stored.type,
      description: slot.stored.description,
      options,
      local: slot.stored.local,
      path: slot.stored.path,
    }
  }

  function requireSlot(path: string): Slot {
    const slot = slots.get(normalizeAuditPath(path))
    if (!slot) throw badRequest(`unknown audit device "${path}"`)
    return slot
  }

  const service: AuditService = {
    async logRequest(ctx: RequestContext) {
      await broadcast((h) => requestEntry(ctx, h), 'request')
    },

    async logResponse(ctx: RequestContext, response: LogicalResponse | null, error?: ApiError) {
      await broadcast((h) => responseEntry(ctx, response, error, h), 'response')
    },

    list: () => [...slots.values()].map(info),

    async enable(input) {
      const path = normalizeAuditPath(input.path)
      const inUse = () => badRequest(`path "${path}" already in use`)
      if (slots.has(path) || (await store.exists(path))) throw inUse()
      createDevice(input.type, input.options) // validates the options before anything is stored
      let stored: StoredDevice
      try {
        stored = await store.create({ ...input, path })
      } catch (err) {
        if (await store.exists(path)) throw inUse() // a concurrent enable won the insert
        throw err
      }
      const slot = makeSlot(stored)
      try {
        // The first line (a signed open checkpoint) must land, or the device is not enabled:
        // a sink that cannot record would otherwise refuse every later request.
        await enqueue(slot, () => openSlot(slot))
      } catch (err) {
        await slot.device.close().catch(() => {})
        await store.remove(path)
        throw badRequest(`failed to open the audit device: ${sanitizeError(err)}`)
      }
      slots.set(path, slot)
    },

    async disable(path) {
      const key = normalizeAuditPath(path)
      const slot = slots.get(key)
      if (slot) {
        slots.delete(key)
        await enqueue(slot, () => closeSlot(slot))
      }
      await store.remove(key)
    },

    hash: (path, input) => hashValue(requireSlot(path).stored.salt, input),

    publicKey: (path) => slots.get(normalizeAuditPath(path))?.stored.publicKey,

    async reopen() {
      await Promise.all(
        [...slots.values()].map((slot) =>
          enqueue(slot, async () => {
            await closeSlot(slot)
            await openSlot(slot).catch((err: unknown) => {
              logger.error(
                { device: slot.stored.path, err: sanitizeError(err) },
                'audit device did not reopen',
              )
            })
          }),
        ),
      )
    },

    async load() {
      for (const stored of await store.list().catch((err: unknown) => {
        logger.error({ err: sanitizeError(err) }, 'audit devices could not be loaded')
        return [] as StoredDevice[]
      })) {
        let slot: Slot
        try {
          slot = makeSlot(stored)
        } catch (err) {
          logger.error(
            { device: stored.path, err: sanitizeError(err) },
            'audit device is misconfigured',
          )
          continue
        }
        slots.set(stored.path, slot)
        await enqueue(slot, () => openSlot(slot)).catch((err: unknown) => {
          logger.error(
            { device: stored.path, err: sanitizeError(err) },
            'audit device did not open',
          )
        })
      }
      if (!sighup) {
        sighup = () => {
          logger.info('SIGHUP: reopening audit devices')
          void service.reopen()
        }
        process.on('SIGHUP', sighup)
      }
    },

    async unload() {
      if (sighup) process.off('SIGHUP', sighup)
      sighup = undefined
      const list = [...slots.values()]
      slots.clear()
      await Promise.all(list.map((slot) => enqueue(slot, () => closeSlot(slot))))
    },
  }
  return service
}

/** The chain state after an existing file's last line, when that line is ours and intact. */
function resumeFrom(lastLine: string, publicKey: string): ChainState | undefined {
  const parts = splitLine(lastLine)
  if (!parts) return undefined
  try {
    const entry = JSON.parse(parts.body) as { seq?: unknown }
    if (typeof entry.seq !== 'number') return undefined
    if (!verifySignature(parsePublicKey(publicKey), parts.hash, parts.sig)) return undefined
    return { seq: entry.seq, head: parts.hash }
  } catch {
    return undefined
  }
}
