import { createHmac } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'vitest'
import type { TestServer } from '../support/server.js'

/** A webhook receiver on loopback that checks Stint's signature on every delivery. */
export async function startWebhookReceiver(getKey: () => string) {
  const received: Array<{ event: string; body: any; signatureValid: boolean }> = []
  let failNext = 0
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (failNext > 0) {
        failNext--
        res.statusCode = 503
        res.end()
        return
      }
      const body = Buffer.concat(chunks).toString('utf8')
      const timestamp = String(req.headers['x-stint-timestamp'])
      const expected = `v1=${createHmac('sha256', getKey()).update(`${timestamp}.${body}`).digest('hex')}`
      received.push({
        event: String(req.headers['x-stint-event']),
        body: JSON.parse(body),
        signatureValid: req.headers['x-stint-signature'] === expected,
      })
      res.statusCode = 204
      res.end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    failNextDeliveries(n: number) {
      failNext = n
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

/** Creates a userpass user with a policy and logs in; returns the token and entity id. */
export async function human(server: TestServer, name: string, policies: string[]) {
  const password = `pw-${name}-correct-horse`
  let res = await server.call('POST', `auth/userpass/users/${name}`, {
    body: { password, token_policies: policies },
  })
  expect(res.status).toBe(204)
  res = await server.call('POST', `auth/userpass/login/${name}`, {
    token: null,
    body: { password },
  })
  expect(res.status).toBe(200)
  const token = res.body.auth.client_token as string
  const entityId = res.body.auth.entity_id as string
  expect(entityId).not.toBe('')
  return { name, token, entityId }
}

/** Creates an identity group with these entities as members. */
export async function group(server: TestServer, name: string, entityIds: string[]) {
  const res = await server.call('POST', 'identity/group', {
    body: { name, member_entity_ids: entityIds },
  })
  expect([200, 204]).toContain(res.status)
}

export const CI_ISSUER = 'https://token.actions.githubusercontent.com'
export const CI_AUDIENCE = 'https://github.com/acme'

/**
 * A pipeline issuer for `auth/jwt/` (mounted already): trusts a fresh key, bound to
 * `CI_ISSUER`, and writes `role` as given (`bound_audiences` defaults to `CI_AUDIENCE`).
 * `login(claims, subject)` signs a five-minute JWT and logs in with it.
 */
export async function ciIssuer(
  server: TestServer,
  role: { name: string } & Record<string, unknown>,
): Promise<{
  login(claims: Record<string, unknown>, subject: string): Promise<Record<string, any>>
}> {
  const { SignJWT, exportSPKI, generateKeyPair } = await import('jose')
  const keys = await generateKeyPair('RS256')
  const setup = async (path: string, body: Record<string, unknown>) => {
    const res = await server.call('POST', path, { body })
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`)
  }
  await setup('auth/jwt/config', {
    jwt_validation_pubkeys: [await exportSPKI(keys.publicKey)],
    bound_issuer: CI_ISSUER,
  })
  const { name, ...fields } = role
  await setup(`auth/jwt/role/${name}`, {
    role_type: 'jwt',
    bound_audiences: [CI_AUDIENCE],
    ...fields,
  })
  return {
    async login(claims, subject) {
      const jwt = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256' })
        .setIssuer(CI_ISSUER)
        .setAudience(CI_AUDIENCE)
        .setSubject(subject)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(keys.privateKey)
      const res = await server.call('POST', 'auth/jwt/login', {
        token: null,
        body: { role: name, jwt },
      })
      if (res.status !== 200) throw new Error(`login: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body.auth
    },
  }
}
