import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPasswordPolicyStore } from '../../src/core/password-policy/store.js'
import { eachDialect, freshStorage, type FreshStorage } from '../support/databases.js'

const policy = (length: number) => `length = ${length}\nrule "charset" {\n  charset = "abc123"\n}\n`

describe.each(eachDialect)('password policy store on %s', (dialect) => {
  let fresh: FreshStorage

  beforeAll(async () => {
    fresh = await freshStorage(dialect)
  })
  afterAll(async () => {
    await fresh?.drop()
  })

  it('keeps names case-sensitive, lists them byte-wise, and overwrites on a second write', async () => {
    const store = createPasswordPolicyStore({ storage: fresh.storage })
    await store.write('Zed', policy(8))
    await store.write('zed', policy(9))
    await store.write('zed', policy(10))
    await store.write('app', policy(11))
    expect(await store.list()).toEqual(['Zed', 'app', 'zed'])
    expect((await store.get('Zed'))?.length).toBe(8)
    expect((await store.get('zed'))?.length).toBe(10)
    expect((await store.get('ZED'))?.length).toBeUndefined()
    await store.delete('Zed')
    expect(await store.list()).toEqual(['app', 'zed'])
  })

  it('sees a write made through another store on the same storage at once', async () => {
    const a = createPasswordPolicyStore({ storage: fresh.storage })
    const b = createPasswordPolicyStore({ storage: fresh.storage })
    await a.write('shared', policy(12))
    expect((await b.get('shared'))?.length).toBe(12)
    await a.write('shared', policy(13))
    expect((await b.get('shared'))?.length).toBe(13)
    await a.delete('shared')
    expect(await b.get('shared')).toBeUndefined()
  })
})
