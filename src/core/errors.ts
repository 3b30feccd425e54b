/**
 * A typed error that becomes Vault's `{"errors": [...]}` body with the given status.
 * Messages must never contain a secret: build them from names and paths, not values.
 */
export class ApiError extends Error {
  readonly status: number
  readonly errors: string[]
  constructor(status: number, message?: string | string[]) {
    const errors = message === undefined ? [] : Array.isArray(message) ? message : [message]
    super(errors.join('; ') || `status ${status}`)
    this.name = 'ApiError'
    this.status = status
    this.errors = errors
  }
}

export const badRequest = (message: string) => new ApiError(400, message)
export const permissionDenied = () => new ApiError(403, 'permission denied')
export const notFound = (message?: string) => new ApiError(404, message)
export const unsupportedOperation = () => new ApiError(405, 'unsupported operation')
export const sealedError = () => new ApiError(503, 'Vault is sealed')
