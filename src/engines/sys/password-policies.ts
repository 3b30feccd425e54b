import { ApiError } from '../../core/errors.js'
import { generatePassword } from '../../core/password-policy/policy.js'
import {
  checkPasswordPolicyName,
  type PasswordPolicyStore,
} from '../../core/password-policy/store.js'
import type { LogicalRequest, LogicalResponse, PathDef } from '../../core/request.js'

type Handler = (
  req: LogicalRequest,
  params: Record<string, string>,
) => Promise<LogicalResponse | null>

/**
 * Password policy endpoints, relative to the `sys/` mount (Vault's API):
 *
 * - `LIST sys/policies/password` → `{keys}` (404 when there is none)
 * - `GET|PUT|POST|DELETE sys/policies/password/<name>` → read returns `{policy}` (the text as
 *   written, base64 decoded); write takes `policy` (HCL, JSON, or base64 of either) and answers
 *   204; deleting a missing policy is a 204
 * - `GET sys/policies/password/<name>/generate` → `{password}`
 *
 * Names are case-sensitive: 1-128 of `[A-Za-z0-9._-]`. Reading or generating from a missing
 * policy is a 404. Deleting a policy that database connections still name is allowed, as in
 * Vault: issuing from those connections then fails with a 400 naming the policy.
 */
export function passwordPolicyPaths(deps: {
  policies: Pick<PasswordPolicyStore, 'get' | 'list' | 'write' | 'delete'>
}): PathDef[] {
  const { policies } = deps

  const list: Handler = async function listPasswordPolicies() {
    return { data: { keys: await policies.list() } }
  }

  const read: Handler = async function readPasswordPolicy(_req, params) {
    const policy = await policies.get(checkPasswordPolicyName(params.name!))
    if (!policy) throw new ApiError(404)
    return { data: { policy: policy.text } }
  }

  const write: Handler = async function writePasswordPolicy(req, params) {
    const name = checkPasswordPolicyName(params.name!)
    const text = req.data.policy
    if (typeof text !== 'string' || text.trim() === '') {
      throw new ApiError(400, "'policy' parameter not supplied or empty")
    }
    await policies.write(name, text)
    return null
  }

  const remove: Handler = async function deletePasswordPolicy(_req, params) {
    await policies.delete(checkPasswordPolicyName(params.name!))
    return null
  }

  const generate: Handler = async function generateFromPasswordPolicy(_req, params) {
    const name = checkPasswordPolicyName(params.name!)
    const policy = await policies.get(name)
    if (!policy) throw new ApiError(404, `password policy "${name}" does not exist`)
    return { data: { password: generatePassword(policy, `password policy "${name}"`) } }
  }

  return [
    { pattern: /^policies\/password\/?$/, operations: { list } },
    {
      pattern: /^policies\/password\/(?<name>[^/]+)\/generate$/,
      operations: { read: generate },
    },
    {
      pattern: /^policies\/password\/(?<name>[^/]+)$/,
      operations: { read, update: write, delete: remove },
    },
  ]
}
