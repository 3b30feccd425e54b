/** What the mount table knows of one mount: shared by the router, requests and backends. */

export interface MountConfig {
  /** Seconds; 0 = system default. */
  defaultLeaseTtl: number
  /** Seconds; 0 = system max. */
  maxLeaseTtl: number
  forceNoCache: boolean
  auditNonHmacRequestKeys?: string[]
  auditNonHmacResponseKeys?: string[]
  listingVisibility?: string
  passthroughRequestHeaders?: string[]
  allowedResponseHeaders?: string[]
  tokenType?: string
}

/** One row of the mount table. Auth mounts have paths under `auth/`. */
export interface MountEntry {
  id: string
  /** With trailing slash: `secret/`, `kv/team-a/`, `auth/approle/`. */
  path: string
  kind: 'secret' | 'auth'
  type: string
  description: string
  accessor: string
  options: Record<string, string> | null
  config: MountConfig
  local: boolean
  sealWrap: boolean
  createdAt: number
}
