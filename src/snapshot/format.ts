// The pluggable snapshot format interface. Implementations: json.ts, binary.ts;
// detect.ts picks one from a file's first bytes.

import type { Fs } from '../fs/fs.js'

/** One key in a snapshot. */
export interface SnapshotEntry {
  key: string
  /** A stored value: string, number, boolean, null, frozen JSON data, `Uint8Array`, `KvList` or `KvHash`. */
  value: unknown
  /** Absolute expiry time in ms since the epoch; 0 = never. */
  expiresAt: number
  /** Per-key version; 0 = unknown (seed version-1 files carry none). */
  version: number
}

/** What a snapshot says about itself. */
export interface SnapshotMeta {
  /** Last WAL sequence number the snapshot covers; 0 for seed version-1 files. */
  seq: number
  /** When it was written, ms since the epoch (integer ms round-trip exactly). */
  timestamp: number
  /** Number of entries. */
  count: number
}

/** Compression wrapped around a whole snapshot file. */
export type SnapshotCompression = 'gzip' | 'brotli'

/** Options for {@link SnapshotFormat.write}. */
export interface SnapshotWriteOptions {
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
   * (seed version 1, or a hand-reformatted file), which comes in JavaScript object key
   * order: callers must not assume sorted output. Duplicate keys (possible only in
   * hand-edited JSON) are all visited; the last one should win.
   *
   * @throws {@link StoreError} `KV_CORRUPT` naming the path and byte offset when the
   *   file is damaged or not in this format; `KV_IO` when it cannot be read.
   */
  read(fs: Fs, path: string, visit: (e: SnapshotEntry) => void): Promise<SnapshotReadResult>
}

/** Entries between `pause()` calls when {@link SnapshotWriteOptions.pauseEvery} is not given. */
export const DEFAULT_PAUSE_EVERY = 1024

/** Output is handed to the file (or compressor) whenever this many bytes are buffered. */
export const FLUSH_BYTES = 64 * 1024
