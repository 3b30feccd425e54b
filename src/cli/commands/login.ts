import { UsageError } from '../args.js'
import { ApiResponseError, type StintClient } from '../client.js'
import { command, type Command, type CommandContext } from '../command.js'
import { parseDataArgs } from '../data-args.js'
import { promptSecret, readLine } from '../io.js'
import type { Envelope } from '../output.js'
import { tokenFilePath, writeTokenFile } from '../token-file.js'

const METHODS = ['token', 'userpass', 'jwt', 'approle'] as const
type Method = (typeof METHODS)[number]

export const loginCommand: Command = command({
  name: 'login',
  flags: ['method', 'path'],
  help: `Usage: stint login [options] [token | - | key=value...]

  Authenticates and stores the token in ~/.stint-token (mode 0600), where later commands find it
  (STINT_TOKEN and VAULT_TOKEN take precedence).

    $ stint login                      # prompts for a token without echo
    $ stint login -                    # reads the token from stdin
    $ stint login -method=userpass username=alice        # prompts for password (and TOTP code)
    $ stint login -method=jwt role=ci jwt=@token.jwt
    $ stint login -method=approle role_id=... secret_id=@secret-id

  -method=<name>   token (default), userpass, jwt or approle.
  -path=<mount>    Where the auth method is mounted (default: the method name).
  -no-store        Do not store the token; print it instead.`,
  booleans: ['no-store'],
  args: [0, Infinity],
  async run(ctx) {
    const method = (ctx.str('method') ?? 'token') as Method
    if (!METHODS.includes(method)) {
      throw new UsageError(`Unknown auth method "${method}" (use ${METHODS.join(', ')})`)
    }
    const client = await ctx.client()
    const mount = (ctx.str('path') ?? method).replace(/^\/+|\/+$/g, '')
    ctx.doing(`authenticating`)
    const auth =
      method === 'token'
        ? await tokenLogin(ctx, client)
        : await methodLogin(ctx, client, method, mount)
    const token = auth.auth?.client_token
    if (!token) throw new Error('the server returned no token')
    const noStore = ctx.bool('no-store')
    if (!noStore) await writeTokenFile(ctx.io.home, token)
    if (ctx.out.format === 'table' && ctx.out.field === undefined) {
      ctx.io.stdout.write(
        noStore
          ? 'Success! You are now authenticated. The token was not stored (-no-store).\n\n'
          : `Success! You are now authenticated. The token is stored in ${tokenFilePath(ctx.io.home)}\nand used by later commands.\n\n`,
      )
    }
    ctx.out.secret(auth, { showToken: noStore })
    return 0
  },
})

/** `stint login [token|-]`: checks the token with lookup-self and shapes its info like a login. */
async function tokenLogin(ctx: CommandContext, client: StintClient): Promise<Envelope> {
  if (ctx.positionals.length > 1) throw new UsageError('Too many arguments for token login')
  const arg = ctx.positionals[0]
  let token: string
  if (arg === undefined) token = await promptSecret(ctx.io, 'Token (will be hidden): ')
  else if (arg === '-') token = (await readLine(ctx.io.stdin)).trim()
  else if (arg.startsWith('token=')) token = arg.slice(6)
  else token = arg
  if (!token) throw new UsageError('A token is required')
  const { body } = await client.request('GET', 'auth/token/lookup-self', { token })
  const d = body?.data ?? {}
  return {
    auth: {
      client_token: token,
      accessor: d.accessor,
      policies: d.policies ?? [],
      token_policies: d.policies ?? [],
      identity_policies: d.identity_policies ?? [],
      metadata: d.meta ?? null,
      lease_duration: d.ttl ?? 0,
      renewable: d.renewable ?? false,
    },
  }
}

/** Logins to userpass, jwt and approle; userpass prompts for a password and, if needed, TOTP. */
async function methodLogin(
  ctx: CommandContext,
  client: StintClient,
  method: Exclude<Method, 'token'>,
  mount: string,
): Promise<Envelope> {
  const data = await parseDataArgs(ctx.io, ctx.positionals)
  // Ids and JWTs read from files (`secret_id=@file`, `jwt=@file`) usually end with a newline.
  for (const k of ['jwt', 'role_id', 'secret_id', 'role']) {
    if (typeof data[k] === 'string') data[k] = (data[k] as string).trim()
  }
  const need = (key: string) => {
    if (typeof data[key] !== 'string' || data[key] === '') {
      throw new UsageError(`Missing ${key}=... for -method=${method}`)
    }
    return data[key] as string
  }
  if (method === 'jwt') {
    need('jwt')
    return (await client.request('PUT', `auth/${mount}/login`, { body: data, token: null })).body
  }
  if (method === 'approle') {
    need('role_id')
    return (await client.request('PUT', `auth/${mount}/login`, { body: data, token: null })).body
  }
  const username = need('username')
  delete data.username
  if (data.password === undefined)
    data.password = await promptSecret(ctx.io, 'Password (will be hidden): ')
  const path = `auth/${mount}/login/${username}`
  try {
    return (await client.request('PUT', path, { body: data, token: null })).body
  } catch (err) {
    if (!(err instanceof ApiResponseError) || data.totp !== undefined || !asksForTotp(err))
      throw err
    data.totp = await promptSecret(ctx.io, 'TOTP code (will be hidden): ')
    return (await client.request('PUT', path, { body: data, token: null })).body
  }
}

/** Whether a failed userpass login says a TOTP code is required (and only that). */
function asksForTotp(err: ApiResponseError): boolean {
  return (
    err.status < 500 &&
    err.errors.some((e) => /totp|one-time|passcode/i.test(e) && /requir|missing/i.test(e))
  )
}
