// ServerOptions: every option of the RESP server, its default, and the one place they are checked.
import { checkOptionsObject, describeValue, positiveInt } from '../arguments.js'
import { StoreError } from '../errors.js'

/** Options of {@link createServer}. Every limit, when exceeded, gets the client a RESP error and a closed connection. */
export interface ServerOptions {
  /**
   * Password clients must give with `AUTH <password>` (or `HELLO 3 AUTH default <password>`)
   * before any other command runs. Compared in constant time. Empty or unset: no authentication.
   * @defaultValue unset
   */
  requirepass?: string
  /** Most connections open at once; one more is told `ERR max number of clients reached` and closed. @defaultValue 10000 */
  maxClients?: number
  /** Close a connection idle for this long (no request, nothing running). `0` never closes idle connections. @defaultValue 0 */
  idleTimeoutMs?: number
  /** Largest bulk string a client may send, in bytes (Redis `proto-max-bulk-len`). @defaultValue 67108864 (64 MiB, the store's default `maxValueBytes`) */
  maxBulkBytes?: number
  /** Most elements in one request (the command name and its arguments). @defaultValue 1048576 */
  maxArrayLength?: number
  /** Largest request being received, in bytes (Redis `client-query-buffer-limit`). @defaultValue 268435456 (256 MiB) */
  maxQueryBufferBytes?: number
  /**
   * Replies waiting for a client that reads too slowly, in bytes (Redis `client-output-buffer-limit`
   * hard limit). The server stops reading a client's requests while its replies are not drained;
   * a client whose unsent replies still exceed this is closed.
   * @defaultValue 67108864 (64 MiB)
   */
  maxOutputBufferBytes?: number
  /**
   * Send a reply only once every write made before it is durable (`store.flush()` before each
   * batch of replies), as Redis's `appendfsync always`. Replies of reads wait too, so no client is
   * shown a value a power loss could take back. With a store opened `sync: 'never'` this turns
   * pipelined and concurrent requests into one datasync per batch (group commit across clients).
   * @defaultValue `true` when the store's `sync` is `'always'`, else `false`
   */
  durableReplies?: boolean
  /** Milliseconds {@link KvServer.close} waits for connections to finish what they started before cutting them. @defaultValue 5000 */
  closeTimeoutMs?: number
}

/** Options after defaults. */
export interface ResolvedServerOptions {
  readonly requirepass: string | undefined
  readonly maxClients: number
  readonly idleTimeoutMs: number
  readonly maxBulkBytes: number
  readonly maxArrayLength: number
  readonly maxQueryBufferBytes: number
  readonly maxOutputBufferBytes: number
  readonly durableReplies: boolean | undefined
  readonly closeTimeoutMs: number
}

const KEYS = [
  'requirepass', 'maxClients', 'idleTimeoutMs', 'maxBulkBytes', 'maxArrayLength', 'maxQueryBufferBytes', 'maxOutputBufferBytes', 'durableReplies', 'closeTimeoutMs',
] as const

/**
 * Check `options` and fill in defaults.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for an unknown key or a value of the wrong type or range.
 */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  checkOptionsObject('server option', options, KEYS)
  const o = options
  const int = (name: (typeof KEYS)[number], fallback: number, allowZero = false): number =>
    o[name] === undefined ? fallback : positiveInt(name, o[name], allowZero)
  if (o.requirepass !== undefined && typeof o.requirepass !== 'string') {
    throw new StoreError('KV_INVALID_ARGUMENT', `requirepass must be a string, got ${describeValue(o.requirepass)}`)
  }
  if (o.durableReplies !== undefined && typeof o.durableReplies !== 'boolean') {
    throw new StoreError('KV_INVALID_ARGUMENT', `durableReplies must be a boolean, got ${describeValue(o.durableReplies)}`)
  }
  const resolved: ResolvedServerOptions = {
    requirepass: o.requirepass === '' ? undefined : o.requirepass,
    maxClients: int('maxClients', 10_000),
    idleTimeoutMs: int('idleTimeoutMs', 0, true),
    maxBulkBytes: int('maxBulkBytes', 64 * 1024 * 1024),
    maxArrayLength: int('maxArrayLength', 1024 * 1024),
    maxQueryBufferBytes: int('maxQueryBufferBytes', 256 * 1024 * 1024),
    maxOutputBufferBytes: int('maxOutputBufferBytes', 64 * 1024 * 1024),
    durableReplies: o.durableReplies,
    closeTimeoutMs: int('closeTimeoutMs', 5000, true),
  }
  if (resolved.maxQueryBufferBytes < resolved.maxBulkBytes) {
    throw new StoreError('KV_INVALID_ARGUMENT', `maxQueryBufferBytes (${resolved.maxQueryBufferBytes}) must be at least maxBulkBytes (${resolved.maxBulkBytes})`)
  }
  return resolved
}
