import { readFile } from 'node:fs/promises'
import { request as httpRequest, STATUS_CODES } from 'node:http'
import type { RequestOptions as HttpsOptions } from 'node:https'

/** What a Vault-shaped API answered: the status and the parsed JSON body (null when empty). */
export interface ApiResult {
  status: number
  // Response bodies are free-form JSON; commands pick the fields they know.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
}

/** A request's options. `query` never carries a token or secret: those go in the body. */
export interface RequestOptions {
  body?: unknown
  query?: Record<string, string>
  /** Send PATCH bodies as `application/merge-patch+json`. */
  mergePatch?: boolean
  /** Answer these statuses instead of throwing (e.g. 404 for "no value found"). */
  allow?: number[]
  /** Overrides the client's token for this one call (login checks a candidate token). */
  token?: string | null
}

/** A non-2xx answer from the server, printed the way Vault's CLI prints API errors. */
export class ApiResponseError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly method: string,
    readonly url: string,
  ) {
    // An empty error list (a bare 404) still says something readable: the HTTP status text.
    const shown = errors.length ? errors : [STATUS_CODES[status] ?? 'no error message']
    const list = `\n\n${shown.map((e) => `* ${e}`).join('\n')}`
    super(`Error making API request.\n\nURL: ${method} ${url}\nCode: ${status}. Errors:${list}`)
  }
}

/** Connection settings for the client (resolved from flags and environment). */
export interface ClientSettings {
  address: string
  token?: string
  caCert?: string
  tlsSkipVerify?: boolean
}

/** A minimal client of Stint's (Vault's) HTTP API v1. */
export interface StintClient {
  readonly address: string
  token: string | undefined
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResult>
  /** LIST, sent as `GET ?list=true` as Vault's Go client does. */
  list(path: string, options?: RequestOptions): Promise<ApiResult>
}

/**
 * Creates a client. It speaks through `node:http` (`node:https` for https addresses, loaded only
 * then) rather than `fetch`, whose HTTP stack alone costs a CLI process some 80 ms to load.
 */
export function createClient(settings: ClientSettings): StintClient {
  const address = settings.address.replace(/\/+$/, '')
  let parsed: URL
  try {
    parsed = new URL(address)
  } catch {
    throw new Error(`invalid address: expected a URL such as http://127.0.0.1:8200`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new Error(`invalid address: the scheme must be http or https`)
  }

  const client: StintClient = {
    address,
    token: settings.token,
    async request(method, path, options = {}) {
      // Each segment is percent-encoded, so `?`, `#` or `%` in a key can never change the URL.
      const encoded = path.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')
      const url = new URL(`${address}/v1/${encoded}`)
      for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v)
      const headers: Record<string, string> = { 'X-Vault-Request': 'true' }
      const token = options.token === undefined ? client.token : options.token
      if (token) headers['X-Vault-Token'] = token
      let body: string | undefined
      if (options.body !== undefined) {
        body = JSON.stringify(options.body)
        headers['Content-Type'] = options.mergePatch
          ? 'application/merge-patch+json'
          : 'application/json'
      }
      const shown = `${url.origin}${url.pathname}${url.search}`
      let status: number
      let text: string
      try {
        ;({ status, text } = await send(url, { method, headers }, body, settings))
      } catch (err) {
        const cause = (err as { code?: string }).code ?? (err as Error).message
        throw new Error(`error contacting ${url.origin}: ${cause}`)
      }
      let parsedBody: unknown = null
      if (text) {
        try {
          parsedBody = JSON.parse(text)
        } catch {
          parsedBody = null
        }
      }
      if (status >= 300 && !options.allow?.includes(status)) {
        const errors = (parsedBody as { errors?: unknown } | null)?.errors
        throw new ApiResponseError(
          status,
          Array.isArray(errors) ? errors.map(String) : text ? [text.slice(0, 500)] : [],
          method,
          shown,
        )
      }
      return { status, body: parsedBody }
    },
    list(path, options = {}) {
      return client.request('GET', path, { ...options, query: { ...options.query, list: 'true' } })
    },
  }
  return client
}

/** Sends one request (redirects are not followed) and reads the whole answer. */
async function send(
  url: URL,
  options: HttpsOptions,
  body: string | undefined,
  settings: ClientSettings,
): Promise<{ status: number; text: string }> {
  let request = httpRequest
  if (url.protocol === 'https:') {
    request = (await import('node:https')).request
    options.ca = settings.caCert ? await readFile(settings.caCert) : undefined
    options.rejectUnauthorized = !settings.tlsSkipVerify
  }
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}
