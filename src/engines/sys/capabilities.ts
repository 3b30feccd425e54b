import { badRequest, permissionDenied } from '../../core/errors.js'
import type { CoreServices } from '../../core/services.js'
import type { TokenEntry } from '../../core/tokens.js'
import type { LogicalRequest, PathDef } from '../../core/request.js'
import { stringList } from '../../core/fields.js'

/** sys/capabilities-self, sys/capabilities (by token) and sys/capabilities-accessor. */
export function capabilityPaths(core: Pick<CoreServices, 'tokens' | 'aclFor'>): PathDef[] {
  const answer = async (token: TokenEntry, req: LogicalRequest) => {
    const paths = stringList(req.data.paths ?? req.data.path, 'paths')
    if (paths.length === 0) throw badRequest('"paths" must be provided')
    const { acl } = await core.aclFor(token)
    const data: Record<string, unknown> = {}
    for (const p of paths) data[p] = acl.capabilities(p.replace(/^\/+/, ''))
    if (paths.length === 1) data.capabilities = data[paths[0]!]
    return { data, injectTopLevel: true }
  }
  return [
    {
      pattern: /^capabilities-self$/,
      operations: { update: async (req) => answer(req.token!, req) },
    },
    {
      pattern: /^capabilities$/,
      operations: {
        update: async (req) => {
          const token =
            typeof req.data.token === 'string'
              ? await core.tokens.lookup(req.data.token)
              : undefined
          if (!token) throw permissionDenied()
          return answer(token, req)
        },
      },
    },
    {
      pattern: /^capabilities-accessor$/,
      operations: {
        update: async (req) => {
          const token =
            typeof req.data.accessor === 'string'
              ? await core.tokens.lookupAccessor(req.data.accessor)
              : undefined
          if (!token) throw badRequest('invalid accessor')
          return answer(token, req)
        },
      },
    },
  ]
}
