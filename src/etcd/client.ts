// The etcd v3 client kvstore uses: the JSON gateway (`/v3/...`, official since etcd 3.3)
// over Node's built-in fetch. No dependency, and watches stream as newline-delimited JSON.
//
// Failover rules: a request goes to the endpoint that answered last. Reads (`range`) are
// idempotent and move on to the next endpoint when one fails or times out. Writes (`txn`,
// `put`, lease grants) are never sent twice by this client: when the outcome is unknown
// (the connection dropped after the request left) the caller gets `KV_UNAVAILABLE` with
// `uncertain: true` and decides, e.g. by reading a commit marker (see etcd/store.ts).
import { StoreError } from '../errors.js'

/** A key-value pair as etcd returns it (bytes decoded from base64). */
export interface EtcdKv {
  readonly key: Buffer
  readonly value: Buffer
  readonly createRevision: number
  readonly modRevision: number
  readonly version: number
  readonly lease: string
}

/** `RangeRequest` fields this client uses. Keys are bytes. */
export interface RangeRequest {
  key: Buffer
  rangeEnd?: Buffer
  limit?: number
  revision?: number
  countOnly?: boolean
  keysOnly?: boolean
  sortOrder?: 'ASCEND' | 'DESCEND'
}

export interface RangeResponse {
  readonly revision: number
  readonly kvs: EtcdKv[]
  readonly count: number
  readonly more: boolean
}

/** One compare of a txn. `target: 'MOD'` compares `mod_revision` (0 for a missing key). */
export interface Compare {
  key: Buffer
  rangeEnd?: Buffer
  target: 'MOD' | 'VERSION' | 'CREATE'
  result: 'EQUAL' | 'LESS' | 'GREATER' | 'NOT_EQUAL'
  revision: number
}

export type TxnOp =
  | { put: { key: Buffer; value: Buffer; lease?: string; prevKv?: boolean } }
  | { deleteRange: { key: Buffer; rangeEnd?: Buffer; prevKv?: boolean } }
  | { range: RangeRequest }

/** What one op of a txn answered: a range's result, or the previous pairs a put/delete asked for. */
export interface TxnOpResult {
  readonly range?: RangeResponse
  readonly prevKvs: EtcdKv[]
  readonly deleted: number
}

export interface TxnResponse {
  readonly succeeded: boolean
  readonly revision: number
  /** One per op of the branch taken. */
  readonly responses: TxnOpResult[]
}

/** A watch event. `type` is `'PUT'` or `'DELETE'`. */
export interface WatchEvent {
  readonly type: 'PUT' | 'DELETE'
  readonly kv: EtcdKv
  /** The pair before the event, when etcd still had it. */
  readonly prevKv: EtcdKv | undefined
}

export interface EtcdClientOptions {
  /** Client URLs, e.g. `['http://127.0.0.1:2379']`. */
  readonly endpoints: readonly string[]
  /** A request with no answer after this many ms fails with `KV_UNAVAILABLE`. */
  readonly timeoutMs: number
}

/**
 * Longest wait for one attempt. A member cut off from its leader holds a request for its
 * own request timeout (about 5 s) before it answers; giving up sooner and asking another
 * member (reads), or sending again (writes, which commit markers make safe), gets through
 * an election in about a second.
 */
const ATTEMPT_TIMEOUT_MS = 1500

/** Error codes of etcd's gRPC status that mean "try again elsewhere / later". */
const UNAVAILABLE_GRPC = new Set([4 /* deadline */, 13 /* internal: leader changed */, 14 /* unavailable */])

/**
 * A thin etcd v3 client over the JSON gateway.
 *
 * Every error is a {@link StoreError}: `KV_UNAVAILABLE` when no member answered in time
 * (`cause` keeps the last failure), `KV_BATCH_TOO_LARGE` for etcd's txn and request limits,
 * `KV_OVERFLOW` for a revision etcd has compacted, `KV_IO` for anything else etcd refused.
 */
export class EtcdClient {
  readonly #endpoints: string[]
  readonly #timeoutMs: number
  #current = 0
  #closed = false
  readonly #aborts = new Set<AbortController>()

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'etcd needs at least one endpoint')
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ''))
    this.#timeoutMs = options.timeoutMs
  }

  /** The endpoint requests go to first. */
  get endpoint(): string {
    return this.#endpoints[this.#current] as string
  }

  /** Linearizable range read; retried on other members. */
  async range(req: RangeRequest): Promise<RangeResponse> {
    return parseRange(await this.#call('/v3/kv/range', rangeBody(req), true))
  }

  /** One txn: compares, then the success (or failure) ops. Never retried. */
  async txn(compare: readonly Compare[], success: readonly TxnOp[], failure: readonly TxnOp[] = []): Promise<TxnResponse> {
    const body = {
      compare: compare.map(compareBody),
      success: success.map(opBody),
      failure: failure.map(opBody),
    }
    const res = (await this.#call('/v3/kv/txn', body, false)) as RawTxn
    return {
      succeeded: res.succeeded === true,
      revision: num(res.header?.revision),
      responses: (res.responses ?? []).map((r) => {
        if (r.response_range !== undefined) return { range: parseRange({ ...r.response_range, header: res.header }), prevKvs: [], deleted: 0 }
        const d = r.response_delete_range
        if (d !== undefined) return { prevKvs: (d.prev_kvs ?? []).map(parseKv), deleted: num(d.deleted) }
        const p = r.response_put
        return { prevKvs: p?.prev_kv !== undefined ? [parseKv(p.prev_kv)] : [], deleted: 0 }
      }),
    }
  }

  /** A lease of `ttlSeconds`; resolves with its id. */
  async grant(ttlSeconds: number): Promise<string> {
    const res = (await this.#call('/v3/lease/grant', { TTL: String(ttlSeconds) }, false)) as { ID?: string }
    if (res.ID === undefined) throw new StoreError('KV_IO', 'etcd granted a lease without an id')
    return res.ID
  }

  /** Cluster status of the current endpoint (used by `stats()` and health checks). */
  async status(): Promise<{ revision: number; leader: string; dbSize: number }> {
    const res = (await this.#call('/v3/maintenance/status', {}, true)) as { header?: { revision?: string }; leader?: string; dbSize?: string }
    return { revision: num(res.header?.revision), leader: res.leader ?? '0', dbSize: num(res.dbSize) }
  }

  /**
   * Watch `[key, rangeEnd)` from `startRevision`. `onEvents` gets each batch in revision
   * order. Resolves when the stream ends; rejects with `KV_OVERFLOW` when etcd has
   * compacted past `startRevision`, `KV_UNAVAILABLE` when the member went away.
   * `signal` ends it quietly.
   */
  async watch(
    key: Buffer,
    rangeEnd: Buffer | undefined,
    startRevision: number,
    onEvents: (events: WatchEvent[], revision: number) => void,
    signal: AbortSignal,
    onCreated?: () => void,
  ): Promise<void> {
    const create: Record<string, unknown> = { key: key.toString('base64'), start_revision: String(startRevision), prev_kv: true }
    if (rangeEnd !== undefined) create.range_end = rangeEnd.toString('base64')
    const endpoint = this.endpoint
    let res: Response
    try {
      res = await fetch(`${endpoint}/v3/watch`, {
        method: 'POST',
        body: JSON.stringify({ create_request: create }),
        headers: { 'content-type': 'application/json' },
        signal,
      })
    } catch (err) {
      if (signal.aborted) return
      this.#rotate(endpoint)
      throw unavailable(`etcd watch on ${endpoint} failed`, err, true)
    }
    if (!res.ok || res.body === null) throw await httpError(res)
    const decoder = new TextDecoder()
    let buffered = ''
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true })
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim()
          buffered = buffered.slice(nl + 1)
          if (line === '') continue
          const msg = JSON.parse(line) as { result?: RawWatch; error?: RawError }
          if (msg.error !== undefined) throw grpcError(msg.error)
          const r = msg.result
          if (r === undefined) continue
          if (r.compact_revision !== undefined && num(r.compact_revision) > 0) {
            throw new StoreError('KV_OVERFLOW', `etcd has compacted its history past revision ${startRevision} (oldest kept: ${r.compact_revision})`)
          }
          if (r.canceled === true) throw new StoreError('KV_UNAVAILABLE', `etcd cancelled the watch: ${r.cancel_reason ?? 'no reason given'}`)
          if (r.created === true) onCreated?.()
          if (r.events !== undefined && r.events.length > 0) {
            onEvents(
              r.events.map((e) => ({ type: e.type === 'DELETE' ? 'DELETE' : 'PUT', kv: parseKv(e.kv as RawKv), prevKv: e.prev_kv === undefined ? undefined : parseKv(e.prev_kv) })),
              num(r.header?.revision),
            )
          }
        }
      }
    } catch (err) {
      if (signal.aborted) return
      if (err instanceof StoreError) throw err
      this.#rotate(endpoint)
      throw unavailable(`etcd watch stream from ${endpoint} broke`, err, true)
    }
    if (!signal.aborted) {
      this.#rotate(endpoint)
      throw new StoreError('KV_UNAVAILABLE', `etcd watch stream from ${endpoint} ended`)
    }
  }

  /** Abort every request in flight; later calls reject with `KV_CLOSED`. */
  close(): void {
    this.#closed = true
    for (const a of this.#aborts) a.abort()
  }

  #rotate(failed: string): void {
    if (this.endpoint === failed) this.#current = (this.#current + 1) % this.#endpoints.length
  }

  async #call(path: string, body: unknown, retry: boolean): Promise<unknown> {
    const deadline = Date.now() + this.#timeoutMs
    const text = JSON.stringify(body)
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new StoreError('KV_CLOSED', 'the store is closed')
      const endpoint = this.endpoint
      const left = deadline - Date.now()
      if (left <= 0 || (attempt > 0 && !retry)) throw unavailable(`no etcd member answered ${path} within ${this.#timeoutMs} ms`, last, !retry)
      const abort = new AbortController()
      this.#aborts.add(abort)
      const timer = setTimeout(() => abort.abort(), Math.min(left, ATTEMPT_TIMEOUT_MS))
      let sent = false
      try {
        const res = await fetch(`${endpoint}${path}`, { method: 'POST', body: text, headers: { 'content-type': 'application/json' }, signal: abort.signal })
        sent = true
        const json = (await res.json()) as RawError & Record<string, unknown>
        if (res.ok && json.error === undefined && json.code === undefined) return json
        const err = grpcError(json, res.status)
        if (err.code !== 'KV_UNAVAILABLE') throw err
        last = err
      } catch (err) {
        if (err instanceof StoreError && err.code !== 'KV_UNAVAILABLE') throw err
        if (this.#closed) throw new StoreError('KV_CLOSED', 'the store is closed')
        last = err
        // A write whose request may have reached etcd is not resent: its outcome is unknown.
        if (!retry && (sent || !isConnectRefused(err))) throw unavailable(`etcd ${path} on ${endpoint} failed; the outcome is unknown`, err, true)
      } finally {
        clearTimeout(timer)
        this.#aborts.delete(abort)
      }
      this.#rotate(endpoint)
      if (attempt >= this.#endpoints.length - 1) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))))
    }
  }
}

/** `KV_UNAVAILABLE`; `uncertain` says the request may have been applied. */
export function unavailable(message: string, cause: unknown, uncertain: boolean): StoreError {
  const err = new StoreError('KV_UNAVAILABLE', cause instanceof Error ? `${message}: ${cause.message}` : message, { cause })
  Object.defineProperty(err, 'uncertain', { value: uncertain, enumerable: false })
  return err
}

/** Whether a `KV_UNAVAILABLE` error may have been applied by etcd. */
export function isUncertain(err: unknown): boolean {
  return (err as { uncertain?: boolean } | null)?.uncertain === true
}

function isConnectRefused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } } | null)?.cause
  return cause?.code === 'ECONNREFUSED'
}

interface RawError {
  error?: string
  message?: string
  code?: number
}
interface RawKv {
  key?: string
  value?: string
  create_revision?: string
  mod_revision?: string
  version?: string
  lease?: string
}
interface RawRange {
  header?: { revision?: string }
  kvs?: RawKv[]
  count?: string
  more?: boolean
}
interface RawTxn {
  header?: { revision?: string }
  succeeded?: boolean
  responses?: {
    response_range?: RawRange
    response_put?: { prev_kv?: RawKv }
    response_delete_range?: { deleted?: string; prev_kvs?: RawKv[] }
  }[]
}
interface RawWatch {
  header?: { revision?: string }
  created?: boolean
  canceled?: boolean
  cancel_reason?: string
  compact_revision?: string
  events?: { type?: string; kv?: RawKv; prev_kv?: RawKv }[]
}

function num(s: string | number | undefined): number {
  return s === undefined ? 0 : Number(s)
}

function parseKv(kv: RawKv): EtcdKv {
  return {
    key: Buffer.from(kv.key ?? '', 'base64'),
    value: Buffer.from(kv.value ?? '', 'base64'),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
    lease: kv.lease ?? '0',
  }
}

function parseRange(r: unknown): RangeResponse {
  const raw = r as RawRange
  return { revision: num(raw.header?.revision), kvs: (raw.kvs ?? []).map(parseKv), count: num(raw.count), more: raw.more === true }
}

function rangeBody(req: RangeRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { key: req.key.toString('base64') }
  if (req.rangeEnd !== undefined) body.range_end = req.rangeEnd.toString('base64')
  if (req.limit !== undefined) body.limit = String(req.limit)
  if (req.revision !== undefined && req.revision > 0) body.revision = String(req.revision)
  if (req.countOnly === true) body.count_only = true
  if (req.keysOnly === true) body.keys_only = true
  if (req.sortOrder !== undefined) {
    body.sort_order = req.sortOrder
    body.sort_target = 'KEY'
  }
  return body
}

function compareBody(c: Compare): Record<string, unknown> {
  const body: Record<string, unknown> = { key: c.key.toString('base64'), target: c.target, result: c.result }
  if (c.rangeEnd !== undefined) body.range_end = c.rangeEnd.toString('base64')
  if (c.target === 'MOD') body.mod_revision = String(c.revision)
  else if (c.target === 'CREATE') body.create_revision = String(c.revision)
  else body.version = String(c.revision)
  return body
}

function opBody(op: TxnOp): Record<string, unknown> {
  if ('put' in op) {
    const p: Record<string, unknown> = { key: op.put.key.toString('base64'), value: op.put.value.toString('base64') }
    if (op.put.lease !== undefined) p.lease = op.put.lease
    if (op.put.prevKv === true) p.prev_kv = true
    return { request_put: p }
  }
  if ('deleteRange' in op) {
    const d: Record<string, unknown> = { key: op.deleteRange.key.toString('base64') }
    if (op.deleteRange.rangeEnd !== undefined) d.range_end = op.deleteRange.rangeEnd.toString('base64')
    if (op.deleteRange.prevKv === true) d.prev_kv = true
    return { request_delete_range: d }
  }
  return { request_range: rangeBody(op.range) }
}

function grpcError(e: RawError, status?: number): StoreError {
  const message = e.message ?? e.error ?? `HTTP ${status ?? '?'}`
  const text = `etcd: ${message.replace(/^etcdserver: /, '')}`
  if (/too many operations|request is too large|exceeds|too large/.test(message)) return new StoreError('KV_BATCH_TOO_LARGE', text)
  if (/compacted/.test(message)) return new StoreError('KV_OVERFLOW', text)
  if ((e.code !== undefined && UNAVAILABLE_GRPC.has(e.code)) || status === 503 || /leader|timed out|unavailable|not capable|stopped/.test(message)) {
    return unavailable(text, undefined, true)
  }
  return new StoreError('KV_IO', text)
}

async function httpError(res: Response): Promise<StoreError> {
  try {
    return grpcError((await res.json()) as RawError, res.status)
  } catch {
    return new StoreError('KV_IO', `etcd answered HTTP ${res.status}`)
  }
}
