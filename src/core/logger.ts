import { pino, type Logger as PinoLogger } from 'pino'

export type Logger = Pick<
  PinoLogger,
  'info' | 'warn' | 'error' | 'debug' | 'child' | 'isLevelEnabled'
>

/** Keys whose values are never written, wherever they appear in a log object. */
const REDACT = [
  'token',
  'client_token',
  'password',
  'secret_id',
  'jwt',
  'key',
  'keys',
  'root_token',
  'connection_url',
  '*.token',
  '*.client_token',
  '*.password',
  '*.secret_id',
  '*.jwt',
  '*.connection_url',
  'headers["x-vault-token"]',
  'headers.authorization',
]

/** Structured JSON logs on stdout (or the given stream). */
export function createLogger(level = 'info', stream?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { service: 'stint' }, redact: { paths: REDACT, censor: '[redacted]' } },
    stream ?? pino.destination(1),
  )
}

export const silentLogger: Logger = pino({ level: 'silent' })
