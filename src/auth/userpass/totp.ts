import { generateSecret, generateURI, verify } from 'otplib'

/** Issuer shown by authenticator apps. */
export const TOTP_ISSUER = 'Stint'

/** A new base32 seed (160 bits, as authenticator apps expect). */
export function newTotpSeed(): string {
  return generateSecret()
}

/** The `otpauth://` URL an authenticator app scans. */
export function totpUrl(username: string, seed: string): string {
  return generateURI({ issuer: TOTP_ISSUER, label: username, secret: seed })
}

/**
 * Checks a 6-digit code at `nowMs`, accepting one step of clock drift either way. Returns the time
 * step the code belongs to, or undefined when it is wrong or not after `lastStep` (a replay).
 */
export async function checkTotp(
  seed: string,
  code: string,
  lastStep: number | null,
  nowMs: number,
): Promise<number | undefined> {
  if (!/^\d{6}$/.test(code)) return undefined
  try {
    const result = await verify({
      secret: seed,
      token: code,
      epoch: Math.floor(nowMs / 1000),
      epochTolerance: 30,
      ...(lastStep === null ? {} : { afterTimeStep: lastStep }),
    })
    return result.valid && 'timeStep' in result ? result.timeStep : undefined
  } catch {
    return undefined
  }
}
