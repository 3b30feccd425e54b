import { badRequest } from '../../core/errors.js'
import { optionalBool, requireString, stringMap } from '../../core/fields.js'
import type { PathDef } from '../../core/request.js'
import type { AuditService } from '../../audit/broker.js'

/**
 * sys/audit (list, enable, disable), sys/audit/<path>/public-key (the key that verifies the
 * device's hash chain) and sys/audit-hash/<path> (find a known value in the log). All sudo.
 */
export function auditPaths(broker: AuditService): PathDef[] {
  return [
    {
      pattern: /^audit\/?$/,
      sudo: true,
      operations: {
        read: async () => {
          const data: Record<string, unknown> = {}
          for (const d of broker.list()) data[d.path] = d
          return { data, injectTopLevel: true }
        },
      },
    },
    {
      pattern: /^audit\/(?<path>.+?)\/public-key$/,
      sudo: true,
      operations: {
        read: async (_req, params) => {
          const publicKey = broker.publicKey(params.path!)
          if (!publicKey) return null
          return { data: { public_key: publicKey, algorithm: 'ed25519' } }
        },
      },
    },
    {
      pattern: /^audit\/(?<path>.+)$/,
      sudo: true,
      operations: {
        update: async (req, params) => {
          const type = requireString(req.data.type, 'type')
          const raw = req.data.options
          // http headers may arrive as an object; devices keep string options, as Vault does.
          const options =
            raw && typeof raw === 'object' && !Array.isArray(raw)
              ? Object.fromEntries(
                  Object.entries(raw).map(([k, v]) => [
                    k,
                    v && typeof v === 'object' ? JSON.stringify(v) : v,
                  ]),
                )
              : raw
          const description = req.data.description ?? ''
          if (typeof description !== 'string') throw badRequest('description must be a string')
          await broker.enable({
            path: params.path!,
            type,
            description,
            options: stringMap(options, 'options') ?? {},
            local: optionalBool(req.data.local, 'local') ?? false,
          })
          return null
        },
        delete: async (_req, params) => {
          await broker.disable(params.path!)
          return null
        },
      },
    },
    {
      pattern: /^audit-hash\/(?<path>.+)$/,
      sudo: true,
      operations: {
        update: async (req, params) => {
          const input = req.data.input
          if (typeof input !== 'string') throw badRequest('missing input')
          return { data: { hash: broker.hash(params.path!, input) } }
        },
      },
    },
  ]
}
