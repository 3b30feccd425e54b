import { inCidrs } from './cidr.js'
import { permissionDenied } from './errors.js'
import type { LogicalRequest } from './request.js'
import type { TokenEntry, TokenStore } from './tokens.js'

/** Looks up a request's client token and applies its CIDR binding; throws 403 to refuse. */
export type Authenticate = (req: LogicalRequest) => Promise<TokenEntry>

export function createAuthenticate(deps: { tokens: Pick<TokenStore, 'lookup'> }): Authenticate {
  return async function authenticate(req) {
    if (!req.clientToken) throw permissionDenied()
    const token = await deps.tokens.lookup(req.clientToken)
    if (!token) throw permissionDenied()
    return checkCidrs(req, token)
  }
}

/** Applies a token's CIDR binding to the request's address. */
export function checkCidrs(req: LogicalRequest, token: TokenEntry): TokenEntry {
  if (token.boundCidrs.length > 0 && !inCidrs(req.remoteAddress, token.boundCidrs)) {
    throw permissionDenied()
  }
  return token
}
