import { generate } from 'otplib'
import { createUserpassBackend } from '../../src/auth/userpass/backend.js'
import { LoginThrottle, type ThrottleOptions } from '../../src/auth/userpass/throttle.js'
import { startTestServer, type TestServer, request } from '../support/server.js'

// Response bodies are whatever JSON the server sent; tests index into them freely.

type Json = any

export interface UserpassServer {
  server: TestServer
  clock: { now: number }
  throttle: LoginThrottle
  /** Calls the API as if from `address` (in-process; the socket address is simulated). */
  from(
    address: string,
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown },
  ): Promise<{ status: number; body: Json }>
  totpCode(secret: string, atMs?: number): Promise<string>
  login(
    username: string,
    body: Record<string, unknown>,
    address?: string,
  ): Promise<{ status: number; body: Json }>
}

/** A test server with `auth/userpass` mounted on a controllable clock and its own throttle. */
export async function startUserpassServer(
  throttleOptions: ThrottleOptions = {},
): Promise<UserpassServer> {
  const clock = { now: Date.UTC(2030, 0, 1, 12, 0, 0) }
  const throttle = new LoginThrottle({ now: () => clock.now, ...throttleOptions })
  const server = await startTestServer({
    compose: {
      authMethods: {
        userpass: (core) => (mount) =>
          createUserpassBackend({ core, mount, throttle, now: () => clock.now }),
      },
    },
  })
  const enabled = await server.call('POST', 'sys/auth/userpass', { body: { type: 'userpass' } })
  if (enabled.status !== 204 && enabled.status !== 200)
    throw new Error(`enable failed: ${enabled.status}`)

  const from: UserpassServer['from'] = async (address, method, path, options = {}) => {
    const headers: Record<string, string> = {}
    const token = options.token === undefined ? server.rootToken : options.token
    if (token) headers['X-Vault-Token'] = token
    let body: string | undefined
    if (options.body !== undefined) {
      body = JSON.stringify(options.body)
      headers['Content-Type'] = 'application/json'
    }
    const res = await request(server.api, `/v1/${path}`, {
      method,
      headers,
      body,
      remoteAddress: address,
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }
  return {
    server,
    clock,
    throttle,
    from,
    totpCode: (secret, atMs = clock.now) => generate({ secret, epoch: Math.floor(atMs / 1000) }),
    login: (username, body, address = '10.1.1.1') =>
      from(address, 'POST', `auth/userpass/login/${username}`, { token: null, body }),
  }
}

export function secretFromUrl(url: string): string {
  const secret = new URL(url).searchParams.get('secret')
  if (!secret) throw new Error('no secret in otpauth URL')
  return secret
}
