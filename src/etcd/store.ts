// EtcdStore<V>: the Store API over an etcd v3 cluster. The only file of etcd/ that wires
// parts together (client, layout, leases, committer, transactions, watch).
//
// Consistency: every read is a linearizable etcd read; every write is one etcd txn. Writes
// from one EtcdStore to one key apply in call order (#ordered); writes to different keys
// run concurrently and plain ones share txns (etcd/committer.ts). Read-modify-write calls
// (incr, collections, NX/XX, expire) read, then commit with a compare on the key record's
// mod_revision, and retry on conflict, so they are atomic against every other client.
import { randomBytes, randomInt } from 'node:crypto'
import { checkFunction, checkOneOf, checkOptionsObject, describeValue, positiveInt } from '../arguments.js'
import { systemClock, type Clock } from '../clock.js'
import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import { compileGlob } from '../glob.js'
import { copyOut, toInteger, wrongType } from '../keyspace.js'
import { prefixBounds } from '../key.js'
import { checkKeyList } from '../key-list.js'
import { abortableFeed, abortableIterator, abortableTransaction, checkSignal, throwIfAborted } from '../abort.js'
import { Limits } from '../limits.js'
import type { RangeBounds } from '../memtable.js'
import type { KeyValueStore, Namespace } from '../key-value-store.js'
import { createNamespace } from '../namespace.js'
import { DEFAULTS, type SnapshotFormatName } from '../options.js'
import type { SnapshotResult } from '../persistence/persistence.js'
import { scanBounds, scanLimit, type ScanOptions } from '../scan-options.js'
import type { Entry, KeyType, SetOptions, BatchOp, StoreStats } from '../types.js'
import { ChangeHub, type ChangeFeed, type WatchOptions } from '../watch.js'
import type { AtomicOperation } from '../atomic.js'
import type { Transaction } from '../transaction.js'
import { EtcdClient, type Compare, type EtcdKv, type TxnOp } from './client.js'
import { Committer, type Committed, type Write } from './committer.js'
import { Layout, Kind, bytesPrefixEnd, decodeRecord, encodeRecord, encodeElement, decodeElement, type KeyRecord } from './layout.js'
import { LeasePool } from './leases.js'
import { EtcdAtomic, runEtcdTransaction, type EtcdTxHost } from './transaction.js'
import { EtcdWatcher } from './watch.js'
import { exportSnapshot, importSnapshot } from './migrate.js'

/** Options of {@link EtcdStore.open}. */
export interface EtcdStoreOptions {
  /** Client URLs of the cluster's members, e.g. `['http://10.0.0.1:2379', …]`. Requests fail over between them. */
  endpoints: readonly string[]
  /** Prefix of every etcd key this store uses; stores with different namespaces share a cluster without meeting. @defaultValue '' */
  namespace?: string
  /** A call that gets no answer from any member within this many ms fails with `KV_UNAVAILABLE`. @defaultValue 5000 */
  timeoutMs?: number
  /** Clock for expiries (reads compare stored expiry times with it). Leases still run on etcd's clock. */
  clock?: Clock
  /** As for `Store`. @defaultValue 65536 */
  maxKeyBytes?: number
  /** As for `Store`, and at most 1 MiB (etcd's request limit). @defaultValue 1 MiB */
  maxValueBytes?: number
  /** As for `Store`; a batch also has to fit one etcd txn (127 ops). @defaultValue 1 MiB */
  maxBatchBytes?: number
  /** Accepted for compatibility with `Store`; etcd's leases remove expired keys. */
  expirySweepIntervalMs?: number
  /** Sliding expiry: a read of a key with an expiry pushes it to now + this (0: off). @defaultValue 0 */
  slidingTtlMs?: number
  /** As for `Store`: the TTL of plain values written without one (0: none). @defaultValue 0 */
  defaultTtlMs?: number
  /** How many retries a read-modify-write call makes on conflicts before `KV_CONFLICT`. @defaultValue 100 */
  casRetries?: number
}

const OPTION_KEYS = [
  'endpoints', 'namespace', 'timeoutMs', 'clock', 'maxKeyBytes', 'maxValueBytes', 'maxBatchBytes',
  'expirySweepIntervalMs', 'slidingTtlMs', 'defaultTtlMs', 'casRetries',
] as const

/** etcd accepts requests up to 1.5 MiB; values are base64-encoded in JSON. */
const MAX_ETCD_VALUE_BYTES = 1024 * 1024
/** Page size of scans, keys and count corrections. */
const PAGE = 1000
/** Commit markers live this long: far longer than any retry of a lost answer. */
const MARKER_LEASE_SECONDS = 600

/** A key's record as read, with its etcd metadata. `mod` is 0 when the record is missing. */
interface Read {
  readonly rec: KeyRecord | undefined
  readonly mod: number
  readonly live: boolean
  readonly kv: EtcdKv | undefined
}

/** What a read-modify-write step decided: the ops to commit (none: nothing to write) and the result. */
interface Step<T> {
  readonly ops: TxnOp[]
  readonly result: T
  /** Old generations whose elements to delete once the commit applied. */
  readonly stale?: readonly { key: string; gen: number }[] | undefined
}

/**
 * The Store API on an etcd v3 cluster.
 *
 * Open with {@link EtcdStore.open}; the methods behave as `Store`'s do, with the
 * differences listed in the README ("Beyond one machine"): versions are etcd revisions
 * (growing, shared by one commit, not consecutive), `snapshot()` needs a path, `compact()`
 * is a no-op, a batch or transaction must fit one etcd txn (`KV_BATCH_TOO_LARGE`), and an
 * unreachable cluster gives `KV_UNAVAILABLE` after `timeoutMs`.
 */
export class EtcdStore<V = unknown> implements KeyValueStore<V> {
  readonly #client: EtcdClient
  readonly #layout: Layout
  readonly #limits: Limits
  readonly #clock: Clock
  readonly #leases: LeasePool
  readonly #committer: Committer
  readonly #hub = new ChangeHub()
  readonly #watcher: EtcdWatcher
  readonly #slidingTtlMs: number
  readonly #casRetries: number
  readonly #endpoints: readonly string[]
  readonly #namespace: string
  /** The last write of each key still pending: the next write to the key waits for it. */
  readonly #tails = new Map<string, { write: Promise<unknown>; reads: Promise<unknown>[] }>()
  /** Set while clear/load runs: every call waits for it. */
  #barrier: Promise<unknown> | undefined
  #markerLease: { id: Promise<string>; at: number } | undefined
  #closed = false
  #closing: Promise<void> | undefined
  /** Highest etcd revision this store has seen: watches start after it. */
  #revision = 0
  readonly #cleanups = new Set<Promise<unknown>>()

  private constructor(o: EtcdStoreOptions) {
    checkOptionsObject('etcd option', o, OPTION_KEYS)
    if (!Array.isArray(o.endpoints) || o.endpoints.length === 0 || o.endpoints.some((e) => typeof e !== 'string' || !/^https?:\/\//.test(e))) {
      throw new StoreError('KV_INVALID_ARGUMENT', `endpoints must be a non-empty array of http(s) URLs, got ${describeValue(o.endpoints)}`)
    }
    const namespace = o.namespace ?? ''
    if (typeof namespace !== 'string' || !namespace.isWellFormed()) throw new StoreError('KV_INVALID_ARGUMENT', `namespace must be a string, got ${describeValue(namespace)}`)
    const timeoutMs = o.timeoutMs === undefined ? 5000 : positiveInt('timeoutMs', o.timeoutMs)
    this.#clock = o.clock ?? systemClock
    if (typeof this.#clock?.now !== 'function') throw new StoreError('KV_INVALID_ARGUMENT', 'clock must have a now() method')
    const maxValueBytes = o.maxValueBytes === undefined ? MAX_ETCD_VALUE_BYTES : positiveInt('maxValueBytes', o.maxValueBytes)
    if (maxValueBytes > MAX_ETCD_VALUE_BYTES) throw new StoreError('KV_INVALID_ARGUMENT', `maxValueBytes must be at most ${MAX_ETCD_VALUE_BYTES} on etcd (its request limit is 1.5 MiB)`)
    this.#limits = new Limits(
      o.maxKeyBytes === undefined ? DEFAULTS.maxKeyBytes : positiveInt('maxKeyBytes', o.maxKeyBytes),
      maxValueBytes,
      o.maxBatchBytes === undefined ? MAX_ETCD_VALUE_BYTES : positiveInt('maxBatchBytes', o.maxBatchBytes),
      this.#clock,
      o.defaultTtlMs === undefined ? 0 : positiveInt('defaultTtlMs', o.defaultTtlMs, true),
    )
    if (o.expirySweepIntervalMs !== undefined) positiveInt('expirySweepIntervalMs', o.expirySweepIntervalMs, true)
    this.#slidingTtlMs = o.slidingTtlMs === undefined ? 0 : positiveInt('slidingTtlMs', o.slidingTtlMs, true)
    this.#casRetries = o.casRetries === undefined ? 100 : positiveInt('casRetries', o.casRetries, true)
    this.#endpoints = [...o.endpoints]
    this.#namespace = namespace
    this.#client = new EtcdClient({ endpoints: o.endpoints, timeoutMs })
    this.#layout = new Layout(namespace)
    this.#leases = new LeasePool(this.#client, this.#clock)
    this.#committer = new Committer(this.#client, this.#layout, randomBytes(8).toString('hex'), () => this.#marker(), timeoutMs)
    this.#watcher = new EtcdWatcher(this.#client, this.#layout, this.#hub, this.#clock, () => this.#revision)
  }

  /**
   * Connect to the cluster and check it answers.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad options; `KV_UNAVAILABLE` when no member answers within `timeoutMs`.
   */
  static async open<V = unknown>(options: EtcdStoreOptions): Promise<EtcdStore<V>> {
    if (typeof options !== 'object' || options === null) throw new StoreError('KV_INVALID_ARGUMENT', 'EtcdStore.open needs { endpoints }')
    const store = new EtcdStore<V>(options)
    try {
      store.#seen((await store.#client.status()).revision)
      await store.#marker()
    } catch (err) {
      store.#client.close()
      throw err
    }
    return store
  }

  // ------------------------------------------------------------------ reads

  /** Value at `key`, or `undefined` when missing or expired. @throws {@link StoreError} `KV_WRONG_TYPE` for a list or hash; `KV_INVALID_KEY`; `KV_UNAVAILABLE`; `KV_CLOSED`. */
  async get(key: string): Promise<V | undefined> {
    return (await this.getEntry(key))?.value
  }

  /**
   * Values of `keys`, in order (`undefined` where missing or expired). Each key is read as
   * `get` reads it, concurrently: unlike `Store.getMany` the reads are not one point in
   * time (use `transaction` for that).
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when `keys` is not an array; as `get` for each key.
   */
  async getMany(keys: readonly string[]): Promise<(V | undefined)[]> {
    this.#checkOpen()
    const list = checkKeyList(keys, (k) => this.#limits.key(k))
    return Promise.all(list.map((k) => this.get(k)))
  }

  /** Value, version (etcd mod_revision) and expiry of a live plain key. */
  async getEntry(key: string): Promise<Entry<V> | undefined> {
    this.#checkKey(key)
    const r = await this.#read(key)
    if (!r.live || r.rec === undefined) return undefined
    if (r.rec.kind !== Kind.VALUE) throw wrongType(key, 'a plain value')
    const expiresAt = await this.#slide(key, r)
    const value = copyOut<V>(r.rec.value)
    return expiresAt !== 0 ? { value, version: r.mod, expiresAt } : { value, version: r.mod }
  }

  /** Version (etcd mod_revision) of a live key of any type. */
  async version(key: string): Promise<number | undefined> {
    this.#checkKey(key)
    const r = await this.#read(key)
    return r.live ? r.mod : undefined
  }

  /** Whether a live key of any type exists. */
  async has(key: string): Promise<boolean> {
    this.#checkKey(key)
    return (await this.#read(key)).live
  }

  /** What a live key holds. */
  async type(key: string): Promise<KeyType | undefined> {
    this.#checkKey(key)
    const r = await this.#read(key)
    if (!r.live || r.rec === undefined) return undefined
    if (r.rec.kind === Kind.LIST) return 'list'
    if (r.rec.kind === Kind.HASH) return 'hash'
    const v = r.rec.value
    if (v === null) return 'null'
    if (v instanceof Uint8Array) return 'bytes'
    return typeof v === 'object' ? 'json' : (typeof v as 'string' | 'number' | 'boolean')
  }

  /** Live keys matching a glob, in order. Ranges over the pattern's literal prefix; the glob runs here. */
  async keys(pattern = '*'): Promise<string[]> {
    this.#checkOpen()
    if (typeof pattern !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `pattern must be a string, got ${describeValue(pattern)}`)
    const glob = compileGlob(pattern)
    const out: string[] = []
    const bounds: RangeBounds = glob.prefix === '' ? {} : prefixBounds(glob.prefix)
    for await (const [key] of this.#walk(bounds, Infinity, true)) if (glob.match(key)) out.push(key)
    return out
  }

  /** Plain entries in key order (or reverse), as of the revision of the first page: a point-in-time view. Lists and hashes are skipped. */
  scan(options: ScanOptions = {}): AsyncIterableIterator<[string, V]> {
    this.#checkOpen()
    const bounds = scanBounds(options)
    const limit = scanLimit(options)
    const walk = this.#walk(bounds, limit, false)
    return abortableIterator((async function* () {
      for await (const [key, rec] of walk) if (rec.kind === Kind.VALUE) yield [key, copyOut<V>(rec.value)] as [string, V]
    })(), options.signal)
  }

  async *#walk(bounds: RangeBounds, limit: number, collections: boolean, at = 0): AsyncGenerator<[string, KeyRecord]> {
    if (limit === 0) return
    if (at === 0) await this.#waitAll()
    const L = this.#layout
    let [start, end] = L.recordRange(bounds)
    let revision = at
    let n = 0
    for (;;) {
      if (Buffer.compare(start, end) >= 0) return
      // etcd returns keys in ascending order already; asking for a sort order makes it read
      // and sort the whole remaining range for every page, so only reverse scans ask.
      const page = await this.#client.range({ key: start, rangeEnd: end, limit: PAGE, revision, ...(bounds.reverse ? { sortOrder: 'DESCEND' as const } : {}) })
      if (revision === 0) revision = page.revision
      this.#seen(page.revision)
      const now = this.#clock.now()
      for (const kv of page.kvs) {
        const rec = decodeRecord(kv.value)
        if (rec.expiresAt !== 0 && rec.expiresAt <= now) continue
        if (!collections && rec.kind !== Kind.VALUE) continue
        yield [L.keyOf(kv.key), rec]
        if (++n >= limit) return
      }
      if (!page.more || page.kvs.length === 0) return
      const last = (page.kvs[page.kvs.length - 1] as EtcdKv).key
      if (bounds.reverse) end = last
      else start = Buffer.concat([last, Buffer.from([0])])
    }
  }

  /**
   * Number of live keys (any type), exact to the millisecond: etcd's count of records at
   * one revision, minus records whose expiry passed and whose lease has not ended yet.
   */
  async count(): Promise<number> {
    this.#checkOpen()
    await this.#waitAll()
    const L = this.#layout
    const now = this.#clock.now()
    const first = await this.#client.txn([], [
      { range: { key: L.recordsStart(), rangeEnd: L.recordsEnd(), countOnly: true } },
      { range: { key: L.expiryStart(), rangeEnd: L.expiryUpTo(now), limit: PAGE } },
    ])
    this.#seen(first.revision)
    let total = first.responses[0]?.range?.count ?? 0
    let page = first.responses[1]?.range
    let after: Buffer | undefined
    // Keys found due are removed now, as Store's count() sweeps them (watchers see `expire`).
    const due: Promise<unknown>[] = []
    while (page !== undefined && page.kvs.length > 0) {
      // An index entry counts only while its record still carries that expiry.
      const entries = page.kvs.map((kv) => L.parseExpiry(kv.key))
      for (let i = 0; i < entries.length; i += 100) {
        const part = entries.slice(i, i + 100)
        const recs = await this.#client.txn([], part.map(([, key]) => ({ range: { key: L.record(key), revision: first.revision } })))
        part.forEach(([at, key], j) => {
          const kv = recs.responses[j]?.range?.kvs[0]
          if (kv === undefined) return
          const rec = decodeRecord(kv.value)
          if (rec.expiresAt !== at) return
          total--
          due.push(this.#expireNow(key, kv, rec))
        })
      }
      if (!page.more) break
      after = Buffer.concat([(page.kvs[page.kvs.length - 1] as EtcdKv).key, Buffer.from([0])])
      page = await this.#client.range({ key: after, rangeEnd: L.expiryUpTo(now), limit: PAGE, revision: first.revision })
    }
    await Promise.allSettled(due)
    return total
  }

  /** Delete a key whose expiry passed, unless it changed since `kv` was read. */
  async #expireNow(key: string, kv: EtcdKv, rec: KeyRecord): Promise<void> {
    const L = this.#layout
    const ops: TxnOp[] = [{ deleteRange: { key: kv.key } }, { deleteRange: { key: L.expiry(key, rec.expiresAt) } }]
    if (rec.kind !== Kind.VALUE) {
      const prefix = L.elements(key, rec.gen)
      ops.push({ deleteRange: { key: prefix, rangeEnd: bytesPrefixEnd(prefix) } })
    }
    await this.#commit({ compares: [{ key: kv.key, target: 'MOD', result: 'EQUAL', revision: kv.modRevision }], ops })
  }

  // ----------------------------------------------------------------- writes

  /** Set `key` (replacing any type). Options as for `Store.set`; NX/XX/KEEPTTL read first and commit with a compare. */
  async set(key: string, value: V, options?: SetOptions): Promise<boolean> {
    this.#checkKey(key)
    const stored = this.#limits.value(value)
    const at = options === undefined ? this.#limits.defaultExpiry() : this.#limits.expiresAt(options)
    if (options !== undefined && (options.ifNotExists || options.ifExists || options.keepTtl)) {
      return this.#rmw(key, async (r) => {
        if (options.ifNotExists && r.live) return { ops: [], result: false }
        if (options.ifExists && !r.live) return { ops: [], result: false }
        const expiresAt = options.keepTtl && r.live && at === 0 ? (r.rec?.expiresAt ?? 0) : at
        return { ops: await this.#putRecord(key, { kind: Kind.VALUE, expiresAt, value: stored }, false), result: true, stale: staleOf(key, r) }
      })
    }
    return this.#ordered([key], async () => {
      const c = await this.#commit({ compares: [], ops: await this.#putRecord(key, { kind: Kind.VALUE, expiresAt: at, value: stored }, true) })
      this.#afterPlain(c)
      return true
    })
  }

  /** Delete `key` (any type). Resolves `true` when a live key was removed (`true` also when the answer was lost and a retry found it applied). */
  async delete(key: string): Promise<boolean> {
    this.#checkKey(key)
    return this.#ordered([key], async () => {
      const c = await this.#commit({ compares: [], ops: [{ deleteRange: { key: this.#layout.record(key), prevKv: true } }] })
      const prev = this.#afterPlain(c)
      if (prev === undefined) return true
      const kv = prev[0]
      if (kv === undefined) return false
      // A record kvstore cannot read was there: it is gone now, and it was a key.
      const rec = decodeOrUndefined(kv.value)
      return rec === undefined || isLive(rec, this.#clock.now())
    })
  }

  /** Remove every key of the namespace, in one txn. Waits for writes in flight; later calls wait for it. */
  async clear(): Promise<void> {
    this.#checkOpen()
    await this.#exclusive(() => this.#clearInside())
  }

  /** Apply sets and deletes as one etcd txn (all or nothing). Over 127 etcd ops: `KV_BATCH_TOO_LARGE`. */
  async batch(ops: readonly BatchOp<V>[]): Promise<void> {
    this.#checkOpen()
    const prepared = this.#limits.batch(ops as readonly BatchOp<unknown>[])
    if (prepared.length === 0) return
    // The last op on a key decides it; etcd refuses a key twice in one txn.
    const last = new Map<string, (typeof prepared)[number]>()
    for (const op of prepared) {
      if (op.t !== 'set' && op.t !== 'del') continue
      last.delete(op.key)
      last.set(op.key, op)
    }
    await this.#ordered([...last.keys()], async () => {
      const txOps: TxnOp[] = []
      for (const op of last.values()) {
        if (op.t === 'set') txOps.push(...(await this.#putRecord(op.key, { kind: Kind.VALUE, expiresAt: op.expiresAt, value: op.value }, true)))
        else if (op.t === 'del') txOps.push({ deleteRange: { key: this.#layout.record(op.key), prevKv: true } })
      }
      this.#afterPlain(await this.#commit({ compares: [], ops: txOps }))
    })
  }

  /**
   * Replace the value at `key` with `fn(old)` (undefined deletes), keeping its expiry.
   * Unlike `Store.update`, other clients are not stopped meanwhile: on a conflict `fn`
   * runs again with the newer value, so it must be free of side effects.
   */
  async update(key: string, fn: (old: V | undefined) => V | undefined | Promise<V | undefined>): Promise<V | undefined> {
    this.#checkKey(key)
    checkFunction('update function', fn)
    return this.#rmw(key, async (r) => {
      if (r.live && r.rec?.kind !== Kind.VALUE) throw wrongType(key, 'a plain value')
      const old = r.live && r.rec?.kind === Kind.VALUE ? copyOut<V>(r.rec.value) : undefined
      const next = await fn(old)
      if (next === undefined) return { ops: r.rec === undefined ? [] : [{ deleteRange: { key: this.#layout.record(key) } }], result: undefined }
      const stored = this.#limits.value(next)
      const expiresAt = r.live ? (r.rec?.expiresAt ?? 0) : 0
      return { ops: await this.#putRecord(key, { kind: Kind.VALUE, expiresAt, value: stored }, false), result: copyOut<V>(stored) }
    })
  }

  // -------------------------------------------------------------------- TTL

  /** Give a live key an expiry `ttlMs` from now (0 or less: delete it). */
  expire(key: string, ttlMs: number): Promise<boolean> {
    let at: number
    try {
      at = this.#limits.deadline(positiveInt('ttl', ttlMs, true))
    } catch (err) {
      return Promise.reject(err)
    }
    return this.expireAt(key, at)
  }

  /** Give a live key the absolute expiry `at` (ms); a time not after now deletes it. */
  async expireAt(key: string, at: number): Promise<boolean> {
    this.#checkKey(key)
    positiveInt('expiresAt', at, true)
    return this.#rmw(key, async (r) => {
      if (!r.live || r.rec === undefined) return { ops: [], result: false }
      if (at <= this.#clock.now()) return { ops: [{ deleteRange: { key: this.#layout.record(key) } }], result: true, stale: staleOf(key, r) }
      return { ops: await this.#putRecord(key, { ...r.rec, expiresAt: at }, false), result: true }
    })
  }

  /** Remove a live key's expiry. */
  async persist(key: string): Promise<boolean> {
    this.#checkKey(key)
    return this.#rmw(key, async (r) => {
      if (!r.live || r.rec === undefined || r.rec.expiresAt === 0) return { ops: [], result: false }
      return { ops: await this.#putRecord(key, { ...r.rec, expiresAt: 0 }, false), result: true }
    })
  }

  /** Ms left: -2 missing, -1 no expiry. */
  async ttl(key: string): Promise<number> {
    this.#checkKey(key)
    const r = await this.#read(key)
    if (!r.live || r.rec === undefined) return -2
    return r.rec.expiresAt === 0 ? -1 : Math.max(0, r.rec.expiresAt - this.#clock.now())
  }

  /** Same as {@link expire}. */
  touch(key: string, ttlMs: number): Promise<boolean> {
    return this.expire(key, ttlMs)
  }

  // --------------------------------------------------------------- integers

  /** Add `by` to the integer at `key` (0 when missing), atomically across clients. */
  async incr(key: string, by = 1): Promise<number> {
    this.#checkKey(key)
    if (!Number.isSafeInteger(by)) throw new StoreError('KV_INVALID_ARGUMENT', `increment must be a safe integer, got ${describeValue(by)}`)
    return this.#rmw(key, async (r) => {
      const live = r.live && r.rec !== undefined
      if (live && r.rec?.kind !== Kind.VALUE) throw wrongType(key, 'an integer')
      const next = (live && r.rec?.kind === Kind.VALUE ? toInteger(key, r.rec.value) : 0) + by
      if (!Number.isSafeInteger(next)) throw new StoreError('KV_NOT_INTEGER', `increment of ${JSON.stringify(key)} would leave the safe-integer range`)
      const expiresAt = live ? (r.rec?.expiresAt ?? 0) : 0
      return { ops: await this.#putRecord(key, { kind: Kind.VALUE, expiresAt, value: next }, false), result: next }
    })
  }

  /** Subtract `by`. */
  decr(key: string, by = 1): Promise<number> {
    if (!Number.isSafeInteger(by)) return Promise.reject(new StoreError('KV_INVALID_ARGUMENT', `decrement must be a safe integer, got ${describeValue(by)}`))
    return this.incr(key, -by)
  }

  // ------------------------------------------------------------------ lists

  /** Push values at the head, in argument order (Redis LPUSH). Resolves with the new length. */
  lpush(key: string, ...values: V[]): Promise<number> {
    return this.#push(key, true, values)
  }

  /** Push values at the tail. Resolves with the new length. */
  rpush(key: string, ...values: V[]): Promise<number> {
    return this.#push(key, false, values)
  }

  async #push(key: string, left: boolean, values: V[]): Promise<number> {
    this.#checkKey(key)
    if (values.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'push needs at least one value')
    const prepared = values.map((v) => encodeElement(this.#limits.value(v)))
    return this.#rmw(key, async (r) => {
      const list = this.#list(key, r)
      const rec = list ?? { kind: Kind.LIST, expiresAt: 0, gen: newGen(), head: 0, tail: 0 }
      const ops: TxnOp[] = []
      let { head, tail } = rec
      for (const v of prepared) {
        const index = left ? --head : tail++
        ops.push({ put: { key: this.#layout.listElement(key, rec.gen, index), value: v } })
      }
      ops.push(...(await this.#putRecord(key, { ...rec, head, tail }, false)))
      return { ops, result: tail - head, stale: list === undefined ? staleOf(key, r) : undefined }
    })
  }

  /** Remove and return the head. */
  async lpop(key: string): Promise<V | undefined> {
    return (await this.#pop(key, true, 1))[0]
  }

  /** Remove and return the tail. */
  async rpop(key: string): Promise<V | undefined> {
    return (await this.#pop(key, false, 1))[0]
  }

  /** Remove and return up to `count` elements from the head (or tail). */
  popMany(key: string, count: number, left = true): Promise<V[]> {
    try {
      positiveInt('count', count, true)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#pop(key, left, count)
  }

  async #pop(key: string, left: boolean, count: number): Promise<V[]> {
    this.#checkKey(key)
    return this.#rmw(key, async (r) => {
      const list = this.#list(key, r)
      if (list === undefined || count === 0) return { ops: [], result: [] as V[] }
      const n = Math.min(count, list.tail - list.head)
      const from = left ? list.head : list.tail - n
      const got = await this.#elements(key, list, from, from + n, r.kv?.modRevision ?? 0)
      const values = got.map((v) => copyOut<V>(v))
      if (!left) values.reverse()
      const L = this.#layout
      const ops: TxnOp[] = [{ deleteRange: { key: L.listElement(key, list.gen, from), rangeEnd: L.listElement(key, list.gen, from + n) } }]
      if (n === list.tail - list.head) ops.push({ deleteRange: { key: L.record(key) } })
      else ops.push(...(await this.#putRecord(key, { ...list, head: left ? list.head + n : list.head, tail: left ? list.tail : list.tail - n }, false)))
      return { ops, result: values }
    })
  }

  /** Elements `start..stop` (inclusive, negative from the end), as Redis LRANGE. */
  async lrange(key: string, start = 0, stop = -1): Promise<V[]> {
    this.#checkKey(key)
    checkIndices(start, stop)
    const r = await this.#read(key)
    const list = this.#list(key, r)
    if (list === undefined) return []
    const len = list.tail - list.head
    const s = Math.max(0, start < 0 ? len + start : start)
    const e = Math.min(len - 1, stop < 0 ? len + stop : stop)
    if (s > e) return []
    return (await this.#elements(key, list, list.head + s, list.head + e + 1, r.kv?.modRevision ?? 0)).map((v) => copyOut<V>(v))
  }

  /** Length of the list at `key` (0 when missing). */
  async llen(key: string): Promise<number> {
    this.#checkKey(key)
    const list = this.#list(key, await this.#read(key))
    return list === undefined ? 0 : list.tail - list.head
  }

  /** Element at `index` (negative from the end). */
  async lindex(key: string, index: number): Promise<V | undefined> {
    this.#checkKey(key)
    checkIndices(index)
    const r = await this.#read(key)
    const list = this.#list(key, r)
    if (list === undefined) return undefined
    const len = list.tail - list.head
    const i = index < 0 ? len + index : index
    if (i < 0 || i >= len) return undefined
    return copyOut<V>((await this.#elements(key, list, list.head + i, list.head + i + 1, r.kv?.modRevision ?? 0))[0])
  }

  /** Replace the element at `index`. @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a missing key or an index out of range. */
  async lset(key: string, index: number, value: V): Promise<void> {
    this.#checkKey(key)
    checkIndices(index)
    const stored = encodeElement(this.#limits.value(value))
    await this.#rmw(key, async (r) => {
      const list = this.#list(key, r)
      if (list === undefined) throw new StoreError('KV_INVALID_ARGUMENT', `no such key ${JSON.stringify(key)}`)
      const len = list.tail - list.head
      const i = index < 0 ? len + index : index
      if (i < 0 || i >= len) throw new StoreError('KV_INVALID_ARGUMENT', 'list index out of range')
      return {
        ops: [{ put: { key: this.#layout.listElement(key, list.gen, list.head + i), value: stored } }, ...(await this.#putRecord(key, list, false))],
        result: undefined,
      }
    })
  }

  /** Keep only elements `start..stop` (Redis LTRIM); an empty result deletes the key. */
  async ltrim(key: string, start: number, stop: number): Promise<void> {
    this.#checkKey(key)
    checkIndices(start, stop)
    await this.#rmw(key, async (r) => {
      const list = this.#list(key, r)
      if (list === undefined) return { ops: [], result: undefined }
      const L = this.#layout
      const len = list.tail - list.head
      const s = Math.max(0, start < 0 ? len + start : start)
      const e = Math.min(len - 1, stop < 0 ? len + stop : stop)
      if (s > e) return { ops: [{ deleteRange: { key: L.record(key) } }], result: undefined, stale: staleOf(key, r) }
      const ops: TxnOp[] = []
      if (s > 0) ops.push({ deleteRange: { key: L.listElement(key, list.gen, list.head), rangeEnd: L.listElement(key, list.gen, list.head + s) } })
      if (e < len - 1) ops.push({ deleteRange: { key: L.listElement(key, list.gen, list.head + e + 1), rangeEnd: L.listElement(key, list.gen, list.tail) } })
      ops.push(...(await this.#putRecord(key, { ...list, head: list.head + s, tail: list.head + e + 1 }, false)))
      return { ops, result: undefined }
    })
  }

  // ----------------------------------------------------------------- hashes

  /** Set fields; resolves with how many were new. */
  async hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number> {
    this.#checkKey(key)
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hset takes an object or a Map of fields, got ${describeValue(fields)}`)
    }
    const named = new Map<string, Buffer>()
    const entries = fields instanceof Map ? fields.entries() : Object.entries(fields as Record<string, V>)
    for (const [f, v] of entries) {
      this.#limits.field(f)
      named.set(f, encodeElement(this.#limits.value(v)))
    }
    if (named.size === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'hset needs at least one field')
    return this.#rmw(key, async (r) => {
      const hash = this.#hash(key, r)
      const rec = hash ?? { kind: Kind.HASH, expiresAt: 0, gen: newGen(), size: 0 }
      const present = hash === undefined ? new Set<string>() : await this.#presentFields(key, hash, [...named.keys()], r.kv?.modRevision ?? 0)
      const ops: TxnOp[] = []
      let added = 0
      for (const [f, v] of named) {
        if (!present.has(f)) added++
        ops.push({ put: { key: this.#layout.hashField(key, rec.gen, f), value: v } })
      }
      ops.push(...(await this.#putRecord(key, { ...rec, size: rec.size + added }, false)))
      return { ops, result: added, stale: hash === undefined ? staleOf(key, r) : undefined }
    })
  }

  /** Value of one field. */
  async hget(key: string, field: string): Promise<V | undefined> {
    this.#checkKey(key)
    this.#limits.field(field)
    const r = await this.#read(key)
    const hash = this.#hash(key, r)
    if (hash === undefined) return undefined
    const got = await this.#client.range({ key: this.#layout.hashField(key, hash.gen, field), revision: r.kv?.modRevision ?? 0 })
    const kv = got.kvs[0]
    return kv === undefined ? undefined : copyOut<V>(decodeElement(kv.value))
  }

  /** Delete fields; resolves with how many existed. An emptied hash is deleted. */
  async hdel(key: string, ...fields: string[]): Promise<number> {
    this.#checkKey(key)
    for (const f of fields) this.#limits.field(f)
    return this.#rmw(key, async (r) => {
      const hash = this.#hash(key, r)
      if (hash === undefined) return { ops: [], result: 0 }
      const present = await this.#presentFields(key, hash, [...new Set(fields)], r.kv?.modRevision ?? 0)
      if (present.size === 0) return { ops: [], result: 0 }
      const ops: TxnOp[] = [...present].map((f) => ({ deleteRange: { key: this.#layout.hashField(key, hash.gen, f) } }))
      if (present.size === hash.size) ops.push({ deleteRange: { key: this.#layout.record(key) } })
      else ops.push(...(await this.#putRecord(key, { ...hash, size: hash.size - present.size }, false)))
      return { ops, result: present.size }
    })
  }

  /** Every field, in field order. */
  async hgetall(key: string): Promise<Map<string, V>> {
    this.#checkKey(key)
    const r = await this.#read(key)
    const hash = this.#hash(key, r)
    const m = new Map<string, V>()
    if (hash === undefined) return m
    const prefix = this.#layout.elements(key, hash.gen)
    for await (const kv of this.#rangeAll(prefix, bytesPrefixEnd(prefix), r.kv?.modRevision ?? 0)) {
      m.set(this.#layout.fieldOf(prefix, kv.key), copyOut<V>(decodeElement(kv.value)))
    }
    return m
  }

  /** Number of fields. */
  async hlen(key: string): Promise<number> {
    this.#checkKey(key)
    return this.#hash(key, await this.#read(key))?.size ?? 0
  }

  /** Whether a field exists. */
  async hexists(key: string, field: string): Promise<boolean> {
    this.#checkKey(key)
    this.#limits.field(field)
    return (await this.hget(key, field)) !== undefined
  }

  // ------------------------------------------------- transactions and atomic

  /**
   * Run `fn` as an optimistic transaction: reads at one etcd revision; the commit compares
   * the mod_revision of every key read and that no key appeared in a range scanned, and
   * retries `fn` on a conflict (`KV_CONFLICT` after `retries`, default 10). It must fit one
   * etcd txn: at most 127 keys read plus writes (`KV_BATCH_TOO_LARGE`).
   */
  async transaction<R>(fn: (tx: Transaction<V>) => R | Promise<R>, options: { retries?: number; signal?: AbortSignal } = {}): Promise<R> {
    this.#checkOpen()
    checkFunction('transaction function', fn)
    checkOptionsObject('transaction option', options, ['retries', 'signal'])
    const retries = options.retries === undefined ? 10 : positiveInt('retries', options.retries, true)
    const signal = checkSignal(options.signal)
    const pinned = this.#pinNow()
    return runEtcdTransaction<V, R>(this.#host(), abortableTransaction(fn, signal), retries, await pinned)
  }

  /** A compare-and-set builder: checks are etcd mod_revisions (`null`: the key must not exist). */
  atomic(): AtomicOperation<V> {
    this.#checkOpen()
    return new EtcdAtomic<V>(this.#host())
  }

  #host(): EtcdTxHost {
    return {
      client: this.#client,
      layout: this.#layout,
      limits: this.#limits,
      clock: this.#clock,
      commit: (compares, ops, failure) => this.#commit({ compares, ops, failure }),
      putRecord: (key, rec) => this.#putRecord(key, rec, true),
      seen: (rev) => this.#seen(rev),
      afterCommit: (c) => this.#afterPlain(c),
      ordered: (keys, fn) => this.#ordered(keys, fn),
    }
  }

  /** Changes to a key or prefix, from every client of the cluster, in revision order. */
  watch(options: WatchOptions = {}): ChangeFeed<V> {
    this.#checkOpen()
    const { signal, ...rest } = typeof options === 'object' && options !== null ? options : { signal: undefined }
    const feed = this.#hub.open(typeof options === 'object' && options !== null ? rest : options)
    this.#watcher.ensure()
    return abortableFeed(feed as ChangeFeed<V>, checkSignal(signal))
  }

  /**
   * A view of the keys under `prefix`, with this store's API and keys relative to the
   * prefix: `store.namespace('users:').get('ann')` reads `users:ann`. `keys`, `scan`,
   * `count`, `clear` and `watch` are confined to the prefix. See {@link Namespace}.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for an empty or non-string prefix.
   */
  namespace(prefix: string): Namespace<V> {
    return createNamespace<V>(this, prefix)
  }

  // ---------------------------------------------------------------- migration

  /**
   * Write every live key (types, expiries) to a kvstore snapshot file, read at one
   * revision: `Store.open({ file })` or `store.load(path)` read it. A path is required.
   */
  async snapshot(path?: string, options: { format?: SnapshotFormatName; compress?: 'gzip' | 'brotli'; signal?: AbortSignal } = {}): Promise<SnapshotResult> {
    this.#checkOpen()
    checkOptionsObject('snapshot option', options, ['format', 'compress', 'signal'])
    const signal = checkSignal(options.signal)
    throwIfAborted(signal)
    const format = checkOneOf('snapshot format', options.format, ['binary', 'json'])
    const compress = checkOneOf('snapshot compress', options.compress, ['gzip', 'brotli'])
    if (path === undefined) throw new StoreError('KV_INVALID_ARGUMENT', 'an etcd store needs a snapshot path (etcd keeps its own data)')
    const revision = await this.#pinNow()
    throwIfAborted(signal)
    return exportSnapshot(this.#exportHost(revision), path, format, compress)
  }

  /**
   * Replace the namespace's contents with a kvstore snapshot file, in txns of up to 127
   * ops after one that clears it. Not atomic for other clients: they may see it half
   * loaded. Every other call of this store waits for it.
   */
  async load(path: string, options: { signal?: AbortSignal } = {}): Promise<{ entries: number; timeMs: number }> {
    this.#checkOpen()
    if (typeof path !== 'string' || path === '') throw new StoreError('KV_INVALID_ARGUMENT', `load needs a file path, got ${describeValue(path)}`)
    checkOptionsObject('load option', options, ['signal'])
    throwIfAborted(checkSignal(options.signal))
    return this.#exclusive(() => importSnapshot(this.#exportHost(), path, this.#clearOps()))
  }

  /** etcd compacts its own history; resolves with an empty result. */
  async compact(options: { signal?: AbortSignal } = {}): Promise<SnapshotResult> {
    this.#checkOpen()
    checkOptionsObject('compact option', options, ['signal'])
    throwIfAborted(checkSignal(options.signal))
    return { path: '', format: 'binary', entries: 0, bytes: 0, timeMs: 0, seq: this.#revision }
  }

  #exportHost(revision = 0) {
    return {
      walk: () => this.#walk({}, Infinity, true, revision),
      elements: (key: string, rec: KeyRecord) => this.#allElements(key, rec, revision),
      write: async (ops: TxnOp[]) => this.#seen((await this.#commit({ compares: [], ops })).revision),
      putRecord: (key: string, rec: KeyRecord) => this.#putRecord(key, rec, false),
      layout: this.#layout,
      limits: this.#limits,
      clock: this.#clock,
      newGen,
      existing: async (max: number) => {
        const L = this.#layout
        const res = await this.#client.range({ key: L.recordsStart(), rangeEnd: L.recordsEnd(), limit: max + 1 })
        this.#seen(res.revision)
        if (res.kvs.length > max) return undefined
        return { revision: res.revision, records: res.kvs.map((kv): [Buffer, KeyRecord] => [kv.key, decodeRecord(kv.value)]) }
      },
      writeIfUnchanged: async (ops: TxnOp[], revision: number) => {
        const L = this.#layout
        const c = await this.#commit({ compares: [{ key: L.recordsStart(), rangeEnd: L.recordsEnd(), target: 'MOD', result: 'LESS', revision: revision + 1 }], ops })
        this.#seen(c.revision)
        return c.succeeded
      },
    }
  }

  /** The ops of a clear: contents deleted, commit markers ("c/") kept (they settle lost answers), the clear marker written for watchers. */
  #clearOps(): TxnOp[] {
    const ops: TxnOp[] = this.#layout.contents().map(([key, rangeEnd]) => ({ deleteRange: { key, rangeEnd } }))
    ops.push({ put: { key: this.#layout.clearMarker(), value: Buffer.alloc(0) } })
    return ops
  }

  /** Clear, inside an exclusive section. */
  async #clearInside(): Promise<void> {
    const c = await this.#commit({ compares: [], ops: this.#clearOps() })
    this.#seen(c.revision)
  }

  // ------------------------------------------------------------ stats, close

  /** Counters. `seq` is the highest etcd revision this store has seen; `keys` is not known without a request (use `count()`): -1. */
  stats(): StoreStats & { readonly endpoints: readonly string[]; readonly namespace: string; readonly txns: number; readonly writes: number } {
    return {
      mode: 'etcd',
      path: undefined,
      keys: -1,
      expiringKeys: -1,
      seq: this.#committer.lastRevision,
      sync: undefined,
      walSegment: undefined,
      walBytes: 0,
      snapshots: 0,
      compactions: 0,
      expiredRemoved: 0,
      recovery: undefined,
      failure: undefined,
      endpoints: this.#endpoints,
      namespace: this.#namespace,
      txns: this.#committer.txns,
      writes: this.#committer.writes,
    }
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** Wait for writes in flight, end watches, and drop the connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#pending(), ...this.#cleanups])
    this.#watcher.stop()
    this.#hub.endAll()
    this.#client.close()
  }

  // --------------------------------------------------------------- plumbing

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('KV_CLOSED', 'the store is closed')
  }

  #checkKey(key: string): void {
    this.#checkOpen()
    this.#limits.key(key)
  }

  #seen(revision: number): void {
    if (revision > this.#revision) this.#revision = revision
  }

  async #wait(): Promise<void> {
    while (this.#barrier !== undefined) await this.#barrier.catch(() => undefined)
  }

  /** Every call on a key still pending. */
  #pending(): Promise<unknown>[] {
    const out: Promise<unknown>[] = []
    for (const t of this.#tails.values()) out.push(t.write, ...t.reads)
    return out
  }

  /**
   * A revision that holds every write issued before this call and none issued after it
   * (multi-key reads: scan, keys, count, transactions, snapshot). Taken now; resolves
   * once the earlier writes settled.
   */
  async #pinNow(): Promise<number> {
    const earlier = [...this.#tails.values()].map((t) => t.write)
    const barrier = this.#barrier
    const revision = Math.max(this.#committer.lastRevision, this.#revision)
    if (earlier.length === 0 && barrier === undefined) return revision
    if (barrier !== undefined) await barrier.catch(() => undefined)
    await Promise.allSettled(earlier)
    await this.#wait()
    // Writes issued after this call may have landed meanwhile; the earlier ones are in.
    return this.#committer.lastRevision
  }

  /** Wait for every write issued so far (scan, keys, count read the newest revision after them). */
  async #waitAll(): Promise<void> {
    const earlier = [...this.#tails.values()].map((t) => t.write)
    await this.#wait()
    if (earlier.length > 0) await Promise.allSettled(earlier)
  }

  /** A read sees every write to its key issued before it, as with Store (a write's own read runs in its turn). */
  #read(key: string, afterWrites = true): Promise<Read> {
    return afterWrites ? this.#afterWrites(key, () => this.#readNow(key)) : this.#readNow(key)
  }

  async #readNow(key: string): Promise<Read> {
    await this.#wait()
    const res = await this.#client.range({ key: this.#layout.record(key) })
    this.#seen(res.revision)
    const kv = res.kvs[0]
    if (kv === undefined) return { rec: undefined, mod: 0, live: false, kv: undefined }
    const rec = decodeRecord(kv.value)
    return { rec, mod: kv.modRevision, live: isLive(rec, this.#clock.now()), kv }
  }

  #list(key: string, r: Read): Extract<KeyRecord, { kind: 1 }> | undefined {
    if (!r.live || r.rec === undefined) return undefined
    if (r.rec.kind !== Kind.LIST) throw wrongType(key, 'a list')
    return r.rec
  }

  #hash(key: string, r: Read): Extract<KeyRecord, { kind: 2 }> | undefined {
    if (!r.live || r.rec === undefined) return undefined
    if (r.rec.kind !== Kind.HASH) throw wrongType(key, 'a hash')
    return r.rec
  }

  /** Decoded list elements `[from, to)` (absolute indices) at `revision`. */
  async #elements(key: string, list: { gen: number }, from: number, to: number, revision: number): Promise<unknown[]> {
    const L = this.#layout
    const out: unknown[] = []
    for await (const kv of this.#rangeAll(L.listElement(key, list.gen, from), L.listElement(key, list.gen, to), revision)) out.push(decodeElement(kv.value))
    if (out.length !== to - from) throw new StoreError('KV_CORRUPT', `etcd holds ${out.length} of the ${to - from} elements of list ${JSON.stringify(key)}`)
    return out
  }

  async #presentFields(key: string, hash: { gen: number }, fields: string[], revision: number): Promise<Set<string>> {
    const present = new Set<string>()
    for (let i = 0; i < fields.length; i += 100) {
      const part = fields.slice(i, i + 100)
      const res = await this.#client.txn([], part.map((f) => ({ range: { key: this.#layout.hashField(key, hash.gen, f), revision, countOnly: true } })))
      part.forEach((f, j) => {
        if ((res.responses[j]?.range?.count ?? 0) > 0) present.add(f)
      })
    }
    return present
  }

  async *#rangeAll(start: Buffer, end: Buffer, revision: number): AsyncGenerator<EtcdKv> {
    for (;;) {
      const page = await this.#client.range({ key: start, rangeEnd: end, limit: PAGE, revision })
      yield* page.kvs
      if (!page.more || page.kvs.length === 0) return
      start = Buffer.concat([(page.kvs[page.kvs.length - 1] as EtcdKv).key, Buffer.from([0])])
      if (revision === 0) revision = page.revision
    }
  }

  /** A collection's contents, as the snapshot writer needs them. */
  async #allElements(key: string, rec: KeyRecord, rev: number): Promise<KvList | KvHash | unknown> {
    if (rec.kind === Kind.VALUE) return rec.value
    const prefix = this.#layout.elements(key, rec.gen)
    if (rec.kind === Kind.LIST) {
      const values: unknown[] = []
      for await (const kv of this.#rangeAll(this.#layout.listElement(key, rec.gen, rec.head), this.#layout.listElement(key, rec.gen, rec.tail), rev)) values.push(decodeElement(kv.value))
      return new KvList(values)
    }
    const h = new KvHash()
    for await (const kv of this.#rangeAll(prefix, bytesPrefixEnd(prefix), rev)) h.set(this.#layout.fieldOf(prefix, kv.key), decodeElement(kv.value))
    return h
  }

  /** Ops that write `key`'s record (with its lease and expiry-index entry when it expires). */
  async #putRecord(key: string, rec: KeyRecord, prevKv: boolean): Promise<TxnOp[]> {
    const record = this.#layout.record(key)
    if (rec.expiresAt === 0) return [{ put: { key: record, value: encodeRecord(rec), prevKv } }]
    const lease = await this.#leases.leaseFor(rec.expiresAt)
    return [
      { put: { key: record, value: encodeRecord(rec), lease, prevKv } },
      { put: { key: this.#layout.expiry(key, rec.expiresAt), value: Buffer.alloc(0), lease } },
    ]
  }

  /** After a plain commit: note the revision, and delete elements of collections it overwrote. Returns the record ops' previous pairs. */
  #afterPlain(c: Committed): EtcdKv[] | undefined {
    this.#seen(c.revision)
    if (c.responses === undefined) return undefined
    const prev: EtcdKv[] = []
    for (const r of c.responses) {
      for (const kv of r.prevKvs) {
        prev.push(kv)
        const rec = decodeOrUndefined(kv.value)
        if (rec !== undefined && rec.kind !== Kind.VALUE) this.#dropElements(this.#layout.keyOf(kv.key), rec.gen)
      }
    }
    return prev
  }

  /** Delete the elements of an old generation (best effort: a leftover is never read, see Layout.elements). */
  #dropElements(key: string, gen: number): void {
    const prefix = this.#layout.elements(key, gen)
    const p = this.#client.txn([], [{ deleteRange: { key: prefix, rangeEnd: bytesPrefixEnd(prefix) } }]).catch(() => undefined)
    this.#cleanups.add(p)
    void p.finally(() => this.#cleanups.delete(p))
  }

  /** Commit through the committer; with feeds open, resolve once the watch delivered the change (a write's change is in the feed when the write resolves, as with Store). */
  async #commit(w: Write): Promise<Committed> {
    const c = await this.#committer.commit(w)
    if (c.succeeded && this.#hub.size > 0) await this.#watcher.until(c.revision)
    return c
  }

  /** Read `key`, let `step` decide, commit with a compare on the record; again on conflict. */
  #rmw<T>(key: string, step: (r: Read) => Promise<Step<T>>): Promise<T> {
    return this.#ordered([key], async () => {
      for (let attempt = 0; ; attempt++) {
        const r = await this.#read(key, false)
        const s = await step(r)
        if (s.ops.length === 0) return s.result
        const compares: Compare[] = [{ key: this.#layout.record(key), target: 'MOD', result: 'EQUAL', revision: r.mod }]
        const c = await this.#commit({ compares, ops: s.ops })
        this.#seen(c.revision)
        if (c.succeeded) {
          for (const st of s.stale ?? []) this.#dropElements(st.key, st.gen)
          return s.result
        }
        if (attempt >= this.#casRetries) throw new StoreError('KV_CONFLICT', `${JSON.stringify(key)} kept changing under ${attempt + 1} attempts`)
        await new Promise((res) => setTimeout(res, randomInt(0, Math.min(50, 1 + attempt * 5))))
      }
    })
  }

  /**
   * Run the write `fn` after every call on `keys` issued before it (writes and reads), and
   * after any clear/load; later calls on those keys wait for it. This is the order
   * `Store` gives calls issued without awaiting: call order, per key.
   */
  #ordered<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const before: Promise<unknown>[] = []
    for (const k of keys) {
      const turn = this.#tails.get(k)
      if (turn !== undefined) before.push(turn.write, ...turn.reads)
    }
    const barrier = this.#barrier
    const run = async (): Promise<T> => {
      if (barrier !== undefined) await barrier.catch(() => undefined)
      if (before.length > 0) await Promise.allSettled(before)
      await this.#wait()
      return fn()
    }
    const p = before.length === 0 && barrier === undefined ? fn() : run()
    const settled = p.then(() => undefined, () => undefined)
    const turn = { write: settled, reads: [] as Promise<unknown>[] }
    for (const k of keys) this.#tails.set(k, turn)
    void settled.then(() => {
      for (const k of keys) if (this.#tails.get(k) === turn && turn.reads.length === 0) this.#tails.delete(k)
    })
    return p
  }

  /** Run the read `fn` after the writes to `key` issued before it; later writes wait for it. */
  #afterWrites<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let turn = this.#tails.get(key)
    const p = turn === undefined ? fn() : turn.write.then(fn)
    if (turn === undefined) {
      turn = { write: Promise.resolve(), reads: [] }
      this.#tails.set(key, turn)
    }
    const settled = p.then(() => undefined, () => undefined)
    const t = turn
    t.reads.push(settled)
    void settled.then(() => {
      const i = t.reads.indexOf(settled)
      if (i >= 0) t.reads.splice(i, 1)
      if (t.reads.length === 0 && this.#tails.get(key) === t) {
        void t.write.then(() => {
          if (t.reads.length === 0 && this.#tails.get(key) === t) this.#tails.delete(key)
        })
      }
    })
    return p
  }

  /** Run `fn` once every pending write settled, with every later call waiting for it. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const pending = [...this.#pending(), this.#barrier ?? Promise.resolve()]
    const p = (async () => {
      await Promise.allSettled(pending)
      return fn()
    })()
    const b = p.then(() => undefined, () => undefined)
    this.#barrier = b
    void b.then(() => {
      if (this.#barrier === b) this.#barrier = undefined
    })
    return p
  }

  /** Sliding expiry: push a read key's expiry, as a write. Returns the expiry to report. */
  async #slide(key: string, r: Read): Promise<number> {
    const exp = r.rec?.expiresAt ?? 0
    if (this.#slidingTtlMs === 0 || exp === 0 || this.#closed) return exp
    const at = this.#clock.now() + this.#slidingTtlMs
    return (await this.expireAt(key, at)) ? at : exp
  }

  async #marker(): Promise<string> {
    const now = Date.now()
    if (this.#markerLease === undefined || now - this.#markerLease.at > (MARKER_LEASE_SECONDS * 1000) / 2) {
      const id = this.#client.grant(MARKER_LEASE_SECONDS)
      this.#markerLease = { id, at: now }
      id.catch(() => {
        if (this.#markerLease?.id === id) this.#markerLease = undefined
      })
    }
    return this.#markerLease.id
  }
}

/** The record, or undefined for bytes kvstore never writes (a write replacing them must still succeed). */
function decodeOrUndefined(b: Buffer): KeyRecord | undefined {
  try {
    return decodeRecord(b)
  } catch {
    return undefined
  }
}

function isLive(rec: KeyRecord, now: number): boolean {
  return rec.expiresAt === 0 || rec.expiresAt > now
}

/** The generation a read found, to drop once a write replaced it with a new collection or value. */
function staleOf(key: string, r: Read): { key: string; gen: number }[] | undefined {
  const rec = r.rec
  return rec !== undefined && rec.kind !== Kind.VALUE ? [{ key, gen: rec.gen }] : undefined
}

function newGen(): number {
  return randomInt(1, 2 ** 47)
}

function checkIndices(...indices: number[]): void {
  for (const i of indices) {
    if (!Number.isSafeInteger(i)) throw new StoreError('KV_INVALID_ARGUMENT', `list indices must be integers, got ${describeValue(i)}`)
  }
}
