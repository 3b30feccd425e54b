import type { TokenEntry } from './tokens.js'

/** Checks a second-factor code (TOTP) for the person behind a token, with replay protection. */
export type SecondFactorCheck = (token: TokenEntry, code: string) => Promise<boolean>

/**
 * Second factors by auth mount: an auth method that enrols them (userpass) registers a check for
 * its mount; JIT activations and approvals verify a code through the token's own login mount.
 * A token from a mount with no check never passes.
 */
export interface SecondFactors {
  register(mountAccessor: string, check: SecondFactorCheck): void
  verify(token: TokenEntry, code: string): Promise<boolean>
}

export function createSecondFactors(): SecondFactors {
  const byMount = new Map<string, SecondFactorCheck>()
  return {
    register: (accessor, check) => void byMount.set(accessor, check),
    async verify(token, code) {
      const check = token.mountAccessor ? byMount.get(token.mountAccessor) : undefined
      return check ? check(token, code) : false
    },
  }
}
