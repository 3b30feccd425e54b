import { BlockList, isIP } from 'node:net'
import { badRequest } from './errors.js'

/** Validates CIDR blocks (or single addresses) given by a user; throws a 400 naming the field. */
export function parseCidrs(values: unknown, field: string): string[] {
  if (values === undefined || values === null || values === '') return []
  const list = Array.isArray(values) ? values : String(values).split(',')
  return list.map((v) => {
    const text = String(v).trim()
    const [addr, bits] = text.split('/')
    const family = isIP(addr ?? '')
    const max = family === 4 ? 32 : 128
    if (!family || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
      throw badRequest(`invalid CIDR in ${field}`)
    }
    return text
  })
}

/** True when `address` is inside one of the CIDR blocks. */
export function inCidrs(address: string, cidrs: string[]): boolean {
  const list = new BlockList()
  const addr = address.replace(/^::ffff:/, '')
  for (const cidr of cidrs) {
    const [net, bits] = cidr.split('/')
    const type = isIP(net ?? '') === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(net!, type)
    else list.addSubnet(net!, Number(bits), type)
  }
  const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4'
  return isIP(addr) !== 0 && list.check(addr, type)
}
