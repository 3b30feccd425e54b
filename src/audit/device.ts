/**
 * Where an audit device's lines go. The broker chains, signs and serialises lines; a device only
 * moves bytes. `write` must reject when the line was not recorded (the broker then fails closed).
 */
export interface AuditDevice {
  /**
   * Opens the destination (file, connection). Returns the last line already there, if the device
   * can read it back (files), so the chain resumes after a restart.
   */
  open(): Promise<{ lastLine?: string }>
  /** Records one line (no newline); rejects when it was not recorded. */
  write(line: string): Promise<void>
  /** Releases the destination; safe to call when not open. */
  close(): Promise<void>
}

/** Options of a device as stored and shown (`sys/audit`), all strings as Vault keeps them. */
export type DeviceOptions = Record<string, string>

/** Option keys whose values are secrets: stored sealed by the barrier and never shown. */
export const SECRET_OPTION_KEYS = new Set(['headers', 'authorization', 'auth_header'])
