// The pluggable snapshot format interface, and the limits and entry checks every
// reader applies. Implementations: json.ts, binary.ts; detect.ts picks one from a
// file's first bytes.

import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'

/** One key in a snapshot. */
export interface SnapshotEntry {
  key: string
  /** A stored value: string, number, boolean, null, frozen JSON data, `Uint8Array`, `KvList` or `KvHash`. */
  value: unknown
  /** Absolute expiry time in ms since the epoch; 0 = never. */
  expiresAt: number
  /** Per-key version; 0 = unknown (version-1 files, the first kvstore format, carry none). */
  version: number
}

/** What a snapshot says about itself. */
export interface SnapshotMeta {
  /** Last WAL sequence number the snapshot covers; 0 for version-1 files, the first kvstore format. */
  seq: number
  /** When it was written, ms since the epoch (integer ms round-trip exactly). */
  timestamp: number
  /** Number of entries. */
  count: number
}

/** Compression wrapped around a whole snapshot file. */
export type SnapshotCompression = 'gzip' | 'brotli'

/**
 * Size limits a snapshot is read (and, for JSON, written) with: those of the store that
 * will hold the data, so a file cannot carry what `set()` would refuse, and no length
 * field can make a reader buffer more than a real entry needs.
 */
export interface SnapshotLimits {
  /** Largest key, and largest hash field (the store bounds both so), in UTF-8 bytes. @defaultValue {@link DEFAULT_MAX_KEY_BYTES} */
  maxKeyBytes?: number
  /** Largest string, JSON text or byte array, in bytes. @defaultValue {@link DEFAULT_MAX_VALUE_BYTES} */
  maxValueBytes?: number
}

/** Options for {@link SnapshotFormat.read}. */
export type SnapshotReadOptions = SnapshotLimits

/** Options for {@link SnapshotFormat.write}. */
export interface SnapshotWriteOptions extends SnapshotLimits {
  /** Awaited every {@link SnapshotWriteOptions.pauseEvery} entries so the event loop keeps running. */
  pause?: () => Promise<void>
  /** Entries between pauses. @defaultValue 1024 */
  pauseEvery?: number
  /** Compress the whole file (detected on read). @defaultValue none */
  compress?: SnapshotCompression
}

/** What {@link SnapshotFormat.read} reports: the meta plus the file's format version. */
export type SnapshotReadResult = SnapshotMeta & { version: number }

/**
 * A snapshot file format: a streaming writer and a verifying reader.
 *
 * Readers never hand over part of a damaged file: `visit` is only called after the
 * whole file has been read and verified, so when `read` throws, `visit` was never called.
 */
export interface SnapshotFormat {
  /** Format name (`'json'`, `'binary'`, or another implementation's). */
  readonly name: 'json' | 'binary' | (string & {})
  /**
   * Stream `entries` to the open descriptor `fd` at its current offset.
   *
   * Entries are written in iteration order (pass them in key order). Each entry is
   * consumed before the next is pulled, so the iterable may reuse one entry object.
   * Output is flushed about every 64 KiB; no whole-file string or buffer is built.
   * Does not sync or close `fd`.
   *
   * @returns the bytes written to `fd` (after compression).
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when the entries do not number
   *   `meta.count`; `KV_INVALID_VALUE` for a value the format cannot encode; file
   *   system errors as thrown by `fs`.
   */
  write(fs: Fs, fd: number, meta: SnapshotMeta, entries: Iterable<SnapshotEntry>, opts?: SnapshotWriteOptions): Promise<{ bytes: number }>
  /**
   * Read the snapshot at `path` (compression detected), verify it, then call `visit`
   * once per entry in file order.
   *
   * File order is the order the writer was given, except for whole-file-parsed JSON
   * (version 1, the first kvstore format, or a hand-reformatted file), which comes in JavaScript object key
   * order: callers must not assume sorted output. Duplicate keys (possible only in
   * hand-edited JSON) are all visited; the last one should win.
   *
   * Every entry is checked as the store checks its input (see {@link checkKey},
   * {@link checkVersion}, {@link checkExpiresAt}, the limits in `opts`).
   *
   * @throws {@link StoreError} `KV_CORRUPT` naming the path and byte offset when the
   *   file is damaged, not in this format, or holds data outside the limits; `KV_IO`
   *   when it cannot be read; `KV_INVALID_ARGUMENT` for bad `opts`. Errors thrown by
   *   `visit` pass through unchanged.
   */
  read(fs: Fs, path: string, visit: (e: SnapshotEntry) => void, opts?: SnapshotReadOptions): Promise<SnapshotReadResult>
}

/** Entries between `pause()` calls when {@link SnapshotWriteOptions.pauseEvery} is not given. */
export const DEFAULT_PAUSE_EVERY = 1024

/** Output is handed to the file (or compressor) whenever this many bytes are buffered. */
export const FLUSH_BYTES = 64 * 1024

/** Default of {@link SnapshotLimits.maxKeyBytes}: the store's default `maxKeyBytes`. */
export const DEFAULT_MAX_KEY_BYTES = 65_536

/** Default of {@link SnapshotLimits.maxValueBytes}: the store's default `maxValueBytes` (64 MiB). */
export const DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024

/**
 * Largest per-key version and snapshot seq a file may carry.
 *
 * The store continues from `max(version, seq) + 1` and WAL seqs must stay below 2^53, so
 * a file at `Number.MAX_SAFE_INTEGER` would leave a store unable to write at all. 2^32
 * writes of headroom is far beyond anything a real store reaches, and far below anything
 * a damaged or forged number would stay under.
 */
export const MAX_SNAPSHOT_VERSION = Number.MAX_SAFE_INTEGER - 2 ** 32

/** Largest absolute timestamp (ms) a snapshot header may carry: the end of the `Date` range. */
export const MAX_SNAPSHOT_TIMESTAMP = 8_640_000_000_000_000

/** {@link SnapshotLimits} with every default filled in. */
export type ResolvedLimits = Required<SnapshotLimits>

/**
 * `limits` with defaults filled in.
 *
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when a limit is not a positive safe integer.
 */
export function resolveLimits(limits: SnapshotLimits | undefined): ResolvedLimits {
  const maxKeyBytes = limits?.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES
  const maxValueBytes = limits?.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  for (const [name, v] of [
    ['maxKeyBytes', maxKeyBytes],
    ['maxValueBytes', maxValueBytes],
  ] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new StoreError('KV_INVALID_ARGUMENT', `snapshot ${name} must be a positive integer, got ${String(v)}`)
    }
  }
  return { maxKeyBytes, maxValueBytes }
}

// Entry checks shared by the readers. Each returns a reason (for the reader to put in a
// KV_CORRUPT message with the path and offset it knows) or undefined when the field is fine.

/**
 * Why `key` is not a key the store could hold (`validateKey`'s rules), or `undefined`.
 * O(1) unless the key is long enough that its UTF-8 length has to be counted.
 */
export function checkKey(key: string, maxKeyBytes: number): string | undefined {
  if (key.length === 0) return 'empty key'
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key, 'utf8') > maxKeyBytes) return `key longer than ${maxKeyBytes} UTF-8 bytes`
  if (!key.isWellFormed()) return 'key has a lone surrogate'
  return undefined
}

/** Why `v` is not a per-key version (0 = none, else at most {@link MAX_SNAPSHOT_VERSION}), or `undefined`. */
export function checkVersion(v: unknown, what = 'version'): string | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return `bad ${what} ${showValue(v)} (not a non-negative integer)`
  if (v > MAX_SNAPSHOT_VERSION) return `${what} ${v} is above ${MAX_SNAPSHOT_VERSION}, leaving no room for later writes`
  return undefined
}

/** Why `v` is not an expiry time (0 = never, else a safe integer of ms), or `undefined`. */
export function checkExpiresAt(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return `bad expiresAt ${showValue(v)} (not a non-negative integer)`
  return undefined
}

/** Why `v` is not a header timestamp (integer ms inside the `Date` range), or `undefined`. */
export function checkTimestamp(v: number): string | undefined {
  if (!Number.isSafeInteger(v) || Math.abs(v) > MAX_SNAPSHOT_TIMESTAMP) return `bad timestamp ${showValue(v)}`
  return undefined
}

/**
 * A short, safe description of a decoded value for an error message: never deep
 * (`JSON.stringify` of hostile nesting overflows the stack) and never long.
 */
export function showValue(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)
  if (v === null || typeof v !== 'object') return String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}
