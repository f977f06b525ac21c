// The facade: each public method validates its arguments, takes its gate and calls one
// part. This is the only file that wires the parts together (docs/ARCHITECTURE.md).
import type { KeyValueStore, Namespace } from './key-value-store.js'
import { createNamespace } from './namespace.js'
import { resolve as resolvePath } from 'node:path'
import { checkFunction, checkOneOf, checkOptionsObject, describeValue, positiveInt } from './arguments.js'
import type { Op } from './codec/ops.js'
import { CollectionOps } from './collection-ops.js'
import { ValueOps } from './value-ops.js'
import { CommitFunnel, resolved } from './commit.js'
import { asStoreError, StoreError } from './errors.js'
import { OS_FILES } from './fs/fs.js'
import { checkKeyList } from './key-list.js'
import { abortableFeed, abortableIterator, abortableTransaction, checkSignal, throwIfAborted } from './abort.js'
import { Gate } from './gate.js'
import { ExpirySweeper } from './expiry-sweeper.js'
import { copyOut, isCollection, Keyspace } from './keyspace.js'
import { Limits } from './limits.js'
import { MemoryBudget } from './memory-budget.js'
import type { RangeBounds } from './memtable.js'
import { resolveMemoryOptions, resolveOptions, type MemoryOptions, type ProgressEvent, type ResolvedOptions, type SnapshotFormatName, type StoreOptions } from './options.js'
import { createPersistence } from './persistence/create.js'
import { FollowerPersistence, readOnlyError } from './persistence/follower.js'
import { Maintenance } from './maintenance.js'
import type { Persistence, SnapshotResult } from './persistence/persistence.js'
import { scanBounds, scanLimit, type ScanOptions } from './scan-options.js'
import { createAtomic, type AtomicOperation } from './atomic.js'
import { runTransaction, type Transaction, type TransactionHost } from './transaction.js'
import type { BatchOp, Entry, KeyType, SetOptions, StoreStats } from './types.js'
import { ChangeHub, type Change, type ChangeFeed, type FeedHistory, type WatchOptions } from './watch.js'
import { openHistory } from './change-history.js'

export type { ScanOptions } from './scan-options.js'
export type { BatchOp, Entry, KeyType, SetOptions, StoreStats } from './types.js'
export type { SnapshotResult } from './persistence/persistence.js'
export type { FollowerStats } from './persistence/follower.js'

const RESOLVED = resolved.void

/** The history of a feed that starts at the store's seq. */
const EMPTY_HISTORY: AsyncIterator<Change[]> = { next: () => Promise.resolve({ value: undefined, done: true }) }

/** Transactions and atomic operations take only an expiry. */
const EXPIRY_OPTION_KEYS = ['ttl', 'expiresAt'] as const
const SNAPSHOT_OPTION_KEYS = ['format', 'compress', 'signal'] as const

/**
 * A typed, ordered, optionally persistent key-value map.
 *
 * Open one with {@link Store.open}. Keys are non-empty strings ordered by UTF-16 code
 * units; values are JSON data or `Uint8Array` (see {@link Value}), plus lists and hashes
 * built with the list and hash methods.
 *
 * Concurrency: every method is safe to call at any time without awaiting earlier
 * calls. A write is applied (visible to reads) when its call returns and is durable
 * when its promise resolves; writes are applied and logged in call order. Single-key
 * writes, batches and transaction commits run synchronously with no lock taken when
 * nothing exclusive is running; `load`, `update` and `close` take the exclusive lock,
 * and reads or writes issued meanwhile wait behind them (FIFO). Snapshots, scans and
 * transactions read copy-on-write point-in-time views and never block writers.
 */
export class Store<V = unknown> implements KeyValueStore<V> {
  readonly #o: ResolvedOptions
  readonly #ks: Keyspace
  readonly #persist: Persistence
  /** Set in follower mode (`readOnly`): the same object as `#persist`. */
  readonly #follower: FollowerPersistence | undefined
  /** `waitFor` calls waiting for the follower to apply their seq, in no particular order. */
  readonly #waiters = new Set<{ readonly seq: number; readonly done: (err?: StoreError) => void }>()
  readonly #gate = new Gate()
  readonly #hub = new ChangeHub()
  readonly #limits: Limits
  readonly #funnel: CommitFunnel
  readonly #values: ValueOps<V>
  readonly #collections: CollectionOps<V>
  readonly #sweeper: ExpirySweeper
  readonly #budget: MemoryBudget
  readonly #host: TransactionHost
  #closed = false
  #closing: Promise<void> | undefined
  readonly #maintenance: Maintenance

  private constructor(o: ResolvedOptions) {
    this.#o = o
    this.#ks = new Keyspace(o.clock)
    const path = o.path === undefined ? undefined : resolvePath(o.path)
    if (o.readOnly) {
      this.#follower = new FollowerPersistence(path as string, {
        fs: o.fs,
        limits: { maxKeyBytes: o.maxKeyBytes, maxValueBytes: o.maxValueBytes },
        pollIntervalMs: o.followIntervalMs,
        watchDirectory: o.fs.scope === OS_FILES,
        now: () => Date.now(),
        onProgress: (e) => this.#progress(e),
        reset: (mt, seq) => this.#funnel.resetFollowed(mt, seq),
        apply: (ops, seq) => this.#funnel.applyFollowed(ops, seq),
        advanced: (seq) => this.#wake(seq),
      })
      this.#persist = this.#follower
    } else {
      this.#follower = undefined
      this.#persist = createPersistence(o, path, (e) => this.#progress(e))
    }
    this.#limits = new Limits(o.maxKeyBytes, o.maxValueBytes, o.maxBatchBytes, o.clock, o.defaultTtlMs)
    this.#funnel = new CommitFunnel(this.#persist, this.#ks, this.#hub, () => this.#maintenance.compactSoon())
    this.#values = new ValueOps<V>(this.#ks, this.#funnel, this.#limits, o.slidingTtlMs, () => !this.#closed && this.#persist.failure === undefined)
    this.#collections = new CollectionOps<V>(this.#ks, this.#funnel, this.#limits)
    this.#maintenance = new Maintenance({
      fs: o.fs,
      persist: this.#persist,
      ks: this.#ks,
      funnel: this.#funnel,
      gate: this.#gate,
      hub: this.#hub,
      limits: this.#limits,
      fileMode: o.fileMode,
      progress: (e) => this.#progress(e),
      checkWritable: () => this.#checkWritable(),
      running: () => !this.#closed && this.#closing === undefined,
    })
    this.#sweeper = new ExpirySweeper(this.#ks, this.#hub, () => this.#funnel.seq, () => !this.#closed && this.#gate.idle)
    this.#budget = new MemoryBudget(
      this.#ks,
      {
        evict: (keys) => this.#funnel.evict(keys),
        purgeExpired: () => this.#sweeper.purge(1),
        logRemoved: (ops) => this.#funnel.commitUnbudgeted(ops),
      },
      o.maxMemoryBytes,
      o.evictionPolicy,
    )
    this.#funnel.budget = this.#budget
    // The transaction host is a closure, not public methods: nothing internal is reachable.
    const limits = this.#limits
    this.#host = {
      validateKey: (key) => limits.key(key),
      prepare: (value) => limits.value(value),
      expiresAt: (options) => limits.expiresAt(options, EXPIRY_OPTION_KEYS),
      versionOf: (key) => this.#ks.versionOf(key),
      liveTable: () => this.#ks.table,
      now: () => o.clock.now(),
      commitOps: (ops, bytes) => {
        this.#checkOpen()
        this.#checkWritable()
        limits.batchBytes(bytes)
        const done = ops.length === 0 ? RESOLVED : this.#funnel.commit(ops)
        return { seq: this.#funnel.seq, done }
      },
      runExclusive: (fn) => this.#gate.exclusiveStep(fn),
      rerun: (fn) => this.#gate.rerun(fn),
      begin: async () => {
        const wait = this.#gate.readable()
        if (wait !== undefined) await wait
        return { view: this.#ks.table.view(), seq: this.#funnel.seq }
      },
      generation: () => this.#ks.generation,
    }
  }

  /**
   * Open a store: in memory (no `dir`, no `file`), in a directory (WAL + snapshots) or
   * in snapshot-file mode.
   *
   * In `dir` mode the directory is created if missing (mode 0700), locked, and recovered:
   * the newest snapshot that verifies, then the WAL records after it. A torn tail (crash
   * mid-append) is cut off (the cut bytes are kept in `*.broken`) and reported in
   * `stats().recovery`.
   *
   * @throws {@link StoreError} `KV_LOCKED` if another store holds the directory;
   *   `KV_CORRUPT` for damage open will not repair under the chosen `recovery` mode
   *   (the message names file and offset); `KV_INVALID_ARGUMENT` for bad or unknown options;
   *   `KV_IO` when the directory cannot be read or written (the OS error is the `cause`).
   */
  static async open<V = unknown>(options: StoreOptions = {}): Promise<Store<V>> {
    const store = new Store<V>(resolveOptions(options))
    try {
      await store.#init()
    } catch (err) {
      throw asStoreError(err, `cannot open ${store.#persist.path ?? 'the store'}`)
    }
    return store
  }

  async #init(): Promise<void> {
    this.#funnel.seq = await this.#persist.open(this.#ks, this.#budget)
    try {
      // Keys replay evicted are logged as deletes before open resolves: the state served is the durable one.
      await this.#budget.logReplayEvictions()
      this.#budget.enforce()
    } catch (err) {
      // A failed log write must not keep the directory locked.
      await this.#persist.close(() => this.#maintenance.pointInTime()).catch(() => undefined)
      throw err
    }
    const o = this.#o
    this.#sweeper.start(o.expirySweepIntervalMs)
    // A follower never snapshots its directory: the writer owns compaction.
    if (this.#follower === undefined) this.#maintenance.start(o.snapshotIntervalMs)
  }

  // ---------------------------------------------------------------- reads

  /**
   * The value stored under `key`, or `undefined` when the key is missing or expired.
   *
   * The value is immutable (objects are frozen; `Uint8Array`s are copies).
   *
   * @throws {@link StoreError} `KV_WRONG_TYPE` when the key holds a list or hash;
   *   `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  get(key: string): Promise<V | undefined> {
    try {
      this.#checkOpen()
      // The hot path: no closure, no queue, when nothing exclusive runs or waits. Only
      // valid keys are ever stored, so a hit needs no key check; a miss checks first.
      if (this.#gate.readableNow) {
        const v = this.#values.get(key)
        if (v === undefined) this.#limits.key(key)
        return Promise.resolve(v)
      }
      this.#limits.key(key)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.read(() => this.#values.get(key))
  }

  /**
   * The value stored under `key`, read synchronously: `undefined` when the key is missing
   * or expired. The same answer `get` gives, without a promise.
   *
   * Reads the state as of the call. Every write applies synchronously, so that state is
   * always whole: a write that has resolved is seen; a write still waiting behind an
   * exclusive operation (`update`, `load`, `close`) is not yet; during `load()` it sees the
   * old contents or the new, never a mix. It does not wait for an exclusive operation
   * that runs or waits, which `get` does. Works on followers.
   *
   * @throws {@link StoreError} `KV_WRONG_TYPE` when the key holds a list or hash;
   *   `KV_INVALID_KEY`; `KV_CLOSED` (thrown, not rejected).
   */
  getSync(key: string): V | undefined {
    this.#checkOpen()
    // Only valid keys are ever stored: a hit needs no check, a miss checks before answering.
    const v = this.#values.get(key)
    if (v === undefined) this.#limits.key(key)
    return v
  }

  /**
   * Whether `key` exists (and has not expired), read synchronously; any type counts.
   * Reads the state as of the call, as {@link Store.getSync} does.
   * @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED` (thrown, not rejected).
   */
  hasSync(key: string): boolean {
    this.#checkOpen()
    if (this.#values.has(key)) return true
    this.#limits.key(key)
    return false
  }

  /**
   * Value, version and expiry of `key`, read synchronously, or `undefined` when missing
   * or expired. Reads the state as of the call, as {@link Store.getSync} does.
   * @throws {@link StoreError} `KV_WRONG_TYPE` for lists and hashes; `KV_INVALID_KEY`;
   *   `KV_CLOSED` (thrown, not rejected).
   */
  getEntrySync(key: string): Entry<V> | undefined {
    this.#checkOpen()
    this.#limits.key(key)
    return this.#values.entry(key)
  }

  /**
   * Values of `keys`, in the same order (`undefined` for a missing or expired key), all
   * read at one point in time: no write lands between two of them.
   *
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when `keys` is not an array;
   *   `KV_INVALID_KEY`; `KV_WRONG_TYPE` when a key holds a list or hash; `KV_CLOSED`.
   */
  getMany(keys: readonly string[]): Promise<(V | undefined)[]> {
    let list: string[]
    try {
      this.#checkOpen()
      list = checkKeyList(keys, (k) => this.#limits.key(k))
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.read(() => list.map((k) => this.#values.get(k)))
  }

  /**
   * Value, version and expiry of `key`, or `undefined` when missing or expired.
   * The version is what {@link Store.atomic} checks compare against.
   *
   * @throws {@link StoreError} `KV_WRONG_TYPE` for lists and hashes; `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  getEntry(key: string): Promise<Entry<V> | undefined> {
    return this.#read(key, () => this.#values.entry(key))
  }


  /**
   * Version (sequence number of the last write) of `key`, whatever it holds, or
   * `undefined` when missing or expired. Cheap; used for optimistic checks such as WATCH.
   * @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  version(key: string): Promise<number | undefined> {
    return this.#read(key, () => this.#values.version(key))
  }


  /** Whether `key` exists (and has not expired). Any type counts. @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`. */
  has(key: string): Promise<boolean> {
    return this.#read(key, () => this.#values.has(key))
  }


  /**
   * What `key` holds, or `undefined` when missing or expired.
   * @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  type(key: string): Promise<KeyType | undefined> {
    return this.#read(key, () => this.#values.type(key))
  }


  /**
   * Keys matching a Redis-style glob, in key order. Patterns: `*`, `?` (one code
   * point), `[abc]`, `[^a]`, `[a-z]`, `\x`; the whole key must match; `/` is not
   * special. A pattern with a literal prefix (`user:*`) visits only that key range,
   * so it costs O(log n + keys in the range).
   *
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a non-string pattern; `KV_CLOSED`.
   */
  keys(pattern = '*'): Promise<string[]> {
    try {
      this.#checkOpen()
      if (typeof pattern !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `pattern must be a string, got ${describeValue(pattern)}`)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.read(() => this.#ks.keys(pattern))
  }

  /**
   * Iterate `[key, value]` pairs in key order (or reverse) from a point-in-time view
   * taken when iteration starts: writes made while iterating are not seen, and
   * iterating never blocks writers. Keys holding lists or hashes are skipped (read
   * them with `lrange` / `hgetall`); expired keys are skipped.
   *
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad or unknown options; `KV_CLOSED`.
   */
  scan(options: ScanOptions = {}): AsyncIterableIterator<[string, V]> {
    this.#checkOpen()
    return abortableIterator(this.#scan(scanBounds(options), scanLimit(options)), options.signal)
  }

  async *#scan(bounds: RangeBounds, limit: number): AsyncIterableIterator<[string, V]> {
    if (limit === 0) return
    const wait = this.#gate.readable()
    if (wait !== undefined) await wait
    this.#checkOpen()
    // The loop is here, not in a nested generator: each entry crosses one generator, not two.
    const cur = this.#ks.table.view().cursor(bounds)
    const now = this.#o.clock.now()
    let n = 0
    while (cur.next()) {
      const exp = cur.expiresAt
      if (exp !== 0 && exp <= now) continue
      const v = cur.value
      if (typeof v === 'object' && v !== null && isCollection(v)) continue
      yield [cur.key, copyOut<V>(v)]
      if (++n >= limit) return
    }
  }

  /** Number of live keys (any type). Sweeps keys that are due first, so the count is exact. @throws {@link StoreError} `KV_CLOSED`. */
  count(): Promise<number> {
    try {
      this.#checkOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.read(() => {
      this.#sweeper.purge(Infinity)
      return this.#ks.table.size
    })
  }

  // --------------------------------------------------------------- writes

  /**
   * Store `value` under `key`, replacing whatever it held (any type) and clearing its
   * expiry unless `keepTtl`.
   *
   * Resolves once the write is durable under the `sync` policy (in memory: at once),
   * with `true`, or `false` when `ifNotExists` / `ifExists` prevented it.
   *
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_INVALID_VALUE`, `KV_VALUE_TOO_LARGE`,
   *   `KV_INVALID_ARGUMENT` (bad ttl, unknown option), `KV_CLOSED`, `KV_IO` — all before
   *   anything is applied or logged.
   */
  set(key: string, value: V, options?: SetOptions): Promise<boolean> {
    let stored: unknown
    let ttlAt: number
    try {
      this.#checkOpen()
      this.#limits.key(key)
      stored = this.#limits.value(value)
      ttlAt = options === undefined ? this.#limits.defaultExpiry() : this.#limits.expiresAt(options)
      // The hot path: applied in the call, no closure, when the lock is idle.
      if (this.#gate.idle) {
        this.#checkWritable()
        return this.#values.set(key, stored, ttlAt, options)
      }
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.write(() => {
      this.#checkWritable()
      return this.#values.set(key, stored, ttlAt, options)
    })
  }

  /**
   * Remove `key`. Resolves `true` when it existed (and had not expired).
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  delete(key: string): Promise<boolean> {
    // The hot path, as in `set`: applied in the call, no closure, when the lock is idle.
    if (this.#gate.idle) {
      try {
        this.#checkOpen()
        this.#limits.key(key)
        this.#checkWritable()
        return this.#values.delete(key)
      } catch (err) {
        return Promise.reject(err)
      }
    }
    return this.#write(key, () => this.#values.delete(key))
  }

  /**
   * Remove every key. One WAL record; durable like any write.
   * @throws {@link StoreError} `KV_CLOSED`, `KV_IO`.
   */
  clear(): Promise<void> {
    try {
      this.#checkOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.write(() => {
      this.#checkWritable()
      return this.#funnel.commit([{ t: 'clear' }])
    })
  }

  /**
   * Apply `ops` all or nothing: one WAL record and one version for the whole batch,
   * so after a crash either every op is there or none is. Every op is validated
   * before anything is applied.
   *
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_INVALID_VALUE`, `KV_VALUE_TOO_LARGE`,
   *   `KV_BATCH_TOO_LARGE`, `KV_INVALID_ARGUMENT`, `KV_CLOSED`, `KV_IO`.
   */
  batch(ops: readonly BatchOp<V>[]): Promise<void> {
    let prepared: Op[]
    try {
      this.#checkOpen()
      prepared = this.#limits.batch(ops)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.write(() => {
      this.#checkWritable()
      return prepared.length === 0 ? RESOLVED : this.#funnel.commit(prepared)
    })
  }

  /**
   * Atomically replace `key`'s value with `fn(old)` (`old` is `undefined` when
   * missing). No other write runs between the read and the write, even when `fn` is
   * async (it holds the exclusive lock, so keep it short). Returning `undefined`
   * deletes the key. Resolves with the new value.
   *
   * @throws whatever `fn` throws (nothing is written); {@link StoreError} codes as for `set`.
   */
  update(key: string, fn: (old: V | undefined) => V | undefined | Promise<V | undefined>): Promise<V | undefined> {
    try {
      this.#checkOpen()
      this.#limits.key(key)
      checkFunction('update function', fn)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.exclusive(async () => {
      this.#checkWritable()
      const next = await fn(this.#values.get(key))
      this.#checkWritable()
      return this.#values.replace(key, next)
    })
  }

  // ------------------------------------------------------------------ TTL

  /**
   * Set `key` to expire `ttlMs` from now. Resolves `false` when the key is missing.
   * A ttl of 0 expires it at once (Redis semantics for a non-positive EXPIRE).
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT`, `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  expire(key: string, ttlMs: number): Promise<boolean> {
    let at: number
    try {
      at = this.#limits.deadline(positiveInt('ttl', ttlMs, true))
    } catch (err) {
      return Promise.reject(err)
    }
    return this.expireAt(key, at)
  }

  /**
   * Set `key` to expire at the absolute time `at` (ms since the epoch); a time in the
   * past deletes it. Resolves `false` when the key is missing.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT`, `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  expireAt(key: string, at: number): Promise<boolean> {
    return this.#write(key, () => this.#values.expireAt(key, at))
  }


  /**
   * Remove `key`'s expiry. Resolves `true` when it had one.
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  persist(key: string): Promise<boolean> {
    return this.#write(key, () => this.#values.persist(key))
  }


  /**
   * Remaining time to live of `key` in ms: `-2` when the key is missing (or expired),
   * `-1` when it has no expiry (Redis `PTTL`).
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`.
   */
  ttl(key: string): Promise<number> {
    return this.#read(key, () => this.#values.ttl(key))
  }


  /**
   * Sliding expiry: push `key`'s deadline to `ttlMs` from now (a fresh TTL for a key
   * that had none). Resolves `false` when the key is missing.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT`, `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  touch(key: string, ttlMs: number): Promise<boolean> {
    return this.expire(key, ttlMs)
  }

  // ------------------------------------------------------------- integers

  /**
   * Add `by` to the integer at `key` (created at 0) and resolve with the result.
   * A string holding a canonical decimal integer counts as an integer (Redis `INCR`);
   * the result is stored as a number. The key keeps its expiry.
   *
   * @throws {@link StoreError} `KV_NOT_INTEGER` when the value is not an integer or the
   *   result leaves the safe-integer range; `KV_WRONG_TYPE` for lists and hashes;
   *   `KV_INVALID_ARGUMENT` for a non-integer `by`. Nothing changes on error.
   */
  incr(key: string, by = 1): Promise<number> {
    return this.#write(key, () => {
      if (!Number.isSafeInteger(by)) throw new StoreError('KV_INVALID_ARGUMENT', `increment must be a safe integer, got ${describeValue(by)}`)
      return this.#values.incr(key, by)
    })
  }


  /** Subtract `by` from the integer at `key`; see {@link Store.incr}. */
  decr(key: string, by = 1): Promise<number> {
    if (!Number.isSafeInteger(by)) {
      return Promise.reject(new StoreError('KV_INVALID_ARGUMENT', `decrement must be a safe integer, got ${describeValue(by)}`))
    }
    return this.incr(key, -by)
  }

  // ---------------------------------------------------------------- lists

  /**
   * Push values at the head of the list at `key` (created if missing), one by one as
   * Redis `LPUSH` does (so the last value ends up first). Resolves with the new length.
   * The WAL records only the pushed values, never the whole list.
   * @throws {@link StoreError} `KV_WRONG_TYPE` when the key holds something else;
   *   value errors as for `set`.
   */
  lpush(key: string, ...values: V[]): Promise<number> {
    return this.#push(key, true, values)
  }

  /** Push values at the tail of the list at `key`; see {@link Store.lpush}. */
  rpush(key: string, ...values: V[]): Promise<number> {
    return this.#push(key, false, values)
  }

  #push(key: string, left: boolean, values: V[]): Promise<number> {
    return this.#write(key, () => this.#collections.push(key, left, values))
  }

  /**
   * Remove and return the first element of the list at `key`, or `undefined` when the
   * key is missing. A list left empty is deleted (Redis semantics).
   * @throws {@link StoreError} `KV_WRONG_TYPE`.
   */
  lpop(key: string): Promise<V | undefined> {
    return this.#pop(key, true, 1).then((r) => r[0])
  }

  /** Remove and return the last element of the list at `key`; see {@link Store.lpop}. */
  rpop(key: string): Promise<V | undefined> {
    return this.#pop(key, false, 1).then((r) => r[0])
  }

  /** Remove and return up to `count` elements from the head (`left`) or tail of a list. */
  popMany(key: string, count: number, left = true): Promise<V[]> {
    try {
      positiveInt('count', count, true)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#pop(key, left, count)
  }

  #pop(key: string, left: boolean, count: number): Promise<V[]> {
    return this.#write(key, () => this.#collections.pop(key, left, count))
  }

  /**
   * Elements `start..stop` (inclusive) of the list at `key`, with Redis `LRANGE` index
   * rules: negative indices count from the end, out-of-range indices are clamped, and
   * an empty range gives `[]`. A missing key gives `[]`.
   * @throws {@link StoreError} `KV_WRONG_TYPE`, `KV_INVALID_ARGUMENT` for non-integer indices.
   */
  lrange(key: string, start = 0, stop = -1): Promise<V[]> {
    return this.#read(key, () => this.#collections.range(key, start, stop))
  }


  /** Length of the list at `key` (0 when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  llen(key: string): Promise<number> {
    return this.#read(key, () => this.#collections.length(key))
  }


  /** Element `index` of the list at `key` (negative counts from the end), or `undefined`. */
  lindex(key: string, index: number): Promise<V | undefined> {
    return this.#read(key, () => this.#collections.index(key, index))
  }


  /**
   * Replace element `index` of the list at `key` (negative counts from the end), as
   * Redis `LSET`. The WAL records only the new element.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when the key is missing or the index
   *   is out of range; `KV_WRONG_TYPE`; value errors as for `set`.
   */
  lset(key: string, index: number, value: V): Promise<void> {
    return this.#write(key, () => this.#collections.set(key, index, value))
  }


  /**
   * Keep only elements `start..stop` (inclusive, Redis `LTRIM` index rules) of the list at
   * `key`; a list left empty is deleted. A missing key is a no-op.
   * @throws {@link StoreError} `KV_WRONG_TYPE`, `KV_INVALID_ARGUMENT` for non-integer indices.
   */
  ltrim(key: string, start: number, stop: number): Promise<void> {
    return this.#write(key, () => this.#collections.trim(key, start, stop))
  }


  // --------------------------------------------------------------- hashes

  /**
   * Set fields of the hash at `key` (created if missing). Resolves with the number of
   * fields that were new. The WAL records only the given fields.
   * @throws {@link StoreError} `KV_WRONG_TYPE`; value errors as for `set`;
   *   `KV_INVALID_ARGUMENT` for a non-object, no fields, or a field that is not a
   *   well-formed string within `maxKeyBytes`.
   */
  hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number> {
    return this.#write(key, () => this.#collections.hset(key, fields))
  }


  /** Value of `field` in the hash at `key`, or `undefined`. @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hget(key: string, field: string): Promise<V | undefined> {
    return this.#read(key, () => this.#collections.hget(key, field))
  }


  /**
   * Delete fields of the hash at `key`; resolves with how many existed. A hash left
   * empty is deleted. @throws {@link StoreError} `KV_WRONG_TYPE`; `KV_INVALID_ARGUMENT`.
   */
  hdel(key: string, ...fields: string[]): Promise<number> {
    return this.#write(key, () => this.#collections.hdel(key, fields))
  }


  /** All fields of the hash at `key` as a `Map` (empty when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hgetall(key: string): Promise<Map<string, V>> {
    return this.#read(key, () => this.#collections.hgetall(key))
  }


  /** Number of fields in the hash at `key` (0 when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hlen(key: string): Promise<number> {
    return this.#read(key, () => this.#collections.hlen(key))
  }


  /** Whether the hash at `key` has `field`. @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hexists(key: string, field: string): Promise<boolean> {
    return this.#read(key, () => this.#collections.hexists(key, field))
  }


  // --------------------------------------------------------- transactions

  /**
   * Run `fn` as an optimistic, serializable transaction.
   *
   * `tx` reads a point-in-time view taken at the start plus the transaction's own
   * writes; writes are buffered. On return, commit checks that no key the transaction
   * read (including keys that appeared in ranges it scanned) changed since, then
   * applies all writes as one WAL record and one version. On conflict `fn` runs again,
   * up to `retries` times (default 10). A throw inside `fn` discards the writes and
   * rethrows. Other writers are never blocked while `fn` runs.
   *
   * Reruns after a conflict queue behind each other (one at a time, in order), so
   * transactions that contend with each other mostly cost two runs each, not dozens. A
   * rerun can still conflict with a plain write, or a first run, that commits while it
   * runs; it then queues again. Do not await a transaction inside another's `fn`: if the
   * inner one conflicts while the outer is a rerun, it waits for the outer to finish.
   *
   * `options.signal` is checked at the start of each attempt and before commit.
   *
   * @throws {@link StoreError} `KV_ABORTED` when `options.signal` aborts (nothing is written); `KV_CONFLICT` after the retries; `KV_INVALID_ARGUMENT` for a
   *   non-function or bad options; write errors as for `batch`.
   */
  async transaction<R>(fn: (tx: Transaction<V>) => R | Promise<R>, options: { retries?: number; signal?: AbortSignal } = {}): Promise<R> {
    this.#checkOpen()
    checkFunction('transaction function', fn)
    checkOptionsObject('transaction option', options, ['retries', 'signal'])
    const retries = options.retries === undefined ? 10 : positiveInt('retries', options.retries, true)
    return runTransaction(this.#host, abortableTransaction(fn, checkSignal(options.signal)), retries)
  }

  /**
   * Start an atomic check-and-set: `store.atomic().check(key, version | null)
   * .set(key, value).delete(key).commit()`. See {@link AtomicOperation}.
   */
  atomic(): AtomicOperation<V> {
    this.#checkOpen()
    return createAtomic<V>(this.#host)
  }

  /**
   * Watch committed changes to one key or a key prefix, in commit order. The feed is
   * an async iterator; it ends when `close()` is called on the store or on the feed.
   * A consumer more than `highWaterMark` changes behind is ended with a `KV_OVERFLOW`
   * error rather than buffering without limit.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad or unknown options; `KV_CLOSED`.
   */
  watch(options: WatchOptions = {}): ChangeFeed<V> {
    this.#checkOpen()
    // The hub carries values untyped; every value it delivers was a V when written.
    const { signal, fromSeq, ...rest } = typeof options === 'object' && options !== null ? options : { signal: undefined, fromSeq: undefined }
    const opts = typeof options === 'object' && options !== null ? rest : options
    const history = fromSeq === undefined ? undefined : this.#history(fromSeq, opts)
    return abortableFeed(this.#hub.open(opts, history) as ChangeFeed<V>, checkSignal(signal))
  }

  /** The changes after `fromSeq` up to now, read back from the WAL, for a `fromSeq` feed. */
  #history(fromSeq: unknown, options: WatchOptions): FeedHistory {
    const from = positiveInt('fromSeq', fromSeq, true)
    const now = this.#funnel.seq
    if (from > now && this.#follower === undefined) {
      throw new StoreError('KV_INVALID_ARGUMENT', `fromSeq ${from} is past the newest write (${now})`)
    }
    if (from >= now) return { open: Promise.resolve(EMPTY_HISTORY), after: from }
    const path = this.#persist.path
    if (this.#persist.mode !== 'dir' || path === undefined) {
      const err = new StoreError('KV_TRIMMED', `a ${this.#persist.mode}-mode store keeps no history: only fromSeq ${now} (its seq) or later works`)
      return { open: Promise.reject(err), after: from }
    }
    const key = options.key
    const prefix = options.prefix
    const request = {
      fs: this.#o.fs,
      dir: path,
      fromSeq: from,
      toSeq: now,
      limits: { maxKeyBytes: this.#o.maxKeyBytes, maxValueBytes: this.#o.maxValueBytes },
      newKeyspace: () => new Keyspace(this.#o.clock),
      wanted: (k: string) => (key === undefined || k === key) && (prefix === undefined || k.startsWith(prefix)),
    }
    // The writer's records up to `now` must be in the files; compaction waits until the
    // segments are open (it could delete them), and may run while the feed is read.
    const open =
      this.#follower !== undefined
        ? openHistory(request)
        : this.#gate.serial(async () => {
            await this.#persist.flush()
            return openHistory(request)
          })
    return { open, after: from }
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

  // ------------------------------------------------------------ snapshots

  /**
   * Write a snapshot.
   *
   * With `path`: a point-in-time copy to that file (`.json` → JSON, else binary, unless
   * `format` says otherwise), written atomically (temp file, fsync, rename, directory
   * fsync). Without `path`: in `file` mode, rewrite the store's file; in `dir` mode,
   * compact (see {@link Store.compact}). Writers keep going while it runs.
   *
   * `options.signal` is checked before the write starts and after the call waited its turn.
   *
   * @throws {@link StoreError} `KV_ABORTED` (no file is written); `KV_INVALID_ARGUMENT` (no path in memory mode, bad or
   *   unknown options), `KV_IO` (the previous file is left intact), `KV_CLOSED`.
   */
  async snapshot(path?: string, options: { format?: SnapshotFormatName; compress?: 'gzip' | 'brotli'; signal?: AbortSignal } = {}): Promise<SnapshotResult> {
    this.#checkOpen()
    checkOptionsObject('snapshot option', options, SNAPSHOT_OPTION_KEYS)
    const signal = checkSignal(options.signal)
    throwIfAborted(signal)
    const format = checkOneOf('snapshot format', options.format, ['binary', 'json'])
    const compress = checkOneOf('snapshot compress', options.compress, ['gzip', 'brotli'])
    if (path === undefined) {
      if (this.#persist.mode === 'dir') return this.compact(signal === undefined ? {} : { signal })
      if (this.#persist.path === undefined) throw new StoreError('KV_INVALID_ARGUMENT', 'an in-memory store needs a snapshot path')
      path = this.#persist.path
    }
    if (typeof path !== 'string' || path === '') {
      throw new StoreError('KV_INVALID_ARGUMENT', `snapshot path must be a non-empty string, got ${describeValue(path)}`)
    }
    // The view is taken now, so the snapshot holds the state as of this call; writes to
    // files are serialised so a later snapshot of the same path always lands last.
    const wait = this.#gate.readable()
    if (wait !== undefined) await wait
    this.#checkOpen()
    throwIfAborted(signal)
    return this.#maintenance.snapshot(path, () => this.#maintenance.pointInTime(), format, compress)
  }

  /**
   * Load a snapshot file (JSON or binary, detected from its content), replacing the
   * whole contents atomically: readers see the old contents or the new, never a mix.
   * In `dir` mode the loaded contents become the new base snapshot and the old WAL is
   * dropped, so the load survives a crash once it resolves; in `file` mode the store's
   * file is rewritten first, so a failed load changes nothing. Keys keep the expiry the
   * file carries (keys already expired are not loaded). Into a store never written, keys
   * keep the file's versions; otherwise every loaded key gets the load's one new version,
   * so no `atomic().check()` or WATCH made before the load can pass after it.
   *
   * `options.signal` is checked before the load starts.
   *
   * @throws {@link StoreError} `KV_ABORTED` (the store is unchanged); `KV_CORRUPT` for a damaged file (the store is unchanged),
   *   `KV_IO` (in `dir` mode a failure after the WAL rotated refuses later writes until
   *   reopen, reported in `stats().failure`), `KV_INVALID_ARGUMENT`, `KV_CLOSED`.
   */
  async load(path: string, options: { signal?: AbortSignal } = {}): Promise<{ entries: number; timeMs: number }> {
    this.#checkOpen()
    if (typeof path !== 'string' || path === '') {
      throw new StoreError('KV_INVALID_ARGUMENT', `load path must be a non-empty string, got ${describeValue(path)}`)
    }
    checkOptionsObject('load option', options, ['signal'])
    throwIfAborted(checkSignal(options.signal))
    const loaded = await this.#maintenance.load(path)
    // Loaded contents may exceed the budget: evict (logged) unless the policy is 'noeviction'.
    await this.#gate.write(async () => this.#budget.enforce())
    return loaded
  }

  /**
   * Change the memory budget or the eviction policy of an open store (Redis `CONFIG SET
   * maxmemory` / `maxmemory-policy`); options not given keep their value. Not persisted:
   * the next open uses the options it is given. A lower budget evicts at once under an
   * evicting policy (logged like any eviction); under `'noeviction'` writes that add bytes
   * fail until deletes make room.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a bad value or an unknown key; `KV_CLOSED`.
   */
  configure(options: MemoryOptions): Promise<void> {
    let next: ReturnType<typeof resolveMemoryOptions>
    try {
      this.#checkOpen()
      checkOptionsObject('configure option', options, ['maxMemoryBytes', 'evictionPolicy'])
      next = resolveMemoryOptions(options, { maxMemoryBytes: this.#budget.maxBytes, evictionPolicy: this.#budget.policy })
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.write(async () => {
      if (this.#follower !== undefined) throw readOnlyError()
      this.#budget.configure(next.maxMemoryBytes, next.evictionPolicy)
      if (this.#persist.failure === undefined) this.#budget.enforce()
    })
  }

  /**
   * Compact a `dir` store: start a new WAL segment, write a snapshot of everything
   * before it, make it durable, then delete the WAL segments and snapshots it covers.
   * A crash at any step loses nothing. Writers keep going meanwhile (into the new
   * segment). In `file` mode this rewrites the file; in memory mode it is a no-op.
   *
   * `options.signal` is checked before compaction starts.
   *
   * @throws {@link StoreError} `KV_ABORTED` (nothing changed); `KV_IO` (the store keeps its previous snapshot and WAL), `KV_CLOSED`.
   */
  async compact(options: { signal?: AbortSignal } = {}): Promise<SnapshotResult> {
    this.#checkOpen()
    checkOptionsObject('compact option', options, ['signal'])
    throwIfAborted(checkSignal(options.signal))
    if (this.#persist.mode === 'memory') {
      return { path: '', format: 'binary', entries: this.#ks.table.size, bytes: 0, timeMs: 0, seq: this.#funnel.seq }
    }
    return this.#maintenance.compact()
  }

  // ----------------------------------------------------------- lifecycle

  /**
   * Make every write issued before this call durable, whatever the `sync` policy.
   *
   * In `dir` mode the WAL is written and datasynced (at once when it already is; a flush made
   * while a datasync runs shares the next one, like writes under `sync: 'always'`). In `file`
   * mode the store's file is rewritten when anything is unsaved. Memory mode resolves at once.
   * With `sync: 'never'` or `'interval'`, calling `flush()` before acknowledging a batch of
   * writes to someone else gives the batch `'always'` durability at one datasync.
   *
   * @throws {@link StoreError} `KV_IO` (a write or datasync failed; the store refuses writes
   *   until reopened), `KV_CLOSED`.
   */
  flush(): Promise<void> {
    try {
      this.#checkOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#follower !== undefined) return RESOLVED
    // A step of the write gate, so writes queued behind an exclusive operation are logged
    // first; the datasync promise is boxed so the gate is not held while it runs.
    return this.#gate
      .exclusiveStep(() => {
        this.#checkWritable()
        return { done: this.#persist.flush() }
      })
      .then(async ({ done }) => {
        await done
        if (this.#persist.mode === 'file' && this.#persist.unsaved) await this.snapshot()
      })
  }

  /** Counters and what recovery found. Never throws, also after `close()`. */
  stats(): StoreStats {
    const p = this.#persist.stats()
    return {
      mode: p.mode,
      path: p.path,
      keys: this.#ks.table.size,
      expiringKeys: this.#ks.table.expiringCount,
      seq: this.#funnel.seq,
      sync: p.sync,
      walSegment: p.walSegment,
      walBytes: p.walBytes,
      snapshots: this.#maintenance.snapshots,
      compactions: this.#maintenance.compactions,
      expiredRemoved: this.#sweeper.removed,
      memoryBytes: this.#ks.memoryBytes,
      maxMemoryBytes: this.#budget.maxBytes,
      evictionPolicy: this.#budget.policy,
      evictedKeys: this.#budget.evictedKeys,
      recovery: p.recovery,
      failure: this.#persist.failure?.message,
      follower: this.#follower?.followerStats(),
    }
  }

  // ------------------------------------------------------------ followers

  /**
   * Sequence number of the last write applied: on a writer, the newest write issued (after
   * `await store.set(…)` it is at or past that write's seq); on a follower, the newest
   * record applied from the writer's WAL. Hand it to `follower.waitFor(seq)` to read your
   * own writes in another process.
   */
  get seq(): number {
    return this.#funnel.seq
  }

  /** True for a read-only follower (`Store.open({ dir, readOnly: true })`). */
  get readOnly(): boolean {
    return this.#follower !== undefined
  }

  /**
   * Follower: look at the WAL now and apply whatever the writer appended; resolves with the
   * seq applied. Followers also do this by themselves (at once on a change notification,
   * at least every `followIntervalMs`). On a writer it resolves with `seq` at once.
   * @throws {@link StoreError} `KV_CLOSED`.
   */
  refresh(): Promise<number> {
    try {
      this.#checkOpen()
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#follower === undefined ? Promise.resolve(this.#funnel.seq) : this.#follower.refresh()
  }

  /**
   * Resolve once this store has applied the write with sequence number `seq` (see
   * {@link Store.seq}): on a follower, when its state includes that record; on a writer, at
   * once for any seq it has issued. Reads issued after it resolves see that write and every
   * earlier one.
   *
   * @param options.timeoutMs give up after this long (default: wait until closed).
   * @throws {@link StoreError} `KV_TIMEOUT` when `timeoutMs` passed first; `KV_CLOSED` when
   *   the store closes first; `KV_INVALID_ARGUMENT` for a seq that is not a non-negative
   *   integer, or one a writer has not issued.
   */
  waitFor(seq: number, options: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number | undefined
    try {
      this.#checkOpen()
      positiveInt('seq', seq, true)
      checkOptionsObject('waitFor option', options, ['timeoutMs'])
      timeoutMs = options.timeoutMs === undefined ? undefined : positiveInt('timeoutMs', options.timeoutMs, true)
      if (seq <= this.#funnel.seq) return RESOLVED
      if (this.#follower === undefined) throw new StoreError('KV_INVALID_ARGUMENT', `seq ${seq} is past the newest write (${this.#funnel.seq})`)
    } catch (err) {
      return Promise.reject(err)
    }
    const follower = this.#follower
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const waiter = {
        seq,
        done: (err?: StoreError) => {
          if (timer !== undefined) clearTimeout(timer)
          this.#waiters.delete(waiter)
          if (err === undefined) resolve()
          else reject(err)
        },
      }
      this.#waiters.add(waiter)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => waiter.done(new StoreError('KV_TIMEOUT', `seq ${seq} was not applied within ${timeoutMs} ms (applied: ${this.#funnel.seq})`)), timeoutMs)
      }
      void follower.refresh().catch(() => undefined)
    })
  }

  /** The follower applied records up to `seq`: release the waiters it satisfies. */
  #wake(seq: number): void {
    for (const w of this.#waiters) if (w.seq <= seq) w.done()
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Wait for every write issued before it, flush and fsync the WAL (file mode: write
   * the snapshot when anything is unsaved), stop timers, end watch feeds and release the
   * directory lock. Later calls reject with `KV_CLOSED`; calling `close()` again returns
   * the same promise.
   *
   * @throws {@link StoreError} `KV_IO` when the final flush or snapshot fails (the lock
   *   is released anyway).
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing
    this.#closing = this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    // Exclusive: queued operations finish first; later calls see #closed.
    await this.#gate.exclusive(() => {
      this.#closed = true
    })
    this.#sweeper.stop()
    this.#maintenance.stop()
    this.#hub.endAll()
    for (const w of this.#waiters) w.done(new StoreError('KV_CLOSED', 'the store closed before the seq was applied'))
    await this.#gate.maintenanceDone()
    await this.#persist.close(() => this.#maintenance.pointInTime())
  }

  /** `await using store = await Store.open(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  // ------------------------------------------------------------- internals

  #checkOpen(): void {
    if (this.#closed || this.#closing !== undefined) throw new StoreError('KV_CLOSED', 'the store is closed')
    // A follower that ran into damage reports it to the next call, once; it keeps serving its last good state.
    if (this.#follower !== undefined) {
      const err = this.#follower.takeError()
      if (err !== undefined) throw err
    }
  }

  #checkWritable(): void {
    if (this.#closed) throw new StoreError('KV_CLOSED', 'the store is closed')
    if (this.#follower !== undefined) throw readOnlyError()
    this.#funnel.checkWritable()
  }

  #read<T>(key: string, fn: () => T): Promise<T> {
    try {
      this.#checkOpen()
      this.#limits.key(key)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.read(fn)
  }

  #write<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      this.#checkOpen()
      this.#limits.key(key)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#gate.write(() => {
      this.#checkWritable()
      return fn()
    })
  }

  #progress(e: ProgressEvent): void {
    try {
      this.#o.onProgress?.(e)
    } catch {
      // A throwing progress callback must not break open or compaction.
    }
  }
}
