import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { configFrom, loadConfig, splitAddress } from '../../src/server/config.js'

const dir = mkdtempSync(join(tmpdir(), 'stint-config-'))
let n = 0
function file(text: string, ext = 'hcl'): string {
  const path = join(dir, `config-${++n}.${ext}`)
  writeFileSync(path, text)
  return path
}

describe('loadConfig with HCL', () => {
  it('reads the listener, TLS files, PostgreSQL storage, static seal key file and log level', async () => {
    const path = file(`
      listener "tcp" {
        address       = "0.0.0.0:8300"
        tls_cert_file = "/etc/stint/cert.pem"
        tls_key_file  = "/etc/stint/key.pem"
      }
      storage "postgres" {
        connection_url = "postgres://stint:pw@db:5432/stint"
      }
      seal "static" {
        key_file = "/etc/stint/unseal.key"
      }
      log_level = "debug"
      default_lease_ttl = "1h"
      max_lease_ttl = "24h"
    `)
    expect(await loadConfig(path, {})).toEqual({
      listenAddress: '0.0.0.0:8300',
      tls: { certFile: '/etc/stint/cert.pem', keyFile: '/etc/stint/key.pem' },
      storageUrl: 'postgres://stint:pw@db:5432/stint',
      unsealKeyFile: '/etc/stint/unseal.key',
      unsealKeyEnv: undefined,
      logLevel: 'debug',
      defaultLeaseTtl: '1h',
      maxLeaseTtl: '24h',
    })
  })

  it('reads MySQL storage and a seal key from an environment variable', async () => {
    const path = file(`
      listener "tcp" { address = "127.0.0.1:8201" }
      storage "mysql" { connection_url = "mysql://stint:pw@db:3306/stint" }
      seal "static" { key_env = "MY_UNSEAL_KEY" }
    `)
    const config = await loadConfig(path, {})
    expect(config.storageUrl).toBe('mysql://stint:pw@db:3306/stint')
    expect(config.unsealKeyEnv).toBe('MY_UNSEAL_KEY')
    expect(config.unsealKeyFile).toBeUndefined()
    expect(config.tls).toBeUndefined()
    expect(config.logLevel).toBe('info')
  })

  it('reads SQLite storage with a path, and defaults to a local SQLite file', async () => {
    const sqlite = await loadConfig(file('storage "sqlite" { path = "/var/lib/stint/s.db" }'), {})
    expect(sqlite.storageUrl).toBe('sqlite:/var/lib/stint/s.db')
    const empty = await loadConfig(file(''), {})
    expect(empty.storageUrl).toMatch(/^sqlite:/)
    expect(empty.listenAddress).toBe('127.0.0.1:8200')
  })

  it('turns TLS off with tls_disable even when files are given', async () => {
    const path = file(`listener "tcp" {
      address = "127.0.0.1:8200"
      tls_disable = true
      tls_cert_file = "/c.pem"
      tls_key_file = "/k.pem"
    }`)
    expect((await loadConfig(path, {})).tls).toBeUndefined()
  })

  it('lets environment variables override the file', async () => {
    const path = file(`
      listener "tcp" { address = "127.0.0.1:8200" }
      storage "sqlite" { path = "/tmp/a.db" }
      log_level = "info"
    `)
    const config = await loadConfig(path, {
      STINT_LISTEN_ADDRESS: '0.0.0.0:9000',
      STINT_STORAGE_URL: 'postgres://x@y/z',
      STINT_UNSEAL_KEY_FILE: '/run/key',
      STINT_LOG_LEVEL: 'warn',
    })
    expect(config).toMatchObject({
      listenAddress: '0.0.0.0:9000',
      storageUrl: 'postgres://x@y/z',
      unsealKeyFile: '/run/key',
      logLevel: 'warn',
    })
    const withKey = await loadConfig(path, { STINT_UNSEAL_KEY: 'abc' })
    expect(withKey.unsealKeyEnv).toBe('STINT_UNSEAL_KEY')
  })

  it('refuses an unknown storage type, a server storage without URL, and bad types', async () => {
    await expect(loadConfig(file('storage "redis" { path = "x" }'), {})).rejects.toThrow(
      /unknown storage type "redis"/,
    )
    await expect(loadConfig(file('storage "postgres" { }'), {})).rejects.toThrow(
      /needs connection_url/,
    )
    await expect(loadConfig(file('storage "postgres" { connection_url = 5 }'), {})).rejects.toThrow(
      /is invalid/,
    )
    await expect(loadConfig(file('log_level = ["a"]'), {})).rejects.toThrow(/is invalid/)
  })

  it('refuses a file that does not parse, without echoing a password from it', async () => {
    const path = file(
      'storage "postgres" { connection_url = "postgres://u:TopSecretPw@db/x" \n bad = = }',
    )
    const err = await loadConfig(path, {}).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/could not be parsed/)
    expect((err as Error).message).not.toContain('TopSecretPw')
  })
})

describe('loadConfig with JSON', () => {
  it('reads the same settings from a .json file', async () => {
    const path = file(
      JSON.stringify({
        listener: { tcp: { address: '127.0.0.1:8400', tls_cert_file: '/c', tls_key_file: '/k' } },
        storage: { postgres: { connection_url: 'postgres://a@b/c' } },
        seal: { static: { key_env: 'K' } },
        log_level: 'error',
      }),
      'json',
    )
    expect(await loadConfig(path, {})).toMatchObject({
      listenAddress: '127.0.0.1:8400',
      tls: { certFile: '/c', keyFile: '/k' },
      storageUrl: 'postgres://a@b/c',
      unsealKeyEnv: 'K',
      logLevel: 'error',
    })
  })

  it('refuses malformed JSON with a clear error', async () => {
    await expect(loadConfig(file('{"listener": ', 'json'), {})).rejects.toThrow(
      /could not be parsed/,
    )
  })
})

describe('configFrom', () => {
  it('accepts blocks given as lists (as hcl2json returns them)', () => {
    const config = configFrom(
      {
        listener: { tcp: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] },
        storage: { mariadb: [{ connection_url: 'mysql://a@b/c' }] },
        seal: { static: [{ key_file: '/k' }] },
      },
      {},
    )
    expect(config.listenAddress).toBe('127.0.0.1:1')
    expect(config.storageUrl).toBe('mysql://a@b/c')
    expect(config.unsealKeyFile).toBe('/k')
  })
})

describe('splitAddress', () => {
  it('splits IPv4, IPv6 and host names, and refuses an address without port', () => {
    expect(splitAddress('127.0.0.1:8200')).toEqual({ host: '127.0.0.1', port: 8200 })
    expect(splitAddress('[::1]:8200')).toEqual({ host: '::1', port: 8200 })
    expect(splitAddress('localhost:1')).toEqual({ host: 'localhost', port: 1 })
    expect(() => splitAddress('localhost')).toThrow(/host:port/)
  })
})
