import { createConnection, type Socket } from 'node:net'
import { createSocket } from 'node:dgram'
import { badRequest } from '../core/errors.js'
import type { AuditDevice, DeviceOptions } from './device.js'

const CONNECT_TIMEOUT_MS = 5_000

/**
 * The `socket` device: newline-delimited JSON to `address` (`host:port`) over `socket_type`
 * `tcp` (default) or `udp`, for shipping to a SIEM collector. A TCP write counts as recorded once
 * the kernel took it; a broken connection is reopened by the broker on the next entry.
 */
export function createSocketDevice(options: DeviceOptions): AuditDevice {
  const { host, port } = splitHostPort(options.address)
  const type = options.socket_type ?? 'tcp'
  if (type === 'udp') return udpDevice(host, port)
  if (type !== 'tcp') throw badRequest('socket_type must be tcp or udp')
  let socket: Socket | undefined
  return {
    open: () =>
      new Promise((resolve, reject) => {
        const s = createConnection({ host, port })
        const timer = setTimeout(
          () => s.destroy(new Error('audit socket connect timed out')),
          CONNECT_TIMEOUT_MS,
        )
        s.once('connect', () => {
          clearTimeout(timer)
          s.removeAllListeners('error')
          s.on('error', () => s.destroy())
          socket = s
          resolve({})
        })
        s.once('error', (err) => {
          clearTimeout(timer)
          reject(err)
        })
      }),
    write: (line) =>
      new Promise((resolve, reject) => {
        const s = socket
        if (!s || s.destroyed) return reject(new Error('audit socket is not connected'))
        s.write(`${line}\n`, (err) => (err ? reject(err) : resolve()))
      }),
    close: async () => {
      socket?.end()
      socket?.destroy()
      socket = undefined
    },
  }
}

function udpDevice(host: string, port: number): AuditDevice {
  const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  sock.unref()
  return {
    open: async () => ({}),
    write: (line) =>
      new Promise((resolve, reject) =>
        sock.send(`${line}\n`, port, host, (err) => (err ? reject(err) : resolve())),
      ),
    close: async () => {},
  }
}

export function splitHostPort(address: string | undefined): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address ?? '')
  const port = Number(m?.[2])
  if (!m || port < 1 || port > 65535) throw badRequest('address must be host:port')
  return { host: m[1]!, port }
}
