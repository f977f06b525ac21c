import { checkFunction, checkOneOf, checkOptionsObject, describeValue, positiveInt } from './arguments.js'
import { systemClock, type Clock } from './clock.js'
import { StoreError } from './errors.js'
import { EVICTION_POLICIES, type EvictionPolicy } from './eviction/policy.js'
import type { Fs } from './fs/fs.js'
import { nodeFs } from './fs/node-fs.js'
import { DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_VALUE_BYTES } from './snapshot/format.js'
import { MAX_PAYLOAD_BYTES } from './wal/format.js'
import type { SyncPolicy } from './wal/writer.js'

/** When a write's promise resolves, relative to the disk (see {@link StoreOptions.sync}); declared by the WAL writer. */
export type { SyncPolicy } from './wal/writer.js'

export type { EvictionPolicy } from './eviction/policy.js'

/** What open does when the WAL is damaged in the middle (a torn tail is always repaired). */
export type RecoveryMode = 'strict' | 'point-in-time' | 'salvage'

/** Snapshot file formats shipped with kvstore. */
export type SnapshotFormatName = 'binary' | 'json'

/** Progress of a long operation, for `onProgress`. */
export interface ProgressEvent {
  /** What is running. */
  readonly phase: 'open' | 'replay' | 'load' | 'snapshot' | 'compact'
  /** Work done so far (entries or records). */
  readonly done: number
  /** Total work when known, else `undefined`. */
  readonly total: number | undefined
}

/**
 * Options for {@link Store.open}. With neither `dir` nor `file` the store lives in
 * memory only.
 */
export interface StoreOptions {
  /**
   * Directory of a persistent store: WAL segments plus snapshots. Created if missing.
   * Exclusive: a second open (any process) fails with `KV_LOCKED`.
   */
  dir?: string
  /**
   * Snapshot-file mode: the whole store is one snapshot file. Load it on open, write it on a timer
   * (`snapshotIntervalMs`), on `snapshot()` and on `close()`. There is no WAL: writes
   * after the last snapshot are lost in a crash. `.json` files are JSON, others binary.
   */
  file?: string
  /**
   * Durability of writes in `dir` mode.
   * - `'always'`: a write resolves after its WAL record is fdatasynced (survives power
   *   loss). Writes issued in the same tick, or while an fsync is running, share one
   *   write and one fsync (group commit).
   * - `'interval'`: resolves after `write()`; fsync every `syncIntervalMs`.
   * - `'never'`: resolves after `write()`; the OS decides when to flush.
   * Under every policy a resolved write has reached the OS, so it survives `kill -9`.
   * @defaultValue `'always'`
   */
  sync?: SyncPolicy
  /** Fsync period for `sync: 'interval'`. @defaultValue 100 */
  syncIntervalMs?: number
  /**
   * Damage policy for the middle of the WAL. `'strict'` refuses to open with
   * `KV_CORRUPT`; `'point-in-time'` keeps everything before the damage and drops the
   * rest (moved aside as `*.broken`); `'salvage'` skips damaged records and keeps
   * every record that verifies.
   * @defaultValue `'strict'`
   */
  recovery?: RecoveryMode
  /** Largest key, in UTF-8 bytes. @defaultValue 65536 */
  maxKeyBytes?: number
  /** Largest encoded value, in bytes. @defaultValue 67108864 (64 MiB) */
  maxValueBytes?: number
  /** Largest batch, transaction or atomic commit, in encoded bytes. @defaultValue 268435456 (256 MiB) */
  maxBatchBytes?: number
  /**
   * In `dir` mode, compact (snapshot + drop covered WAL segments) once the WAL holds
   * this many bytes. `0` disables automatic compaction.
   * @defaultValue 67108864 (64 MiB)
   */
  compactThresholdBytes?: number
  /**
   * Automatic snapshot period: in `file` mode the file is rewritten when something
   * changed; in `dir` mode a compaction runs when the WAL grew. `0` disables.
   * @defaultValue 60000 in `file` mode, 0 in `dir` mode
   */
  snapshotIntervalMs?: number
  /** Format of snapshots written by compaction in `dir` mode. @defaultValue `'binary'` */
  snapshotFormat?: SnapshotFormatName
  /**
   * Active expiry: how often expired keys are swept out in the background (each sweep
   * runs in slices of at most ~1 ms). `0` disables the sweep; expired keys are then
   * only hidden (and removed when touched). The timer is unref'd.
   * @defaultValue 100
   */
  expirySweepIntervalMs?: number
  /**
   * Sliding expiry (refresh on access): a successful `get` or `getEntry` of a key that has
   * an expiry pushes it to `now + slidingTtlMs`, logged like `expire`. Keys without an
   * expiry are left alone. The refresh is a write: it gives the key a new version, so
   * an `atomic().check()` or WATCH on that key sees the read as a change. `0` disables.
   * @defaultValue 0
   */
  slidingTtlMs?: number
  /**
   * Store-wide default TTL: a plain value written by `set`, `batch`, a transaction or an
   * atomic commit without `ttl`, `expiresAt` or `keepTtl` expires this many ms after the
   * write. Lists, hashes and `incr` are not affected, and neither are keys already stored
   * (it is not persisted: the next open uses the option it is given). `0` means no default.
   * @defaultValue 0
   */
  defaultTtlMs?: number
  /**
   * Memory budget: the most bytes the keys and values may count for, as `stats().memoryBytes`
   * reports them (encoded key and value bytes plus a fixed overhead per entry and per list or
   * hash element; README "Memory and eviction"). A write that would exceed it first evicts
   * keys under `evictionPolicy`, or fails with `KV_OUT_OF_MEMORY`. Open keeps it too: WAL
   * replay evicts as it goes. `0` means no budget. Change it at runtime with `store.configure()`.
   * @defaultValue 0
   */
  maxMemoryBytes?: number
  /**
   * Open `dir` as a read-only follower: load its newest snapshot, replay the WAL after it,
   * then apply every record the writer appends, as it appears. Any number of followers (in
   * other processes or worker threads) may follow one directory, with or without a writer
   * running; a follower takes no lock and never writes a file. Writes reject with
   * `KV_READ_ONLY`. Needs `dir`; refuses `maxMemoryBytes` and `slidingTtlMs` (both would
   * have to write). README "Many processes".
   * @defaultValue false
   */
  readOnly?: boolean
  /**
   * Follower only: the longest wait between two looks at the WAL. Appends are noticed at
   * once through `fs.watch` where the file system supports it; this bounds the delay where
   * it does not.
   * @defaultValue 100
   */
  followIntervalMs?: number
  /**
   * What a write that would exceed `maxMemoryBytes` does (Redis `maxmemory-policy`, same
   * names and meanings): `'noeviction'` fails it with `KV_OUT_OF_MEMORY`; `'allkeys-lru'`,
   * `'volatile-lru'`, `'allkeys-lfu'`, `'volatile-lfu'`, `'volatile-ttl'` and
   * `'allkeys-random'` evict keys first (`volatile-*`: only keys with a TTL). Evictions are
   * logged deletes, seen by `watch()` with `reason: 'evicted'`. Ignored while `maxMemoryBytes` is 0.
   * @defaultValue `'noeviction'`
   */
  evictionPolicy?: EvictionPolicy
  /**
   * Permission bits of the files kvstore creates (WAL segments, snapshots, the store file),
   * set exactly; directories it creates get the same bits plus search (x) wherever read is
   * allowed (0o640 gives 0o750). A file a snapshot replaces keeps its own mode unless this
   * is given. Lock files are always 0644 (they hold only a pid and host name).
   * @defaultValue files 0o600, directories 0o700 (a store holds application data)
   */
  mode?: number
  /** Source of time for TTLs. @defaultValue the system clock */
  clock?: Clock
  /** Called while open, load, snapshot and compaction make progress (at most every ~100 ms). */
  onProgress?: (event: ProgressEvent) => void
  /**
   * File-system implementation: every file operation goes through it. For tests that
   * inject faults or simulate power loss. @defaultValue Node's `fs`
   */
  fs?: Fs
}

/** The defaults of {@link StoreOptions}, in one place (the TSDoc above quotes them). */
export const DEFAULTS = {
  sync: 'always',
  syncIntervalMs: 100,
  recovery: 'strict',
  maxKeyBytes: DEFAULT_MAX_KEY_BYTES,
  maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
  maxBatchBytes: 256 * 1024 * 1024,
  compactThresholdBytes: 64 * 1024 * 1024,
  fileSnapshotIntervalMs: 60_000,
  dirSnapshotIntervalMs: 0,
  snapshotFormat: 'binary',
  expirySweepIntervalMs: 100,
  slidingTtlMs: 0,
  defaultTtlMs: 0,
  maxMemoryBytes: 0,
  evictionPolicy: 'noeviction',
} as const

/** {@link StoreOptions} checked, with every default filled in. */
export interface ResolvedOptions {
  readonly mode: 'memory' | 'dir' | 'file'
  /** `dir` or `file` as given (resolved to an absolute path by the store). */
  readonly path: string | undefined
  readonly sync: SyncPolicy
  readonly syncIntervalMs: number | undefined
  readonly recovery: RecoveryMode
  readonly maxKeyBytes: number
  readonly maxValueBytes: number
  readonly maxBatchBytes: number
  readonly compactThresholdBytes: number
  readonly snapshotIntervalMs: number
  readonly snapshotFormat: SnapshotFormatName
  readonly expirySweepIntervalMs: number
  readonly slidingTtlMs: number
  readonly defaultTtlMs: number
  readonly maxMemoryBytes: number
  readonly evictionPolicy: EvictionPolicy
  readonly readOnly: boolean
  readonly followIntervalMs: number
  /** File mode asked for, or undefined for the defaults. */
  readonly fileMode: number | undefined
  /** Directory mode derived from `fileMode`, or undefined for the default. */
  readonly dirMode: number | undefined
  readonly clock: Clock
  readonly onProgress: ((event: ProgressEvent) => void) | undefined
  readonly fs: Fs
}

const OPTION_KEYS = [
  'dir', 'file', 'sync', 'syncIntervalMs', 'recovery', 'maxKeyBytes', 'maxValueBytes', 'maxBatchBytes',
  'compactThresholdBytes', 'snapshotIntervalMs', 'snapshotFormat', 'expirySweepIntervalMs', 'slidingTtlMs', 'defaultTtlMs',
  'maxMemoryBytes', 'evictionPolicy', 'readOnly', 'followIntervalMs', 'mode', 'clock', 'onProgress', 'fs',
] as const satisfies readonly (keyof StoreOptions)[]

/** A batch is one WAL record, so it can be no larger than a record may be. */
function maxBatchBytes(o: StoreOptions): number {
  const v = optionalInt(o, 'maxBatchBytes', false) ?? DEFAULTS.maxBatchBytes
  if (v > MAX_PAYLOAD_BYTES / 2) {
    throw new StoreError('KV_INVALID_ARGUMENT', `maxBatchBytes must be at most ${MAX_PAYLOAD_BYTES / 2} (half the largest WAL record), got ${v}`)
  }
  return v
}

function optionalInt(o: StoreOptions, name: keyof StoreOptions, allowZero: boolean): number | undefined {
  return o[name] === undefined ? undefined : positiveInt(name, o[name], allowZero)
}

/**
 * Check `o` (unknown keys, types, ranges) and fill in the defaults.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` naming the option, and for an unknown
 *   key the closest valid one.
 */
export function resolveOptions(o: StoreOptions): ResolvedOptions {
  checkOptionsObject('Store.open option', o, OPTION_KEYS)
  if (o.dir !== undefined && o.file !== undefined) throw new StoreError('KV_INVALID_ARGUMENT', 'give dir or file, not both')
  for (const name of ['dir', 'file'] as const) {
    const v = o[name]
    if (v !== undefined && (typeof v !== 'string' || v === '')) {
      throw new StoreError('KV_INVALID_ARGUMENT', `${name} must be a non-empty string, got ${describeValue(v)}`)
    }
  }
  if (o.clock !== undefined && typeof o.clock?.now !== 'function') {
    throw new StoreError('KV_INVALID_ARGUMENT', `clock must be an object with now(), got ${describeValue(o.clock)}`)
  }
  if (o.onProgress !== undefined) checkFunction('onProgress', o.onProgress)
  if (o.fs !== undefined && (typeof o.fs !== 'object' || o.fs === null)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `fs must be an object implementing Fs, got ${describeValue(o.fs)}`)
  }
  const mode = o.dir !== undefined ? 'dir' : o.file !== undefined ? 'file' : 'memory'
  if (o.mode !== undefined && (typeof o.mode !== 'number' || !Number.isSafeInteger(o.mode) || o.mode < 0 || o.mode > 0o777)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `mode must be permission bits from 0 to 0o777, got ${describeValue(o.mode)}`)
  }
  const fileMode = o.mode
  const readOnly = o.readOnly ?? false
  if (typeof readOnly !== 'boolean') throw new StoreError('KV_INVALID_ARGUMENT', `readOnly must be a boolean, got ${describeValue(readOnly)}`)
  if (readOnly) {
    if (mode !== 'dir') throw new StoreError('KV_INVALID_ARGUMENT', 'readOnly needs dir: a follower follows a directory\'s WAL')
    for (const name of ['maxMemoryBytes', 'slidingTtlMs'] as const) {
      if (o[name] !== undefined && o[name] !== 0) {
        throw new StoreError('KV_INVALID_ARGUMENT', `${name} cannot be used with readOnly: a follower never writes (it applies the writer's records as they are)`)
      }
    }
  } else if (o.followIntervalMs !== undefined) {
    throw new StoreError('KV_INVALID_ARGUMENT', 'followIntervalMs is a follower option: it needs readOnly: true')
  }
  return {
    mode,
    path: o.dir ?? o.file,
    sync: checkOneOf('sync', o.sync, ['always', 'interval', 'never']) ?? DEFAULTS.sync,
    syncIntervalMs: optionalInt(o, 'syncIntervalMs', false),
    recovery: checkOneOf('recovery', o.recovery, ['strict', 'point-in-time', 'salvage']) ?? DEFAULTS.recovery,
    maxKeyBytes: optionalInt(o, 'maxKeyBytes', false) ?? DEFAULTS.maxKeyBytes,
    maxValueBytes: optionalInt(o, 'maxValueBytes', false) ?? DEFAULTS.maxValueBytes,
    maxBatchBytes: maxBatchBytes(o),
    compactThresholdBytes: optionalInt(o, 'compactThresholdBytes', true) ?? DEFAULTS.compactThresholdBytes,
    snapshotIntervalMs:
      optionalInt(o, 'snapshotIntervalMs', true) ?? (mode === 'file' ? DEFAULTS.fileSnapshotIntervalMs : DEFAULTS.dirSnapshotIntervalMs),
    snapshotFormat: checkOneOf('snapshotFormat', o.snapshotFormat, ['binary', 'json']) ?? DEFAULTS.snapshotFormat,
    expirySweepIntervalMs: optionalInt(o, 'expirySweepIntervalMs', true) ?? DEFAULTS.expirySweepIntervalMs,
    slidingTtlMs: optionalInt(o, 'slidingTtlMs', true) ?? DEFAULTS.slidingTtlMs,
    defaultTtlMs: optionalInt(o, 'defaultTtlMs', true) ?? DEFAULTS.defaultTtlMs,
    ...resolveMemoryOptions(o),
    readOnly,
    followIntervalMs: optionalInt(o, 'followIntervalMs', false) ?? 100,
    fileMode,
    dirMode: fileMode === undefined ? undefined : fileMode | ((fileMode & 0o444) >> 2),
    clock: o.clock ?? systemClock,
    onProgress: o.onProgress,
    fs: o.fs ?? nodeFs,
  }
}

/** What {@link resolveMemoryOptions} checks: the memory options, at open or in `store.configure()`. */
export interface MemoryOptions {
  /** See {@link StoreOptions.maxMemoryBytes}. */
  maxMemoryBytes?: number
  /** See {@link StoreOptions.evictionPolicy}. */
  evictionPolicy?: EvictionPolicy
}

/**
 * `maxMemoryBytes` and `evictionPolicy` of `o` checked, with `fallback` for those not given.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a negative, fractional or non-number
 *   budget, or an unknown policy (the message names the closest one).
 */
export function resolveMemoryOptions(
  o: MemoryOptions,
  fallback: { readonly maxMemoryBytes: number; readonly evictionPolicy: EvictionPolicy } = DEFAULTS,
): { maxMemoryBytes: number; evictionPolicy: EvictionPolicy } {
  return {
    maxMemoryBytes: o.maxMemoryBytes === undefined ? fallback.maxMemoryBytes : positiveInt('maxMemoryBytes', o.maxMemoryBytes, true),
    evictionPolicy: checkOneOf('evictionPolicy', o.evictionPolicy, EVICTION_POLICIES) ?? fallback.evictionPolicy,
  }
}
