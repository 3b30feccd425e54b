import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Barrier, newKeyring } from '../../src/core/barrier.js'
import { createUserStore, type UserStore } from '../../src/auth/userpass/users.js'
import { DEFAULT_TOKEN_FIELDS } from '../../src/auth/token-fields.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

describe.each(eachDialect)('userpass user store on %s', (dialect) => {
  let fresh: FreshStorage
  let users: UserStore
  const barrier = new Barrier()
  barrier.load(newKeyring())

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
    users = createUserStore({ storage: fresh.storage, barrier, mountAccessor: 'userpass_a' })
  })
  afterAll(async () => {
    await fresh.drop()
  })

  it('keeps users of different mounts apart and refuses a duplicate', async () => {
    const other = createUserStore({ storage: fresh.storage, barrier, mountAccessor: 'userpass_b' })
    await users.create('alice', '$argon2id$fake', DEFAULT_TOKEN_FIELDS)
    await other.create('alice', '$argon2id$other', DEFAULT_TOKEN_FIELDS)
    await expect(users.create('alice', 'x', DEFAULT_TOKEN_FIELDS)).rejects.toMatchObject({
      status: 400,
    })
    expect((await users.get('alice'))?.passwordHash).toBe('$argon2id$fake')
    expect(await other.list()).toEqual(['alice'])
  })

  it('seals the TOTP seed to its row and opens it again', async () => {
    const user = (await users.get('alice'))!
    await users.setTotpSeed(user, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    const row = await fresh.storage.db
      .selectFrom('userpass_users')
      .select('totp_seed')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow()
    expect(row.totp_seed).not.toContain('JBSWY3DP')
    expect(await users.totpSeed(user)).toBe('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    // Copied onto another row, the ciphertext does not open.
    expect(() =>
      barrier.decrypt('userpass_users', 'totp_seed', 'another-row', row.totp_seed!),
    ).toThrow()
  })

  it('lets only one of several concurrent claims of a TOTP step win, and never an older step', async () => {
    const user = (await users.get('alice'))!
    const wins = await Promise.all(Array.from({ length: 8 }, () => users.claimTotpStep(user, 1000)))
    expect(wins.filter(Boolean)).toHaveLength(1)
    expect(await users.claimTotpStep(user, 999)).toBe(false)
    expect(await users.claimTotpStep(user, 1001)).toBe(true)
    expect((await users.get('alice'))?.totpLastStep).toBe(1001)
  })
})
