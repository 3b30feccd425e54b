import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest'
import { cli, tempHome } from './harness.js'

interface Seen {
  method: string
  url: string
  token: string | undefined
  requestHeader: string | undefined
  contentType: string | undefined
  body: string
}

/** A fake API that records every request and answers with a canned body. */
describe('the CLI as an HTTP client', () => {
  let server: Server
  let address: string
  let seen: Seen[] = []
  let reply: { status: number; body: unknown } = { status: 200, body: {} }

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString('utf8')))
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          token: req.headers['x-vault-token'] as string | undefined,
          requestHeader: req.headers['x-vault-request'] as string | undefined,
          contentType: req.headers['content-type'],
          body,
        })
        res.writeHead(reply.status, { 'Content-Type': 'application/json' })
        res.end(reply.body === undefined ? '' : JSON.stringify(reply.body))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))
  beforeEach(() => {
    seen = []
    reply = { status: 200, body: { data: { keys: ['a', 'b/'] } } }
  })

  test('-address wins over STINT_ADDR, which wins over VAULT_ADDR', async () => {
    const dead = 'http://127.0.0.1:9'
    expect(
      (
        await cli(['list', 'x'], {
          env: { STINT_ADDR: dead, VAULT_ADDR: dead },
          address: undefined,
        })
      ).code,
    ).toBe(1)
    await cli(['list', `-address=${address}`, 'x'], { env: { STINT_ADDR: dead } })
    await cli(['list', 'x'], { env: { STINT_ADDR: address, VAULT_ADDR: dead } })
    await cli(['list', 'x'], { env: { STINT_ADDR: undefined, VAULT_ADDR: address } })
    expect(seen).toHaveLength(3)
  })

  test('the token comes from STINT_TOKEN, then VAULT_TOKEN, then ~/.stint-token', async () => {
    const home = tempHome()
    writeFileSync(join(home, '.stint-token'), 'from-file\n')
    await cli(['list', 'x'], {
      address,
      home,
      env: { STINT_TOKEN: 'stint-env', VAULT_TOKEN: 'vault-env' },
    })
    await cli(['list', 'x'], { address, home, env: { VAULT_TOKEN: 'vault-env' } })
    await cli(['list', 'x'], { address, home })
    expect(seen.map((s) => s.token)).toEqual(['stint-env', 'vault-env', 'from-file'])
  })

  test('LIST is sent as GET with list=true, with the X-Vault-Request header', async () => {
    const res = await cli(['list', 'secret/metadata/app'], { address })
    expect(res.code).toBe(0)
    expect(res.stdout).toBe('Keys\n----\na\nb/\n')
    expect(seen[0]).toMatchObject({
      method: 'GET',
      url: '/v1/secret/metadata/app?list=true',
      requestHeader: 'true',
    })
  })

  test('tokens given on the command line travel in the body, never in the URL', async () => {
    reply = { status: 200, body: { data: { accessor: 'acc', policies: ['default'] } } }
    await cli(['token', 'lookup', 'sts.secret-token-value'], { address })
    await cli(['token', 'revoke', 'sts.secret-token-value'], { address })
    await cli(['token', 'renew', 'sts.secret-token-value'], { address })
    await cli(['token', 'capabilities', 'sts.secret-token-value', 'secret/x'], { address })
    expect(seen).toHaveLength(4)
    for (const s of seen) {
      expect(s.url).not.toContain('secret-token-value')
      expect(JSON.parse(s.body).token).toBe('sts.secret-token-value')
    }
  })

  test('read refuses to put a secret-looking parameter in the query string', async () => {
    const res = await cli(['read', 'auth/token/lookup', 'token=sts.abc'], { address })
    expect(res.code).toBe(2)
    expect(seen).toHaveLength(0)
  })

  test('write sends key=value pairs and key=@file contents as a JSON body', async () => {
    reply = { status: 204, body: undefined }
    const home = tempHome()
    writeFileSync(join(home, 'ca.pem'), 'PEM DATA')
    const res = await cli(['write', 'pki/config', 'a=1', `pem=@${join(home, 'ca.pem')}`], {
      address,
      home,
    })
    expect(res).toMatchObject({ code: 0, stdout: 'Success! Data written to: pki/config\n' })
    expect(seen[0]).toMatchObject({
      method: 'PUT',
      url: '/v1/pki/config',
      contentType: 'application/json',
    })
    expect(JSON.parse(seen[0]!.body)).toEqual({ a: '1', pem: 'PEM DATA' })
  })

  test('write - reads a JSON object from stdin', async () => {
    reply = { status: 204, body: undefined }
    const res = await cli(['write', 'sys/mounts/x', '-'], {
      address,
      stdin: '{"type":"kv","options":{"version":"2"}}',
    })
    expect(res.code).toBe(0)
    expect(JSON.parse(seen[0]!.body)).toEqual({ type: 'kv', options: { version: '2' } })
  })

  test('path characters such as ? # and % are percent-encoded, never turned into a query', async () => {
    reply = { status: 204, body: undefined }
    await cli(['write', 'kv/odd key?x=1#frag%', 'a=1'], { address })
    expect(seen[0]!.url).toBe('/v1/kv/odd%20key%3Fx%3D1%23frag%25')
  })

  test('a redirect is reported as an error, not followed with the token', async () => {
    reply = { status: 307, body: undefined }
    const res = await cli(['read', 'secret/x'], { address, env: { STINT_TOKEN: 't' } })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('Code: 307')
    expect(seen).toHaveLength(1)
  })

  test('patch sends a merge patch', async () => {
    reply = { status: 204, body: undefined }
    await cli(['patch', 'secret/data/x', 'a=1'], { address })
    expect(seen[0]).toMatchObject({ method: 'PATCH', contentType: 'application/merge-patch+json' })
  })

  test('a server error exits 1 and prints the path, status code and errors like Vault', async () => {
    reply = { status: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } }
    const res = await cli(['read', 'secret/data/x'], {
      address,
      env: { STINT_TOKEN: 'sts.hidden-token' },
    })
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toContain('Error reading secret/data/x: Error making API request.')
    expect(res.stderr).toContain(`URL: GET ${address}/v1/secret/data/x`)
    expect(res.stderr).toContain('Code: 403. Errors:')
    expect(res.stderr).toContain('* 1 error occurred:')
    expect(res.stderr).not.toContain('sts.hidden-token')
  })

  test('an error answer with an empty error list still says what happened', async () => {
    reply = { status: 404, body: { errors: [] } }
    const res = await cli(['write', 'secret/data/x', 'a=1'], { address })
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/Code: 404\. Errors:\n\n\* Not Found\n$/)
  })

  test('an unreachable server exits 1 with a clear message', async () => {
    const res = await cli(['status'], { address: 'http://127.0.0.1:9' })
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(
      /Error checking seal status: error contacting http:\/\/127\.0\.0\.1:9/,
    )
  })

  test('an invalid address is an error, not a crash', async () => {
    const res = await cli(['status'], { address: 'not a url' })
    expect(res.code).toBe(1)
    expect(res.stderr).toContain('invalid address')
  })
})
