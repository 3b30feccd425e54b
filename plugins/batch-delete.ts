import type { DeleteUserRequest, DeleteUsersResponse } from './contract.js'

/**
 * Thrown by a plugin's batch delete when the target refused a statement (not a connection
 * problem): `deleteUsersInBatch` then retries user by user. The message must be sanitised.
 */
export class BatchRefusedError extends Error {
  override readonly name = 'BatchRefusedError'
}

/**
 * The shared shape of `deleteUsers`: users with their own revocation statements (`statements` not
 * empty) and a batch that fails on the server go through `deleteUser` one at a time, so the
 * failing user is isolated; the rest are handed to `dropMany` together. When `dropMany` fails with
 * anything but a `BatchRefusedError` (the server refused a statement), e.g. the connection failed,
 * every user of the batch fails with that error rather than each being retried against a dead
 * target. Errors from `dropMany` must already be sanitised.
 */
export async function deleteUsersInBatch(
  reqs: DeleteUserRequest[],
  deleteUser: (req: DeleteUserRequest) => Promise<unknown>,
  dropMany: (usernames: string[]) => Promise<void>,
): Promise<DeleteUsersResponse> {
  const outcomes: Array<Error | undefined> = reqs.map(() => undefined)
  const one: number[] = []
  const many: number[] = []
  reqs.forEach((req, i) => (req.statements.length > 0 ? one : many).push(i))
  if (many.length > 1) {
    try {
      await dropMany([...new Set(many.map((i) => reqs[i]!.username))])
      many.length = 0
    } catch (err) {
      if (!(err instanceof BatchRefusedError)) {
        const error = err instanceof Error ? err : new Error('revoking users failed')
        for (const i of many) outcomes[i] = error
        many.length = 0
      }
    }
  }
  for (const i of [...one, ...many]) {
    try {
      await deleteUser(reqs[i]!)
    } catch (err) {
      outcomes[i] = err instanceof Error ? err : new Error('revoking user failed')
    }
  }
  return { outcomes }
}
