import { ApiError } from '../../core/errors.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'
import type { PolicyStore } from '../../core/policy/store.js'

type PolicyHandler = (
  req: LogicalRequest,
  params: Record<string, string>,
) => Promise<LogicalResponse | null>

/**
 * ACL policy endpoints, relative to the `sys/` mount:
 *
 * - `GET sys/policy` → `{keys, policies}` (also injected at the top level, includes `root`)
 * - `GET|PUT|POST|DELETE sys/policy/<name>` → read returns `{name, rules}`; write takes `policy`
 *   (or the deprecated `rules`)
 * - `LIST sys/policies/acl` → `{keys, policies}`
 * - `GET|PUT|POST|DELETE sys/policies/acl/<name>` → read returns `{name, policy}`; write takes
 *   `policy`
 *
 * Names are lower-cased (with a warning on reads and writes when that changed them). Writes and
 * deletes answer 204 unless there is a warning; reading a missing policy is a 404.
 */
export function policyPaths(deps: {
  policies: Pick<PolicyStore, 'get' | 'list' | 'write' | 'delete'>
}): PathDef[] {
  const { policies } = deps

  const listPolicies: PolicyHandler = async function listPolicies() {
    const keys = [...(await policies.list()), 'root']
    return { data: { keys, policies: keys }, injectTopLevel: true }
  }

  const listAclPolicies: PolicyHandler = async function listAclPolicies() {
    const keys = [...(await policies.list()), 'root']
    return { data: { keys, policies: keys } }
  }

  const readPolicy = (legacy: boolean): PolicyHandler =>
    async function readPolicy(_req, params) {
      const { name, warnings } = policyName(params)
      const policy = await policies.get(name)
      if (!policy) throw new ApiError(404)
      const data = legacy ? { name, rules: policy.text } : { name, policy: policy.text }
      return { data, injectTopLevel: legacy, ...(warnings.length > 0 && { warnings }) }
    }

  const writePolicy = (legacy: boolean): PolicyHandler =>
    async function writePolicy(req, params) {
      const { name, warnings } = policyName(params)
      let text = textField(req.data.policy)
      if (text === '' && legacy) {
        text = textField(req.data.rules)
        warnings.push("'rules' is deprecated, please use 'policy' instead")
      }
      if (text === '') throw new ApiError(400, "'policy' parameter not supplied or empty")
      await policies.write(name, text)
      return warnings.length > 0 ? { warnings } : null
    }

  const deletePolicy: PolicyHandler = async function deletePolicy(_req, params) {
    await policies.delete(policyName(params).name)
    return null
  }

  return [
    { pattern: /^policy\/?$/, operations: { read: listPolicies, list: listPolicies } },
    {
      pattern: /^policy\/(?<name>[^/]+)$/,
      operations: { read: readPolicy(true), update: writePolicy(true), delete: deletePolicy },
    },
    { pattern: /^policies\/acl\/?$/, operations: { list: listAclPolicies } },
    {
      pattern: /^policies\/acl\/(?<name>[^/]+)$/,
      operations: { read: readPolicy(false), update: writePolicy(false), delete: deletePolicy },
    },
  ]
}

function policyName(params: Record<string, string>): { name: string; warnings: string[] } {
  const raw = (params.name ?? '').trim()
  if (raw === '') throw new ApiError(400, 'policy name must be provided in the URL')
  const name = raw.toLowerCase()
  const warnings = name === raw ? [] : [`policy name "${raw}" was lower-cased to "${name}"`]
  return { name, warnings }
}

// Vault takes the policy as a string; a JSON object body is accepted as JSON policy text too.
function textField(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value === 'object' && value !== null) return JSON.stringify(value)
  return ''
}
