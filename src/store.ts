import { dirname, resolve as resolvePath } from 'node:path'
import { performance } from 'node:perf_hooks'
import { systemClock, type Clock } from './clock.js'
import { ByteWriter } from './codec/bytes.js'
import { encodeOps, type Op } from './codec/ops.js'
import { KvHash, KvList } from './collections.js'
import { checkFunction, checkOneOf, checkOptionsObject, describeValue, positiveInt } from './arguments.js'
import { DirLock } from './dir-lock.js'
import { asStoreError, StoreError } from './errors.js'
import { ExpiryHeap } from './expiry-heap.js'
import type { Fs } from './fs/fs.js'
import { nodeFs } from './fs/node-fs.js'
import { compileGlob } from './glob.js'
import { prefixBounds, validateKey } from './key.js'
import { scanBounds, scanLimit, type ScanOptions } from './scan-options.js'
import { Memtable, type MemtableReader, type RangeBounds } from './memtable.js'
import type { ProgressEvent, RecoveryMode, SnapshotFormatName, StoreOptions, SyncPolicy } from './options.js'
import { RECORD_OPS, recoverDirectory, type RecoveryStats } from './recovery.js'
import { RwLock } from './rwlock.js'
import { SnapshotCatalog } from './snapshot/catalog.js'
import { formatByName, formatFor, loadSnapshotFile, snapshotEntries } from './snapshot/io.js'
import { listSegments, segmentPath } from './wal/segments.js'
import { writeSnapshotFile } from './snapshot/write-file.js'
import { copyBytes, encodedSize, prepareValue } from './value.js'
import { WalWriter } from './wal/writer.js'

export type { ScanOptions } from './scan-options.js'
import { Transaction, type TransactionHost } from './transaction.js'
import { AtomicOperation } from './atomic.js'
import { ChangeFeed, type Change, type WatchOptions } from './watch.js'


/** Options for {@link Store.set}. */
export interface SetOptions {
  /** Time to live in milliseconds; the key expires at `now + ttl`. Must be a positive integer. */
  ttl?: number
  /** Absolute expiry time (ms since the epoch). Wins over `ttl`. */
  expiresAt?: number
  /** Keep the key's current expiry instead of clearing it (Redis `KEEPTTL`). */
  keepTtl?: boolean
  /** Only set when the key does not exist (Redis `NX`). */
  ifNotExists?: boolean
  /** Only set when the key exists (Redis `XX`). */
  ifExists?: boolean
}

/** An operation of {@link Store.batch}. */
export type BatchOp<V> =
  | { type: 'set'; key: string; value: V; ttl?: number }
  | { type: 'delete'; key: string }

/** A key with its metadata, from {@link Store.getEntry}. */
export interface Entry<V> {
  readonly value: V
  /** Sequence number of the last write to this key. Survives reopen and load. */
  readonly version: number
  /** Absolute expiry time in ms, when the key has one. */
  readonly expiresAt?: number
}

/** What a key holds, from {@link Store.type}. */
export type KeyType = 'string' | 'number' | 'boolean' | 'null' | 'json' | 'bytes' | 'list' | 'hash'

/** What {@link Store.snapshot} wrote. */
export interface SnapshotResult {
  readonly path: string
  readonly format: SnapshotFormatName
  readonly entries: number
  readonly bytes: number
  readonly timeMs: number
  /** Last sequence number the snapshot covers. */
  readonly seq: number
}

/** Counters from {@link Store.stats}. */
export interface StoreStats {
  readonly mode: 'memory' | 'dir' | 'file'
  readonly path: string | undefined
  /** Keys held, including expired ones not yet swept. */
  readonly keys: number
  /** Keys that carry an expiry. */
  readonly expiringKeys: number
  /** Last committed sequence number. */
  readonly seq: number
  readonly sync: SyncPolicy | undefined
  readonly walSegment: number | undefined
  readonly walBytes: number
  readonly snapshots: number
  readonly compactions: number
  readonly expiredRemoved: number
  /** What open found; `undefined` for memory and file mode. */
  readonly recovery: RecoveryStats | undefined
  /** Set once a write or fsync failed: the store then rejects writes until reopened. */
  readonly failure: string | undefined
}

const RESOLVED: Promise<void> = Promise.resolve()
const RESOLVED_TRUE: Promise<boolean> = Promise.resolve(true)
const RESOLVED_FALSE: Promise<boolean> = Promise.resolve(false)
const yieldTrue = (): boolean => true

/** `result` once `done` settles; no extra promise when nothing is pending (memory mode). */
function after<T>(done: Promise<void>, result: T): Promise<T> {
  if (done === RESOLVED) {
    if (result === true) return RESOLVED_TRUE as Promise<T>
    if (result === false) return RESOLVED_FALSE as Promise<T>
    return Promise.resolve(result)
  }
  return done.then(() => result)
}
const SWEEP_SLICE_MS = 1
const DEFAULTS = {
  maxKeyBytes: 65_536,
  maxValueBytes: 64 * 1024 * 1024,
  maxBatchBytes: 256 * 1024 * 1024,
  compactThresholdBytes: 64 * 1024 * 1024,
}

type Mode = 'memory' | 'dir' | 'file'

/** What a snapshot captures: a view, the seq it covers, and `#changes` at that point. */
interface PointInTime {
  view: MemtableReader
  seq: number
  changes: number
}

function isCollection(v: unknown): v is KvList | KvHash {
  return v instanceof KvList || v instanceof KvHash
}

function typeOf(v: unknown): KeyType {
  switch (typeof v) {
    case 'string':
      return 'string'
    case 'number':
      return 'number'
    case 'boolean':
      return 'boolean'
    default:
      if (v === null) return 'null'
      if (v instanceof Uint8Array) return 'bytes'
      if (v instanceof KvList) return 'list'
      if (v instanceof KvHash) return 'hash'
      return 'json'
  }
}

/** Copy what must not be shared with callers (bytes); everything else is immutable. */
function out<V>(v: unknown): V {
  return (v instanceof Uint8Array ? copyBytes(v) : v) as V
}

function wrongType(key: string, want: string): StoreError {
  return new StoreError('KV_WRONG_TYPE', `key ${JSON.stringify(key)} holds a value of another type (wanted ${want})`)
}

const STORE_OPTION_KEYS = [
  'dir', 'file', 'sync', 'syncIntervalMs', 'recovery', 'maxKeyBytes', 'maxValueBytes', 'maxBatchBytes',
  'compactThresholdBytes', 'snapshotIntervalMs', 'snapshotFormat', 'expirySweepIntervalMs', 'slidingTtlMs',
  'clock', 'onProgress', 'fs',
] as const satisfies readonly (keyof StoreOptions)[]
const SET_OPTION_KEYS = ['ttl', 'expiresAt', 'keepTtl', 'ifNotExists', 'ifExists'] as const satisfies readonly (keyof SetOptions)[]
/** Transactions and atomic operations take only an expiry. */
const EXPIRY_OPTION_KEYS = ['ttl', 'expiresAt'] as const
const SNAPSHOT_OPTION_KEYS = ['format', 'compress'] as const
const SNAPSHOT_FORMATS = ['binary', 'json'] as const
const COMPRESSIONS = ['gzip', 'brotli'] as const

function checkOption(options: StoreOptions, name: keyof StoreOptions, allowZero: boolean): void {
  if (options[name] !== undefined) positiveInt(name, options[name], allowZero)
}

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
export class Store<V = unknown> implements TransactionHost {
  readonly #mode: Mode
  readonly #path: string | undefined
  readonly #fs: Fs
  readonly #clock: Clock
  readonly #lock = new RwLock()
  readonly #maxKeyBytes: number
  readonly #maxValueBytes: number
  readonly #maxBatchBytes: number
  readonly #sync: SyncPolicy
  readonly #snapshotFormat: SnapshotFormatName
  readonly #compactThresholdBytes: number
  readonly #onProgress: ((e: ProgressEvent) => void) | undefined
  readonly #slidingTtlMs: number
  readonly #expiry = new ExpiryHeap()
  readonly #opWriter = new ByteWriter()
  readonly #feeds = new Set<ChangeFeed>()
  #mt: Memtable
  #seq = 0
  #wal: WalWriter | undefined
  #dirLock: DirLock | undefined
  #snapshots: SnapshotCatalog | undefined
  #recovery: RecoveryStats | undefined
  #closed = false
  #closing: Promise<void> | undefined
  #sweepTimer: NodeJS.Timeout | undefined
  #snapshotTimer: NodeJS.Timeout | undefined
  #maintenance: Promise<unknown> = RESOLVED
  #compacting = false
  /** Bumped by every applied write and install; compared with `#savedChanges` to know what is unsaved. */
  #changes = 0
  /** `#changes` as of the newest snapshot that succeeded (file mode: of the store's file; dir: compaction). */
  #savedChanges = 0
  /** Set when a multi-step operation failed half-way (a load after the WAL rotated): writes are refused. */
  #failure: StoreError | undefined
  #result: unknown
  /** Bumped by `load`: versions from before a load are not comparable with those after. */
  #generation = 0
  #counters = { snapshots: 0, compactions: 0, expiredRemoved: 0 }

  private constructor(mode: Mode, path: string | undefined, options: StoreOptions) {
    this.#mode = mode
    this.#path = path
    this.#fs = options.fs ?? nodeFs
    this.#clock = options.clock ?? systemClock
    this.#maxKeyBytes = options.maxKeyBytes ?? DEFAULTS.maxKeyBytes
    this.#maxValueBytes = options.maxValueBytes ?? DEFAULTS.maxValueBytes
    this.#maxBatchBytes = options.maxBatchBytes ?? DEFAULTS.maxBatchBytes
    this.#sync = options.sync ?? 'always'
    this.#snapshotFormat = options.snapshotFormat ?? 'binary'
    this.#compactThresholdBytes = options.compactThresholdBytes ?? DEFAULTS.compactThresholdBytes
    this.#onProgress = options.onProgress
    this.#slidingTtlMs = options.slidingTtlMs ?? 0
    this.#mt = new Memtable()
  }

  /**
   * Open a store: in memory (no `dir`, no `file`), in a directory (WAL + snapshots) or
   * in snapshot-file mode.
   *
   * In `dir` mode the directory is created if missing, locked, and recovered: the
   * newest snapshot that verifies, then the WAL records after it. A torn tail (crash
   * mid-append) is cut off (the cut bytes are kept in `*.broken`) and reported in
   * `stats().recovery`.
   *
   * @throws {@link StoreError} `KV_LOCKED` if another store holds the directory;
   *   `KV_CORRUPT` for damage open will not repair under the chosen `recovery` mode
   *   (the message names file and offset); `KV_INVALID_ARGUMENT` for bad options;
   *   `KV_IO` when the directory cannot be read or written.
   */
  static async open<V = unknown>(options: StoreOptions = {}): Promise<Store<V>> {
    validateOptions(options)
    const mode: Mode = options.dir !== undefined ? 'dir' : options.file !== undefined ? 'file' : 'memory'
    const path = options.dir ?? options.file
    const store = new Store<V>(mode, path === undefined ? undefined : resolvePath(path), options)
    try {
      await store.#init(options)
    } catch (err) {
      throw asStoreError(err, `cannot open ${store.#path ?? 'the store'}`)
    }
    return store
  }

  async #init(options: StoreOptions): Promise<void> {
    if (this.#mode === 'dir') await this.#openDir(options.recovery ?? 'strict', options.syncIntervalMs)
    else if (this.#mode === 'file') await this.#openFile()
    const sweep = options.expirySweepIntervalMs ?? 100
    if (sweep > 0) {
      this.#sweepTimer = setInterval(() => this.#sweep(), sweep)
      this.#sweepTimer.unref()
    }
    const snapEvery = options.snapshotIntervalMs ?? (this.#mode === 'file' ? 60_000 : 0)
    if (snapEvery > 0 && this.#mode !== 'memory') {
      this.#snapshotTimer = setInterval(() => this.#periodicSnapshot(), snapEvery)
      this.#snapshotTimer.unref()
    }
  }

  async #openDir(recovery: RecoveryMode, syncIntervalMs: number | undefined): Promise<void> {
    const dir = this.#path as string
    let existed
    try {
      existed = this.#fs.stat(dir)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot open directory ${dir}`, { cause: err })
    }
    if (existed !== undefined && !existed.isDirectory) throw new StoreError('KV_IO', `${dir} exists and is not a directory`)
    try {
      this.#fs.mkdir(dir)
      // A new directory's own entry must be durable too, or power loss can lose the whole store.
      if (existed === undefined) await this.#fs.fsyncDir(dirname(dir))
    } catch (err) {
      throw new StoreError('KV_IO', `cannot create directory ${dir}`, { cause: err })
    }
    this.#dirLock = DirLock.acquire(this.#fs, dir)
    try {
      const rec = await recoverDirectory({
        fs: this.#fs,
        dir,
        mode: recovery,
        sync: this.#sync,
        ...(syncIntervalMs === undefined ? {} : { syncIntervalMs }),
        onProgress: (e) => this.#progress(e),
        loadSnapshot: (mt) => {
          this.#mt = mt
          this.#rebuildExpiry()
        },
        applyOps: (ops, seq) => {
          for (const op of ops) this.#apply(op, seq)
        },
      })
      this.#wal = rec.writer
      this.#seq = rec.lastSeq
      this.#snapshots = rec.snapshots
      this.#recovery = rec.stats
      this.#purgeExpired(Infinity)
    } catch (err) {
      this.#dirLock.release()
      throw err
    }
  }

  async #openFile(): Promise<void> {
    const file = this.#path as string
    if (this.#fs.stat(file) === undefined) return
    const loaded = await loadSnapshotFile(this.#fs, file, (e) => this.#progress(e))
    this.#mt = loaded.memtable
    this.#seq = Math.max(loaded.seq, loaded.maxVersion)
    this.#rebuildExpiry()
    this.#purgeExpired(Infinity)
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
      validateKey(key, this.#maxKeyBytes)
      if (!this.#lock.readable) return this.#lock.read(() => this.#get(key))
      return Promise.resolve(this.#get(key))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #get(key: string): V | undefined {
    const mt = this.#mt
    const v = mt.get(key)
    if (v === undefined || (mt.expiringCount > 0 && this.#live(key) < 0)) return undefined
    if (this.#slidingTtlMs > 0 && mt.expiringCount > 0) this.#slide(key)
    if (typeof v === 'object' && v !== null && isCollection(v)) throw wrongType(key, 'a plain value')
    return out<V>(v)
  }

  /**
   * Value, version and expiry of `key`, or `undefined` when missing or expired.
   * The version is what {@link Store.atomic} checks compare against.
   *
   * @throws {@link StoreError} `KV_WRONG_TYPE` for lists and hashes; `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  getEntry(key: string): Promise<Entry<V> | undefined> {
    return this.#read(key, () => {
      const value = this.#get(key) // may refresh a sliding expiry: read the position after
      const pos = this.#live(key)
      if (value === undefined || pos < 0) return undefined
      const expiresAt = this.#mt.expiresAtAt(pos)
      const version = this.#mt.versionAt(pos)
      return expiresAt !== 0 ? { value, version, expiresAt } : { value, version }
    })
  }

  /**
   * Version (sequence number of the last write) of `key`, whatever it holds, or
   * `undefined` when missing or expired. Cheap; used for optimistic checks such as WATCH.
   * @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  version(key: string): Promise<number | undefined> {
    return this.#read(key, () => {
      const pos = this.#live(key)
      return pos < 0 ? undefined : this.#mt.versionAt(pos)
    })
  }

  /** Whether `key` exists (and has not expired). Any type counts. @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`. */
  has(key: string): Promise<boolean> {
    return this.#read(key, () => this.#mt.has(key) && (this.#mt.expiringCount === 0 || this.#live(key) >= 0))
  }

  /**
   * What `key` holds, or `undefined` when missing or expired.
   * @throws {@link StoreError} `KV_INVALID_KEY`; `KV_CLOSED`.
   */
  type(key: string): Promise<KeyType | undefined> {
    return this.#read(key, () => {
      const pos = this.#live(key)
      return pos < 0 ? undefined : typeOf(this.#mt.valueAt(pos))
    })
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
      const run = (): string[] => this.#keys(pattern)
      return this.#lock.readable ? Promise.resolve(run()) : this.#lock.read(run)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #keys(pattern: string): string[] {
    const glob = compileGlob(pattern)
    if (glob.literal !== undefined) return this.#live(glob.literal) >= 0 ? [glob.literal] : []
    const bounds: RangeBounds = prefixBounds(glob.prefix)
    const result: string[] = []
    const now = this.#mt.expiringCount > 0 ? this.#clock.now() : 0
    const all = glob.matchesAll
    this.#mt.forEach(bounds, (key, _v, _ver, exp) => {
      if (exp !== 0 && exp <= now) return
      if (all || glob.match(key)) result.push(key)
    })
    return result
  }

  /**
   * Iterate `[key, value]` pairs in key order (or reverse) from a point-in-time view
   * taken when iteration starts: writes made while iterating are not seen, and
   * iterating never blocks writers. Keys holding lists or hashes are skipped (read
   * them with `lrange` / `hgetall`); expired keys are skipped.
   *
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad bounds or limit; `KV_CLOSED`.
   */
  scan(options: ScanOptions = {}): AsyncIterableIterator<[string, V]> {
    this.#checkOpen()
    return this.#scan(scanBounds(options), scanLimit(options))
  }

  async *#scan(bounds: RangeBounds, limit: number): AsyncIterableIterator<[string, V]> {
    if (limit === 0) return
    if (!this.#lock.readable) await this.#lock.read(() => undefined)
    this.#checkOpen()
    const view = this.#mt.view()
    const now = this.#clock.now()
    const cur = view.cursor(bounds)
    let n = 0
    while (cur.next()) {
      const exp = cur.expiresAt
      if (exp !== 0 && exp <= now) continue
      const v = cur.value
      if (typeof v === 'object' && v !== null && isCollection(v)) continue
      yield [cur.key, out<V>(v)]
      if (++n >= limit) return
    }
  }

  /** Number of live keys (any type). Sweeps keys that are due first, so the count is exact. @throws {@link StoreError} `KV_CLOSED`. */
  count(): Promise<number> {
    try {
      this.#checkOpen()
      const run = (): number => {
        this.#purgeExpired(Infinity)
        return this.#mt.size
      }
      return this.#lock.readable ? Promise.resolve(run()) : this.#lock.read(run)
    } catch (err) {
      return Promise.reject(err)
    }
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
   *   `KV_INVALID_ARGUMENT` (bad ttl), `KV_CLOSED`, `KV_IO` — all before anything is
   *   applied or logged.
   */
  set(key: string, value: V, options?: SetOptions): Promise<boolean> {
    try {
      this.#checkOpen()
      validateKey(key, this.#maxKeyBytes)
      const stored = this.#prepare(value)
      const ttlAt = options === undefined ? 0 : this.#expiresAtOf(options)
      if (this.#lock.idle) return this.#set(key, stored, ttlAt, options)
      return this.#lock.write(() => this.#set(key, stored, ttlAt, options))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #set(key: string, stored: unknown, expiresAt: number, options: SetOptions | undefined): Promise<boolean> {
    this.#checkWritable()
    if (options !== undefined && (options.ifNotExists || options.ifExists || options.keepTtl)) {
      const pos = this.#live(key)
      if (options.ifNotExists && pos >= 0) return Promise.resolve(false)
      if (options.ifExists && pos < 0) return Promise.resolve(false)
      if (options.keepTtl && pos >= 0 && expiresAt === 0) expiresAt = this.#mt.expiresAtAt(pos)
    }
    return after(this.#commit1({ t: 'set', key, value: stored, expiresAt }), true)
  }

  /**
   * Remove `key`. Resolves `true` when it existed (and had not expired).
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  delete(key: string): Promise<boolean> {
    return this.#write(key, () => {
      const pos = this.#mt.indexOf(key)
      if (pos < 0) return Promise.resolve(false)
      const existed = !this.#expiredAt(pos)
      return after(this.#commit1({ t: 'del', key }), existed)
    })
  }

  /**
   * Remove every key. One WAL record; durable like any write.
   * @throws {@link StoreError} `KV_CLOSED`, `KV_IO`.
   */
  clear(): Promise<void> {
    try {
      this.#checkOpen()
      const run = (): Promise<void> => {
        this.#checkWritable()
        return this.#commit([{ t: 'clear' }])
      }
      return this.#lock.idle ? run() : this.#lock.write(run)
    } catch (err) {
      return Promise.reject(err)
    }
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
    try {
      this.#checkOpen()
      if (!Array.isArray(ops)) throw new StoreError('KV_INVALID_ARGUMENT', 'batch takes an array of operations')
      const prepared: Op[] = []
      let bytes = 0
      for (const op of ops) {
        if (typeof op !== 'object' || op === null) {
          throw new StoreError('KV_INVALID_ARGUMENT', `batch op must be an object, got ${describeValue(op)}`)
        }
        checkOptionsObject('batch op', op, op.type === 'set' ? ['type', 'key', 'value', 'ttl'] : ['type', 'key'])
        validateKey(op.key, this.#maxKeyBytes)
        if (op.type === 'set') {
          const value = this.#prepare(op.value)
          const expiresAt = op.ttl === undefined ? 0 : this.#expiresAtOf({ ttl: op.ttl })
          bytes += op.key.length * 3 + encodedSize(value, this.#maxValueBytes)
          prepared.push({ t: 'set', key: op.key, value, expiresAt })
        } else if (op.type === 'delete') {
          bytes += op.key.length * 3
          prepared.push({ t: 'del', key: op.key })
        } else {
          throw new StoreError('KV_INVALID_ARGUMENT', `batch op type must be 'set' or 'delete', got ${describeValue((op as { type: unknown }).type)}`)
        }
      }
      this.#checkBatchBytes(bytes)
      const run = (): Promise<void> => {
        this.#checkWritable()
        return prepared.length === 0 ? RESOLVED : this.#commit(prepared)
      }
      return this.#lock.idle ? run() : this.#lock.write(run)
    } catch (err) {
      return Promise.reject(err)
    }
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
      validateKey(key, this.#maxKeyBytes)
      checkFunction('update function', fn)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#lock.write(async () => {
      this.#checkWritable()
      const next = await fn(this.#get(key))
      this.#checkWritable()
      if (next === undefined) {
        if (this.#mt.indexOf(key) >= 0) await this.#commit1({ t: 'del', key })
        return undefined
      }
      const stored = this.#prepare(next)
      const pos = this.#live(key)
      await this.#commit1({ t: 'set', key, value: stored, expiresAt: pos >= 0 ? this.#mt.expiresAtAt(pos) : 0 })
      return out<V>(stored)
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
      at = this.#deadline(positiveInt('ttl', ttlMs, true))
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
    return this.#write(key, () => {
      positiveInt('expiresAt', at, true)
      if (this.#live(key) < 0) return Promise.resolve(false)
      if (at <= this.#clock.now()) return this.#commit1({ t: 'del', key }).then(yieldTrue)
      return this.#commit1({ t: 'expire', key, expiresAt: at }).then(yieldTrue)
    })
  }

  /**
   * Remove `key`'s expiry. Resolves `true` when it had one.
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`, `KV_IO`.
   */
  persist(key: string): Promise<boolean> {
    return this.#write(key, () => {
      const pos = this.#live(key)
      if (pos < 0 || this.#mt.expiresAtAt(pos) === 0) return Promise.resolve(false)
      return this.#commit1({ t: 'expire', key, expiresAt: 0 }).then(yieldTrue)
    })
  }

  /**
   * Remaining time to live of `key` in ms: `-2` when the key is missing (or expired),
   * `-1` when it has no expiry (Redis `PTTL`).
   * @throws {@link StoreError} `KV_INVALID_KEY`, `KV_CLOSED`.
   */
  ttl(key: string): Promise<number> {
    return this.#read(key, () => {
      const pos = this.#live(key)
      if (pos < 0) return -2
      const exp = this.#mt.expiresAtAt(pos)
      return exp === 0 ? -1 : Math.max(0, exp - this.#clock.now())
    })
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
      const pos = this.#live(key)
      let current = 0
      let expiresAt = 0
      if (pos >= 0) {
        current = toInteger(key, this.#mt.valueAt(pos))
        expiresAt = this.#mt.expiresAtAt(pos)
      }
      const next = current + by
      if (!Number.isSafeInteger(next)) {
        throw new StoreError('KV_NOT_INTEGER', `increment of ${JSON.stringify(key)} would leave the safe-integer range`)
      }
      return after(this.#commit1({ t: 'set', key, value: next, expiresAt }), next)
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
    return this.#write(key, () => {
      if (values.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'push needs at least one value')
      const prepared = values.map((v) => this.#prepareElement(v))
      const ops: Op[] = []
      this.#collection(key, KvList, 'a list', ops)
      ops.push({ t: 'push', key, left, values: prepared })
      return this.#commitFor<number>(ops)
    })
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
    return this.#write(key, () => {
      const list = this.#collection(key, KvList, 'a list', undefined)
      if (list === undefined || count === 0) return Promise.resolve([])
      return this.#commitFor<V[]>([{ t: 'pop', key, left, count }])
    })
  }

  /**
   * Elements `start..stop` (inclusive) of the list at `key`, with Redis `LRANGE` index
   * rules: negative indices count from the end, out-of-range indices are clamped, and
   * an empty range gives `[]`. A missing key gives `[]`.
   * @throws {@link StoreError} `KV_WRONG_TYPE`, `KV_INVALID_ARGUMENT` for non-integer indices.
   */
  lrange(key: string, start = 0, stop = -1): Promise<V[]> {
    return this.#read(key, () => {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(stop)) {
        throw new StoreError('KV_INVALID_ARGUMENT', 'list indices must be integers')
      }
      const list = this.#collection(key, KvList, 'a list', undefined)
      return list === undefined ? [] : (list.range(start, stop).map((v) => out<V>(v)))
    })
  }

  /** Length of the list at `key` (0 when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  llen(key: string): Promise<number> {
    return this.#read(key, () => this.#collection(key, KvList, 'a list', undefined)?.length ?? 0)
  }

  /** Element `index` of the list at `key` (negative counts from the end), or `undefined`. */
  lindex(key: string, index: number): Promise<V | undefined> {
    return this.#read(key, () => {
      if (!Number.isSafeInteger(index)) throw new StoreError('KV_INVALID_ARGUMENT', 'list index must be an integer')
      const list = this.#collection(key, KvList, 'a list', undefined)
      if (list === undefined) return undefined
      const i = index < 0 ? list.length + index : index
      return i < 0 || i >= list.length ? undefined : out<V>(list.at(i))
    })
  }

  /**
   * Replace element `index` of the list at `key` (negative counts from the end), as
   * Redis `LSET`. The WAL records only the new element.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when the key is missing or the index
   *   is out of range; `KV_WRONG_TYPE`; value errors as for `set`.
   */
  lset(key: string, index: number, value: V): Promise<void> {
    return this.#write(key, () => {
      if (!Number.isSafeInteger(index)) throw new StoreError('KV_INVALID_ARGUMENT', 'list index must be an integer')
      const stored = this.#prepareElement(value)
      const list = this.#collection(key, KvList, 'a list', undefined)
      if (list === undefined) throw new StoreError('KV_INVALID_ARGUMENT', `no such key ${JSON.stringify(key)}`)
      const i = index < 0 ? list.length + index : index
      if (i < 0 || i >= list.length) throw new StoreError('KV_INVALID_ARGUMENT', 'list index out of range')
      return this.#commit([{ t: 'lset', key, index: i, value: stored }])
    })
  }

  /**
   * Keep only elements `start..stop` (inclusive, Redis `LTRIM` index rules) of the list at
   * `key`; a list left empty is deleted. A missing key is a no-op.
   * @throws {@link StoreError} `KV_WRONG_TYPE`, `KV_INVALID_ARGUMENT` for non-integer indices.
   */
  ltrim(key: string, start: number, stop: number): Promise<void> {
    return this.#write(key, () => {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(stop)) {
        throw new StoreError('KV_INVALID_ARGUMENT', 'list indices must be integers')
      }
      const ops: Op[] = []
      const list = this.#collection(key, KvList, 'a list', ops)
      if (list === undefined) return ops.length === 0 ? RESOLVED : this.#commit(ops)
      ops.push({ t: 'ltrim', key, start, stop })
      return this.#commit(ops)
    })
  }

  // --------------------------------------------------------------- hashes

  /**
   * Set fields of the hash at `key` (created if missing). Resolves with the number of
   * fields that were new. The WAL records only the given fields.
   * @throws {@link StoreError} `KV_WRONG_TYPE`; value errors as for `set`;
   *   `KV_INVALID_ARGUMENT` for an empty or non-string field.
   */
  hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number> {
    return this.#write(key, () => {
      if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
        throw new StoreError('KV_INVALID_ARGUMENT', `hset takes an object or a Map of fields, got ${describeValue(fields)}`)
      }
      const names: string[] = []
      const values: unknown[] = []
      const entries = fields instanceof Map ? fields.entries() : Object.entries(fields as Record<string, V>)
      for (const [f, v] of entries) {
        this.#checkField(f)
        names.push(f)
        values.push(this.#prepareElement(v))
      }
      if (names.length === 0) throw new StoreError('KV_INVALID_ARGUMENT', 'hset needs at least one field')
      const ops: Op[] = []
      this.#collection(key, KvHash, 'a hash', ops)
      ops.push({ t: 'hset', key, fields: names, values })
      return this.#commitFor<number>(ops)
    })
  }

  /** Value of `field` in the hash at `key`, or `undefined`. @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hget(key: string, field: string): Promise<V | undefined> {
    return this.#read(key, () => {
      const h = this.#collection(key, KvHash, 'a hash', undefined)
      const v = h?.get(field)
      return v === undefined ? undefined : out<V>(v)
    })
  }

  /**
   * Delete fields of the hash at `key`; resolves with how many existed. A hash left
   * empty is deleted. @throws {@link StoreError} `KV_WRONG_TYPE`.
   */
  hdel(key: string, ...fields: string[]): Promise<number> {
    return this.#write(key, () => {
      for (const f of fields) this.#checkField(f)
      const h = this.#collection(key, KvHash, 'a hash', undefined)
      if (h === undefined) return Promise.resolve(0)
      const present = fields.filter((f) => h.has(f))
      if (present.length === 0) return Promise.resolve(0)
      return this.#commitFor<number>([{ t: 'hdel', key, fields: present }])
    })
  }

  /** All fields of the hash at `key` as a `Map` (empty when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hgetall(key: string): Promise<Map<string, V>> {
    return this.#read(key, () => {
      const h = this.#collection(key, KvHash, 'a hash', undefined)
      const m = new Map<string, V>()
      if (h !== undefined) for (const [f, v] of h.entries()) m.set(f, out<V>(v))
      return m
    })
  }

  /** Number of fields in the hash at `key` (0 when missing). @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hlen(key: string): Promise<number> {
    return this.#read(key, () => this.#collection(key, KvHash, 'a hash', undefined)?.size ?? 0)
  }

  /** Whether the hash at `key` has `field`. @throws {@link StoreError} `KV_WRONG_TYPE`. */
  hexists(key: string, field: string): Promise<boolean> {
    return this.#read(key, () => this.#collection(key, KvHash, 'a hash', undefined)?.has(field) ?? false)
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
   * @throws {@link StoreError} `KV_CONFLICT` after the retries; write errors as for `batch`.
   */
  async transaction<R>(fn: (tx: Transaction<V>) => R | Promise<R>, options: { retries?: number } = {}): Promise<R> {
    this.#checkOpen()
    checkFunction('transaction function', fn)
    checkOptionsObject('transaction option', options, ['retries'])
    const retries = options.retries === undefined ? 10 : positiveInt('retries', options.retries, true)
    for (let attempt = 0; ; attempt++) {
      if (!this.#lock.readable) await this.#lock.read(() => undefined)
      const tx = new Transaction<V>(this, this.#mt.view(), this.#seq)
      const result = await fn(tx)
      // Wrapped so the durability promise is not flattened into "no conflict".
      const outcome = await this.#exclusive(() => ({ done: tx.commit() }))
      if (outcome.done !== undefined) {
        await outcome.done
        return result
      }
      if (attempt >= retries) {
        throw new StoreError('KV_CONFLICT', `transaction conflicted ${attempt + 1} times`)
      }
    }
  }

  /**
   * Start an atomic check-and-set: `store.atomic().check(key, version | null)
   * .set(key, value).delete(key).commit()`. See {@link AtomicOperation}.
   */
  atomic(): AtomicOperation<V> {
    this.#checkOpen()
    return new AtomicOperation<V>(this)
  }

  /**
   * Watch committed changes to one key or a key prefix, in commit order. The feed is
   * an async iterator; it ends when `close()` is called on the store or on the feed.
   * A consumer more than `highWaterMark` changes behind is ended with a `KV_OVERFLOW`
   * error rather than buffering without limit.
   */
  watch(options: WatchOptions = {}): ChangeFeed {
    this.#checkOpen()
    const feed = new ChangeFeed(options, () => this.#feeds.delete(feed))
    this.#feeds.add(feed)
    return feed
  }

  // ------------------------------------------------- TransactionHost (internal)

  /** @internal */
  validateKeyForHost(key: string): void {
    validateKey(key, this.#maxKeyBytes)
  }
  /** @internal */
  prepareForHost(value: unknown): unknown {
    return this.#prepare(value)
  }
  /** @internal */
  expiresAtForHost(options: SetOptions): number {
    return this.#expiresAtOf(options, EXPIRY_OPTION_KEYS)
  }
  /** @internal Current version of a live key, or 0 when missing or expired. */
  versionOf(key: string): number {
    const pos = this.#live(key)
    return pos < 0 ? 0 : this.#mt.versionAt(pos)
  }
  /** @internal */
  liveTable(): MemtableReader {
    return this.#mt
  }
  /** @internal */
  now(): number {
    return this.#clock.now()
  }
  /** @internal Apply prepared ops as one record when `check` passes; synchronous up to the WAL append. */
  commitOps(ops: Op[], bytes: number): { seq: number; done: Promise<void> } {
    this.#checkOpen()
    this.#checkWritable()
    this.#checkBatchBytes(bytes)
    const done = ops.length === 0 ? RESOLVED : this.#commit(ops)
    return { seq: this.#seq, done }
  }
  /** @internal */
  generation(): number {
    return this.#generation
  }
  /** @internal Run `fn` when no exclusive operation is running. */
  runExclusive<T>(fn: () => T): Promise<T> {
    return this.#exclusive(fn)
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
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` (no path in memory mode), `KV_IO`
   *   (the previous file is left intact), `KV_CLOSED`.
   */
  async snapshot(path?: string, options: { format?: SnapshotFormatName; compress?: 'gzip' | 'brotli' } = {}): Promise<SnapshotResult> {
    this.#checkOpen()
    checkOptionsObject('snapshot option', options, SNAPSHOT_OPTION_KEYS)
    checkOneOf('snapshot format', options.format, SNAPSHOT_FORMATS)
    checkOneOf('snapshot compress', options.compress, COMPRESSIONS)
    if (path === undefined) {
      if (this.#mode === 'dir') return this.compact()
      if (this.#mode === 'memory') throw new StoreError('KV_INVALID_ARGUMENT', 'an in-memory store needs a snapshot path')
      path = this.#path as string
    }
    if (typeof path !== 'string' || path === '') {
      throw new StoreError('KV_INVALID_ARGUMENT', `snapshot path must be a non-empty string, got ${describeValue(path)}`)
    }
    const format = options.format ?? formatFor(path)
    // The view is taken now, so the snapshot holds the state as of this call; writes to
    // files are serialised so a later snapshot of the same path always lands last.
    if (!this.#lock.readable) await this.#lock.read(() => undefined)
    this.#checkOpen()
    const point = this.#pointInTime()
    return this.#serial(() => this.#writeSnapshot(resolvePath(path), format, options.compress, point))
  }

  #pointInTime(): PointInTime {
    return { view: this.#mt.view(), seq: this.#seq, changes: this.#changes }
  }

  async #writeSnapshot(
    path: string,
    format: SnapshotFormatName,
    compress: 'gzip' | 'brotli' | undefined,
    point: PointInTime = this.#pointInTime(),
  ): Promise<SnapshotResult> {
    const started = performance.now()
    const { view, seq } = point
    const entries = snapshotEntries(view, this.#clock.now())
    const meta = { seq, timestamp: this.#clock.now(), count: entries.count }
    let lastReport = started
    const { bytes } = await writeSnapshotFile(this.#fs, path, formatByName(format), meta, entries.iterate(), {
      pauseEvery: 4096,
      pause: () =>
        new Promise<void>((r) => {
          const t = performance.now()
          if (t - lastReport > 100) {
            lastReport = t
            this.#progress({ phase: 'snapshot', done: entries.done, total: entries.count })
          }
          setImmediate(r)
        }),
      ...(compress === undefined ? {} : { compress }),
    })
    this.#counters.snapshots++
    // Only a snapshot of the store's own file saves it; a copy elsewhere leaves it unsaved.
    if (this.#mode === 'file' && path === this.#path) this.#savedChanges = Math.max(this.#savedChanges, point.changes)
    return { path, format, entries: entries.done, bytes, seq, timeMs: performance.now() - started }
  }

  /**
   * Load a snapshot file (JSON or binary, detected from its content), replacing the
   * whole contents atomically: readers see the old contents or the new, never a mix.
   * In `dir` mode the loaded contents become the new base snapshot and the old WAL is
   * dropped, so the load survives a crash once it resolves; in `file` mode the store's
   * file is rewritten. Keys keep the expiry the file carries (keys already expired are not
   * loaded). Into a store never written, keys keep the file's versions; otherwise every
   * loaded key gets the load's one new version, so no `atomic().check()` or WATCH made
   * before the load can pass after it.
   *
   * @throws {@link StoreError} `KV_CORRUPT` for a damaged file (the store is unchanged),
   *   `KV_IO`, `KV_INVALID_ARGUMENT`, `KV_CLOSED`.
   */
  async load(path: string): Promise<{ entries: number; timeMs: number }> {
    this.#checkOpen()
    if (typeof path !== 'string' || path === '') {
      throw new StoreError('KV_INVALID_ARGUMENT', `load path must be a non-empty string, got ${describeValue(path)}`)
    }
    const abs = resolvePath(path)
    return this.#serial(() =>
      this.#lock.write(async () => {
        this.#checkWritable()
        const started = performance.now()
        // A store never written keeps the file's versions; otherwise every loaded key gets
        // the load's own version, so a check made before the load cannot pass after it.
        const fresh = this.#seq === 0 && this.#mt.size === 0
        const stamp = fresh ? undefined : this.#seq + 1
        const loaded = await loadSnapshotFile(this.#fs, abs, (e) => this.#progress({ ...e, phase: 'load' }), this.#seq, stamp)
        // Versions stay monotonic: the store continues after everything it installed.
        const seq = Math.max(this.#seq + 1, loaded.maxVersion)
        if (this.#mode === 'dir') {
          await this.#installBase(loaded.memtable, seq)
        } else {
          // File mode: the file is written before the new contents are installed, so a failed
          // write leaves memory and file as they were.
          if (this.#mode === 'file') {
            const file = this.#path as string
            await this.#writeSnapshot(file, formatFor(file), undefined, { view: loaded.memtable.view(), seq, changes: -1 })
          }
          this.#seq = seq
          this.#installTable(loaded.memtable)
          if (this.#mode === 'file') this.#savedChanges = this.#changes
        }
        for (const feed of this.#feeds) feed.push({ type: 'clear', key: '', version: seq })
        return { entries: loaded.memtable.size, timeMs: performance.now() - started }
      }),
    )
  }

  #installTable(mt: Memtable): void {
    this.#generation++
    this.#mt = mt
    this.#rebuildExpiry()
    this.#purgeExpired(Infinity)
    this.#changes++
  }

  /**
   * Make `mt` the durable base at `seq` (dir mode): a new WAL segment starting after
   * `seq`, then snapshot `seq` of `mt`, then drop what it replaces. Until the snapshot
   * is durable a crash leaves the old state (recovery discards the empty segment).
   */
  async #installBase(mt: Memtable, seq: number): Promise<void> {
    const wal = this.#wal as WalWriter
    const snaps = this.#snapshots as SnapshotCatalog
    await wal.rotate(seq)
    try {
      const entries = snapshotEntries(mt.view(), this.#clock.now())
      await snaps.write(this.#snapshotFormat, { seq, timestamp: this.#clock.now(), count: entries.count }, entries.iterate())
    } catch (err) {
      // The WAL now continues after `seq` but the base snapshot at `seq` is missing: the
      // memory state and the files no longer agree on what comes next. Refuse writes
      // until reopen, which recovers the old state (the new segment is empty).
      this.#failure = new StoreError('KV_IO', 'load failed after the WAL was rotated; reopen the store to recover', { cause: err })
      throw err
    }
    this.#seq = seq
    this.#installTable(mt)
    this.#savedChanges = this.#changes
    await this.#dropCovered(seq, wal.segment)
  }

  /** Delete snapshots older than `seq` and WAL segments before `segment`; fsync the directory. */
  async #dropCovered(seq: number, segment: number): Promise<void> {
    const dir = this.#path as string
    for (const n of listSegments(this.#fs, dir)) if (n < segment) this.#fs.unlink(segmentPath(dir, n))
    await (this.#snapshots as SnapshotCatalog).dropOlderThan(seq)
  }

  /**
   * Compact a `dir` store: start a new WAL segment, write a snapshot of everything
   * before it, make it durable, then delete the WAL segments and snapshots it covers.
   * A crash at any step loses nothing. Writers keep going meanwhile (into the new
   * segment). In `file` mode this rewrites the file; in memory mode it is a no-op.
   *
   * @throws {@link StoreError} `KV_IO` (the store keeps its previous snapshot and WAL), `KV_CLOSED`.
   */
  async compact(): Promise<SnapshotResult> {
    this.#checkOpen()
    if (this.#mode === 'file') return this.snapshot()
    if (this.#mode === 'memory') {
      return { path: '', format: 'binary', entries: this.#mt.size, bytes: 0, timeMs: 0, seq: this.#seq }
    }
    return this.#serial(() => this.#compact())
  }

  async #compact(): Promise<SnapshotResult> {
    const started = performance.now()
    const wal = this.#wal as WalWriter
    const snaps = this.#snapshots as SnapshotCatalog
    this.#checkWritable()
    // Taken synchronously together: the view holds exactly the records up to `seq`,
    // and every later append goes to the new segment.
    const seq = this.#seq
    const changes = this.#changes
    const view = this.#mt.view()
    const rotated = wal.rotate()
    this.#compacting = true
    try {
      await rotated
      const entries = snapshotEntries(view, this.#clock.now())
      const { path, bytes } = await snaps.write(
        this.#snapshotFormat,
        { seq, timestamp: this.#clock.now(), count: entries.count },
        entries.iterate(),
        (done) => this.#progress({ phase: 'compact', done, total: entries.count }),
      )
      await this.#dropCovered(seq, wal.segment)
      this.#savedChanges = Math.max(this.#savedChanges, changes)
      this.#counters.compactions++
      return { path, format: this.#snapshotFormat, entries: entries.done, bytes, seq, timeMs: performance.now() - started }
    } finally {
      this.#compacting = false
    }
  }

  // ----------------------------------------------------------- lifecycle

  /** Counters and what recovery found. Never throws, also after `close()`. */
  stats(): StoreStats {
    return {
      mode: this.#mode,
      path: this.#path,
      keys: this.#mt.size,
      expiringKeys: this.#mt.expiringCount,
      seq: this.#seq,
      sync: this.#mode === 'dir' ? this.#sync : undefined,
      walSegment: this.#wal?.segment,
      walBytes: this.#wal?.sizeBytes ?? 0,
      snapshots: this.#counters.snapshots,
      compactions: this.#counters.compactions,
      expiredRemoved: this.#counters.expiredRemoved,
      recovery: this.#recovery,
      failure: (this.#failure ?? this.#wal?.failure)?.message,
    }
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Wait for every write issued before it, flush and fsync the WAL (file mode: write
   * the snapshot), stop timers, end watch feeds and release the directory lock. Later
   * calls reject with `KV_CLOSED`; calling `close()` again returns the same promise.
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
    await this.#lock.write(() => {
      this.#closed = true
    })
    clearInterval(this.#sweepTimer)
    clearInterval(this.#snapshotTimer)
    for (const feed of this.#feeds) feed.end()
    try {
      await this.#maintenance.catch(() => undefined)
      if (this.#mode === 'file' && this.#changes !== this.#savedChanges) {
        await this.#writeSnapshot(this.#path as string, formatFor(this.#path as string), undefined)
      }
      await this.#wal?.close()
    } finally {
      this.#dirLock?.release()
    }
  }

  /** `await using store = await Store.open(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  // ------------------------------------------------------------- internals

  #checkOpen(): void {
    if (this.#closed || this.#closing !== undefined) throw new StoreError('KV_CLOSED', 'the store is closed')
  }

  #checkWritable(): void {
    if (this.#closed) throw new StoreError('KV_CLOSED', 'the store is closed')
    if (this.#failure !== undefined) throw this.#failure
    const failure = this.#wal?.failure
    if (failure !== undefined) {
      throw new StoreError('KV_IO', 'an earlier write failed; reopen the store to recover', { cause: failure })
    }
  }

  #checkBatchBytes(bytes: number): void {
    if (bytes > this.#maxBatchBytes) {
      throw new StoreError('KV_BATCH_TOO_LARGE', `batch of ~${bytes} bytes exceeds maxBatchBytes (${this.#maxBatchBytes})`)
    }
  }

  #prepare(value: unknown): unknown {
    const stored = prepareValue(value)
    if (encodedSize(stored, this.#maxValueBytes) > this.#maxValueBytes) {
      throw new StoreError('KV_VALUE_TOO_LARGE', `value exceeds maxValueBytes (${this.#maxValueBytes})`)
    }
    return stored
  }

  /** A hash field: any well-formed string (empty included) within `maxKeyBytes`, as snapshots can hold it. */
  #checkField(f: unknown): void {
    if (typeof f !== 'string' || !f.isWellFormed()) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hash fields must be well-formed strings, got ${describeValue(f)}`)
    }
    if (f.length * 3 > this.#maxKeyBytes && Buffer.byteLength(f, 'utf8') > this.#maxKeyBytes) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hash field is longer than maxKeyBytes (${this.#maxKeyBytes} UTF-8 bytes)`)
    }
  }

  #prepareElement(value: unknown): unknown {
    return this.#prepare(value)
  }

  #expiresAtOf(options: SetOptions, allowed: readonly string[] = SET_OPTION_KEYS): number {
    checkOptionsObject('set option', options, allowed)
    if (options.expiresAt !== undefined) return positiveInt('expiresAt', options.expiresAt)
    if (options.ttl !== undefined) return this.#deadline(positiveInt('ttl', options.ttl))
    return 0
  }

  /**
   * `now + ttlMs`, refused when it leaves the safe-integer range: an expiry the WAL could not
   * hold exactly would make the store unopenable.
   */
  #deadline(ttlMs: number): number {
    const at = this.#clock.now() + ttlMs
    if (!Number.isSafeInteger(at)) throw new StoreError('KV_INVALID_ARGUMENT', `ttl ${ttlMs} puts the expiry past the safe-integer range`)
    return at
  }

  /** Refresh-on-access: push a live key's expiry to now + slidingTtlMs (logged). */
  #slide(key: string): void {
    const pos = this.#live(key)
    if (pos < 0 || this.#mt.expiresAtAt(pos) === 0 || this.#closed || this.#failure !== undefined || this.#wal?.failure !== undefined) return
    // Not awaited: the read must not wait for an fsync. A failed write poisons the WAL,
    // which later writes report.
    this.#commit1({ t: 'expire', key, expiresAt: this.#clock.now() + this.#slidingTtlMs }).catch(() => undefined)
  }

  /** Position of `key` when present and not expired, else -1. */
  #live(key: string): number {
    const pos = this.#mt.indexOf(key)
    if (pos >= 0 && this.#mt.expiringCount > 0 && this.#expiredAt(pos)) return -1
    return pos
  }

  #expiredAt(pos: number): boolean {
    const exp = this.#mt.expiresAtAt(pos)
    return exp !== 0 && exp <= this.#clock.now()
  }

  /**
   * The live collection at `key` of class `kind`, or `undefined` when missing. When
   * `ops` is given (a write follows) and the key exists only as an expired entry, a
   * delete is queued first so replay cannot push onto the expired value.
   */
  #collection<C extends KvList | KvHash>(key: string, kind: new () => C, want: string, ops: Op[] | undefined): C | undefined {
    const pos = this.#mt.indexOf(key)
    if (pos < 0) return undefined
    if (this.#mt.expiringCount > 0 && this.#expiredAt(pos)) {
      ops?.push({ t: 'del', key })
      return undefined
    }
    const v = this.#mt.valueAt(pos)
    if (!(v instanceof kind)) throw wrongType(key, want)
    return v
  }

  #read<T>(key: string, fn: () => T): Promise<T> {
    try {
      this.#checkOpen()
      validateKey(key, this.#maxKeyBytes)
      return this.#lock.readable ? Promise.resolve(fn()) : this.#lock.read(fn)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #write<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      this.#checkOpen()
      validateKey(key, this.#maxKeyBytes)
      const run = (): Promise<T> => {
        this.#checkWritable()
        return fn()
      }
      return this.#lock.idle ? run() : this.#lock.write(run)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #exclusive<T>(fn: () => T): Promise<T> {
    try {
      return this.#lock.idle ? Promise.resolve(fn()) : this.#lock.write(fn)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Serialise snapshot, compaction and load so two never run at once. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#maintenance.then(fn, fn)
    this.#maintenance = run.catch(() => undefined)
    return run
  }

  #commit1(op: Op): Promise<void> {
    return this.#commit([op])
  }

  /**
   * Log `ops` as one WAL record and apply them, in that order, synchronously.
   * Invariant: WAL order == apply order == seq order. The returned promise settles
   * when the record is durable under the sync policy.
   */
  #commit(ops: Op[]): Promise<void> {
    let done = RESOLVED
    const seq = this.#seq + 1
    const wal = this.#wal
    if (wal !== undefined) {
      const w = this.#opWriter
      w.reset()
      encodeOps(ops, w)
      done = wal.append(seq, RECORD_OPS, w.finish())
      if (wal.failure !== undefined) return done
      if (!this.#compacting && this.#compactThresholdBytes > 0 && wal.sizeBytes >= this.#compactThresholdBytes) {
        this.#compactSoon()
      }
    }
    this.#seq = seq
    this.#changes++
    for (let i = 0; i < ops.length; i++) this.#apply(ops[i] as Op, seq)
    return done
  }

  /**
   * Commit `ops` and resolve with the last op's result. The result is read right after
   * the synchronous apply: a later call overwrites `#result` before this promise settles.
   */
  #commitFor<T>(ops: Op[]): Promise<T> {
    const done = this.#commit(ops)
    return after(done, this.#result as T)
  }

  #compactSoon(): void {
    this.#compacting = true
    // After the current call has applied its op (views must include it), not inside it.
    queueMicrotask(() => {
      if (this.#closed || this.#closing !== undefined) {
        this.#compacting = false
        return
      }
      this.#serial(() => this.#compact()).catch(() => {
        // A failed compaction leaves the old snapshot and WAL in place; the WAL
        // failure (if that was the cause) already poisons writes.
      })
    })
  }

  /**
   * Apply one op at `seq`. Shared by live writes and WAL replay, so replay reproduces
   * the exact state. Sets `#result` to the op's result.
   */
  #apply(op: Op, seq: number): void {
    const mt = this.#mt
    switch (op.t) {
      case 'set': {
        mt.set(op.key, op.value, seq, op.expiresAt)
        if (op.expiresAt !== 0) this.#expiry.push(op.expiresAt, op.key)
        this.#result = true
        break
      }
      case 'del':
        this.#result = mt.delete(op.key)
        break
      case 'expire': {
        const pos = mt.indexOf(op.key)
        if (pos >= 0) {
          mt.setAt(pos, mt.valueAt(pos), seq, op.expiresAt)
          if (op.expiresAt !== 0) this.#expiry.push(op.expiresAt, op.key)
        }
        this.#result = pos >= 0
        break
      }
      case 'clear':
        mt.clear()
        this.#expiry.clear()
        this.#result = undefined
        break
      case 'push': {
        const list = this.#mutable(op.key, seq, KvList)
        if (op.left) for (const v of op.values) list.pushLeft(v)
        else for (const v of op.values) list.pushRight(v)
        this.#result = list.length
        break
      }
      case 'pop': {
        const list = this.#mutable(op.key, seq, KvList)
        const popped: unknown[] = []
        for (let i = 0; i < op.count && list.length > 0; i++) popped.push(out(op.left ? list.popLeft() : list.popRight()))
        if (list.length === 0) mt.delete(op.key)
        this.#result = popped
        break
      }
      case 'lset': {
        const list = this.#mutable(op.key, seq, KvList)
        list.set(op.index, op.value)
        this.#result = true
        break
      }
      case 'ltrim': {
        const list = this.#mutable(op.key, seq, KvList)
        list.trim(op.start, op.stop)
        if (list.length === 0) mt.delete(op.key)
        this.#result = true
        break
      }
      case 'hset': {
        const h = this.#mutable(op.key, seq, KvHash)
        let added = 0
        for (let i = 0; i < op.fields.length; i++) {
          if (!h.has(op.fields[i] as string)) added++
          h.set(op.fields[i] as string, op.values[i])
        }
        this.#result = added
        break
      }
      case 'hdel': {
        const h = this.#mutable(op.key, seq, KvHash)
        let removed = 0
        for (const f of op.fields) if (h.delete(f)) removed++
        if (h.size === 0) mt.delete(op.key)
        this.#result = removed
        break
      }
    }
    if (this.#feeds.size > 0) this.#publish(op, seq)
  }

  /**
   * The collection at `key`, safe to mutate in place: created when missing, cloned
   * first when a view may share it (copy-on-write, same epoch rule as memtable chunks).
   * The write's version is stamped on the key.
   */
  #mutable<C extends KvList | KvHash>(key: string, seq: number, kind: new (items: [], epoch: number) => C): C {
    const mt = this.#mt
    const pos = mt.indexOf(key)
    if (pos < 0) {
      const fresh = new kind([], mt.epoch)
      mt.set(key, fresh, seq, 0)
      return fresh
    }
    let c = mt.valueAt(pos) as C
    if (!(c instanceof kind)) {
      // Replay of a WAL written by this code never gets here; a foreign value means damage.
      throw new StoreError('KV_CORRUPT', `WAL op for ${JSON.stringify(key)} does not match the stored type`)
    }
    if (c.epoch !== mt.epoch) c = c.clone(mt.epoch) as C
    mt.setAt(pos, c, seq, mt.expiresAtAt(pos))
    return c
  }

  #publish(op: Op, seq: number): void {
    let change: Change
    switch (op.t) {
      case 'set':
        // Bytes are copied like every read: a consumer must not reach the stored array.
        change = { type: 'set', key: op.key, value: out(op.value), version: seq }
        break
      case 'del':
        change = { type: 'delete', key: op.key, version: seq }
        break
      case 'clear':
        change = { type: 'clear', key: '', version: seq }
        break
      default: {
        const exists = this.#mt.indexOf(op.key) >= 0
        change = exists ? { type: 'update', key: op.key, version: seq } : { type: 'delete', key: op.key, version: seq }
      }
    }
    for (const feed of this.#feeds) feed.push(change)
  }

  #rebuildExpiry(): void {
    this.#expiry.clear()
    if (this.#mt.expiringCount === 0) return
    this.#mt.forEach({}, (key, _v, _ver, exp) => {
      if (exp !== 0) this.#expiry.push(exp, key)
    })
  }

  /**
   * Remove keys whose expiry has passed, for at most `budgetMs`. Not logged: expiry is
   * absolute and recorded with the key, so replay hides the same keys again.
   */
  #purgeExpired(budgetMs: number): void {
    const heap = this.#expiry
    if (heap.size === 0) return
    const now = this.#clock.now()
    const started = budgetMs === Infinity ? 0 : performance.now()
    const mt = this.#mt
    let n = 0
    while (heap.peekTime() <= now) {
      const key = heap.pop()
      const pos = mt.indexOf(key)
      if (pos >= 0) {
        const exp = mt.expiresAtAt(pos)
        if (exp !== 0 && exp <= now) {
          mt.delete(key)
          this.#counters.expiredRemoved++
          if (this.#feeds.size > 0) {
            for (const feed of this.#feeds) feed.push({ type: 'expire', key, version: this.#seq })
          }
        }
      }
      if ((++n & 255) === 0 && budgetMs !== Infinity && performance.now() - started > budgetMs) break
    }
  }

  #sweep(): void {
    if (this.#closed || !this.#lock.idle) return
    this.#purgeExpired(SWEEP_SLICE_MS)
    // More due keys left: continue in the next macrotask instead of blocking the loop.
    if (this.#expiry.peekTime() <= this.#clock.now()) setImmediate(() => this.#sweep())
  }

  #periodicSnapshot(): void {
    if (this.#closed || this.#closing !== undefined || this.#changes === this.#savedChanges) return
    const run = this.#mode === 'file' ? this.snapshot() : this.compact()
    run.catch(() => {
      // The next period retries; a WAL failure already poisons writes.
    })
  }

  #progress(e: ProgressEvent): void {
    try {
      this.#onProgress?.(e)
    } catch {
      // A throwing progress callback must not break open or compaction.
    }
  }
}

function toInteger(key: string, v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v
  } else if (typeof v === 'string') {
    if (/^-?(0|[1-9][0-9]{0,15})$/.test(v)) {
      const n = Number(v)
      if (Number.isSafeInteger(n)) return n
    }
  } else if (typeof v === 'object' && v !== null && isCollection(v)) {
    throw wrongType(key, 'an integer')
  }
  throw new StoreError('KV_NOT_INTEGER', `value of ${JSON.stringify(key)} is not an integer`)
}

function validateOptions(o: StoreOptions): void {
  checkOptionsObject('Store.open option', o, STORE_OPTION_KEYS)
  if (o.dir !== undefined && o.file !== undefined) throw new StoreError('KV_INVALID_ARGUMENT', 'give dir or file, not both')
  for (const name of ['dir', 'file'] as const) {
    const v = o[name]
    if (v !== undefined && (typeof v !== 'string' || v === '')) {
      throw new StoreError('KV_INVALID_ARGUMENT', `${name} must be a non-empty string, got ${describeValue(v)}`)
    }
  }
  checkOneOf('sync', o.sync, ['always', 'interval', 'never'])
  checkOneOf('recovery', o.recovery, ['strict', 'point-in-time', 'salvage'])
  checkOneOf('snapshotFormat', o.snapshotFormat, SNAPSHOT_FORMATS)
  checkOption(o, 'maxKeyBytes', false)
  checkOption(o, 'maxValueBytes', false)
  checkOption(o, 'maxBatchBytes', false)
  checkOption(o, 'syncIntervalMs', false)
  checkOption(o, 'compactThresholdBytes', true)
  checkOption(o, 'snapshotIntervalMs', true)
  checkOption(o, 'expirySweepIntervalMs', true)
  checkOption(o, 'slidingTtlMs', true)
  if (o.clock !== undefined && typeof o.clock?.now !== 'function') {
    throw new StoreError('KV_INVALID_ARGUMENT', `clock must be an object with now(), got ${describeValue(o.clock)}`)
  }
  if (o.onProgress !== undefined) checkFunction('onProgress', o.onProgress)
  if (o.fs !== undefined && (typeof o.fs !== 'object' || o.fs === null)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `fs must be an object implementing Fs, got ${describeValue(o.fs)}`)
  }
}
