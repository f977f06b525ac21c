// Where a store lives, as the CLI is told it: `--dir`/`--file`/`--etcd` flags, or the
// location words of `kvstore copy` (`<path>`, `file:<path>`, `etcd://host:port,…/ns`).
// Opening one gives a store with the command layer's API, whichever backend it is.
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { CommandStore } from '../commands/table.js'
import { EtcdStore } from '../etcd/index.js'
import { Store, type ProgressEvent, type StoreOptions, type SyncPolicy } from '../index.js'

/** A store location. */
export type Location =
  | { readonly kind: 'dir'; readonly path: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'etcd'; readonly endpoints: readonly string[]; readonly namespace: string }

/** What the CLI needs of an open store: the command layer's methods and close(). */
export type OpenStore = CommandStore & { close(): Promise<void> }

/** A location that cannot be parsed. */
export class LocationError extends Error {}

/** The etcd port used when an `etcd://` host gives none (etcd's client port). */
const ETCD_DEFAULT_PORT = 2379

/**
 * The endpoints of `--etcd`: comma-separated http(s) URLs (blanks around commas ignored).
 * Each must be `http://` or `https://` with a host and no path beyond `/`.
 */
export function parseEndpoints(text: string): string[] {
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p !== '')
  if (parts.length === 0) throw new LocationError(`--etcd needs at least one URL, e.g. http://127.0.0.1:2379 (got '${text}')`)
  return parts.map((part) => {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(part)) {
      throw new LocationError(`--etcd: '${part}' is not an http:// or https:// URL; give http://host:port (comma-separated for several members)`)
    }
    let url: URL
    try {
      url = new URL(part)
    } catch {
      throw new LocationError(`--etcd: '${part}' is not a URL; give http://host:port (comma-separated for several members)`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new LocationError(`--etcd: '${part}' is not an http:// or https:// URL; give http://host:port`)
    }
    if (url.hostname === '') throw new LocationError(`--etcd: '${part}' has no host`)
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new LocationError(`--etcd: '${part}' must be just scheme, host and port (no path, query or credentials)`)
    }
    return `${url.protocol}//${url.host}`
  })
}

const HOST_PORT = /^(?<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::(?<port>\d{1,5}))?$/

/** `etcd://host:port[,host:port...][/namespace]` → http endpoints and the namespace (percent-decoded). */
function parseEtcdUrl(spec: string): Location {
  const rest = spec.slice('etcd://'.length)
  const slash = rest.indexOf('/')
  const hosts = slash < 0 ? rest : rest.slice(0, slash)
  const rawNamespace = slash < 0 ? '' : rest.slice(slash + 1)
  if (hosts === '') throw new LocationError(`'${spec}' names no etcd host; give etcd://host:port[,host:port...][/namespace]`)
  const endpoints = hosts.split(',').map((hp) => {
    const m = HOST_PORT.exec(hp)
    const port = m?.groups?.port === undefined ? ETCD_DEFAULT_PORT : Number(m.groups.port)
    if (m === null || port < 1 || port > 65535) {
      throw new LocationError(`'${spec}': '${hp}' is not host:port; give etcd://host:port[,host:port...][/namespace]`)
    }
    return `http://${m.groups?.host as string}:${port}`
  })
  let namespace: string
  try {
    namespace = decodeURIComponent(rawNamespace)
  } catch {
    throw new LocationError(`'${spec}': the namespace '${rawNamespace}' is not valid percent-encoding`)
  }
  return { kind: 'etcd', endpoints, namespace }
}

/** A location word of `kvstore copy`: `etcd://…`, `file:<path>`, or a directory path. */
export function parseLocation(spec: string): Location {
  if (spec === '') throw new LocationError('a store location is empty')
  if (spec.startsWith('etcd://')) return parseEtcdUrl(spec)
  if (spec.startsWith('etcd:')) throw new LocationError(`'${spec}' is not an etcd URL; give etcd://host:port[,host:port...][/namespace]`)
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length)
    if (path === '') throw new LocationError(`'${spec}' names no file; give file:<path>`)
    return { kind: 'file', path }
  }
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(spec)
  if (scheme !== null) {
    throw new LocationError(`'${spec}': unknown scheme '${scheme[1] as string}://'; a store is a directory path, file:<path> or etcd://host:port[,host:port...][/namespace]`)
  }
  return { kind: 'dir', path: spec }
}

/** The same store, written the same way: absolute paths, sorted endpoints. */
export function sameLocation(a: Location, b: Location): boolean {
  if (a.kind === 'etcd' && b.kind === 'etcd') {
    return a.namespace === b.namespace && [...a.endpoints].sort().join(',') === [...b.endpoints].sort().join(',')
  }
  if (a.kind === 'etcd' || b.kind === 'etcd') return false
  return resolve(a.path) === resolve(b.path)
}

/** Whether a store exists at `loc` (etcd: always; it is asked when opened). */
export function locationExists(loc: Location): boolean {
  if (loc.kind === 'etcd') return true
  if (!existsSync(loc.path)) return false
  const st = statSync(loc.path)
  return loc.kind === 'dir' ? st.isDirectory() : st.isFile()
}

/** Short description for messages: the path, or the endpoints and namespace. */
export function describeLocation(loc: Location): string {
  if (loc.kind !== 'etcd') return loc.path
  return `etcd ${loc.endpoints.join(',')}${loc.namespace === '' ? '' : ` (namespace '${loc.namespace}')`}`
}

/** The `parseArgs` options of the store flags `kvstore` and `kvstore serve` both take. */
export const STORE_FLAG_OPTIONS = {
  dir: { type: 'string' },
  file: { type: 'string' },
  etcd: { type: 'string' },
  namespace: { type: 'string' },
  sync: { type: 'string' },
  'read-only': { type: 'boolean', default: false },
} as const

/** What the store flags say. */
export interface StoreFlags {
  readonly location: Location
  /** No `--dir`, `--file` or `--etcd`: the default directory is used. */
  readonly defaulted: boolean
  readonly sync: SyncPolicy | undefined
  /** `--read-only`: open the directory as a follower. */
  readonly readOnly: boolean
}

/**
 * The location and options the store flags give.
 * @throws {@link LocationError} for a usage error (exit status 2).
 */
export function parseStoreFlags(v: {
  dir?: string | undefined
  file?: string | undefined
  etcd?: string | undefined
  namespace?: string | undefined
  sync?: string | undefined
  'read-only'?: boolean | undefined
}): StoreFlags {
  if ([v.dir, v.file, v.etcd].filter((x) => x !== undefined).length > 1) throw new LocationError('give one of --dir, --file and --etcd')
  if (v.namespace !== undefined && v.etcd === undefined) throw new LocationError('--namespace needs --etcd')
  if (v.sync !== undefined && v.etcd !== undefined) throw new LocationError('--sync is for directory stores, not --etcd (etcd makes every write durable)')
  if (v.sync !== undefined && !['always', 'interval', 'never'].includes(v.sync)) throw new LocationError(`--sync must be always, interval or never (got ${v.sync})`)
  const readOnly = v['read-only'] === true
  if (readOnly && (v.file !== undefined || v.etcd !== undefined)) throw new LocationError('--read-only follows a directory (--dir), not --file or --etcd')
  if (readOnly && v.sync !== undefined) throw new LocationError('--read-only never writes: --sync does not apply')
  let location: Location
  if (v.etcd !== undefined) location = { kind: 'etcd', endpoints: parseEndpoints(v.etcd), namespace: v.namespace ?? '' }
  else if (v.file !== undefined) location = { kind: 'file', path: v.file }
  else location = { kind: 'dir', path: v.dir ?? process.env.KVSTORE_DIR ?? '.kvstore-data' }
  return { location, defaulted: v.dir === undefined && v.file === undefined && v.etcd === undefined, sync: v.sync as SyncPolicy | undefined, readOnly }
}

export interface OpenLocationOptions {
  sync?: SyncPolicy | undefined
  /** Open a directory as a read-only follower. */
  readOnly?: boolean | undefined
  onProgress?: ((e: ProgressEvent) => void) | undefined
}

/** Open the store at `loc`: `Store.open({ dir | file })` or `EtcdStore.open({ endpoints, namespace })`. */
export async function openLocation(loc: Location, o: OpenLocationOptions = {}): Promise<OpenStore> {
  if (loc.kind === 'etcd') {
    return EtcdStore.open<unknown>({ endpoints: loc.endpoints, ...(loc.namespace === '' ? {} : { namespace: loc.namespace }) })
  }
  const options: StoreOptions = loc.kind === 'dir' ? { dir: loc.path } : { file: loc.path }
  if (o.sync !== undefined && loc.kind === 'dir') options.sync = o.sync
  if (o.readOnly === true) options.readOnly = true
  if (o.onProgress !== undefined) options.onProgress = o.onProgress
  return Store.open<unknown>(options)
}
