import { extname } from 'node:path'
import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import { Memtable, type MemtableReader } from '../memtable.js'
import type { ProgressEvent, SnapshotFormatName } from '../options.js'
import { binarySnapshot, readBinaryColumns, type SnapshotColumns } from './binary.js'
import { detectFileFormat } from './detect.js'
import type { SnapshotEntry, SnapshotFormat, SnapshotReadOptions, SnapshotReadResult } from './format.js'
import { jsonSnapshot } from './json.js'

/** The format a path's extension implies: `.json` → JSON, anything else → binary. */
export function formatFor(path: string): SnapshotFormatName {
  return extname(path).toLowerCase() === '.json' ? 'json' : 'binary'
}

/** The format implementation for a name. */
export function formatByName(name: SnapshotFormatName): SnapshotFormat {
  return name === 'json' ? jsonSnapshot : binarySnapshot
}

/** A snapshot file read into a fresh memtable. */
export interface LoadedSnapshot {
  readonly memtable: Memtable
  /** Sequence number the snapshot covers (0 for version-1 files, the first kvstore format). */
  readonly seq: number
  /** Largest per-key version in the file (entries without one got `seq`). */
  readonly maxVersion: number
  readonly formatVersion: number
}

/**
 * Read a snapshot file (format detected from its first bytes) into a new memtable.
 *
 * Entries without a version (version-1 files, the first kvstore format) get `max(baseSeq, file seq) + 1`,
 * so every stored key has a non-zero version; with `stampVersion` every entry gets that
 * version instead. Unsorted input (JSON v1 object order)
 * is sorted; duplicate keys keep the last occurrence.
 *
 * Pass the store's `maxKeyBytes` / `maxValueBytes` in `opts` (defaults: the store's
 * defaults): a file holding a longer key or value is refused, as `set()` would refuse it.
 *
 * @throws {@link StoreError} `KV_CORRUPT` for an unrecognised or damaged file, or one
 *   holding data outside the limits; `KV_IO` when it cannot be read.
 */
export async function loadSnapshotFile(
  fs: Fs,
  path: string,
  onProgress?: (e: ProgressEvent) => void,
  baseSeq = 0,
  stampVersion?: number,
  opts?: SnapshotReadOptions,
): Promise<LoadedSnapshot> {
  const format = detect(fs, path)
  const { columns, meta } = await readColumnsClassified(format, fs, path, opts, onProgress)
  let { keys, vals, vers, exps } = columns
  const anyExpiry = columns.anyExpiry
  let sorted = true
  for (let i = 1; i < keys.length; i++) {
    if (!((keys[i] as string) > (keys[i - 1] as string))) {
      sorted = false
      break
    }
  }
  if (!sorted) {
    const order = keys.map((_, i) => i).sort((a, b) => {
      const ka = keys[a] as string
      const kb = keys[b] as string
      return ka < kb ? -1 : ka > kb ? 1 : a - b
    })
    const k2: string[] = []
    const v2: unknown[] = []
    const r2: number[] = []
    const e2: number[] = []
    for (const i of order) {
      const k = keys[i] as string
      if (k2.length > 0 && k2[k2.length - 1] === k) {
        // Duplicate: the later occurrence wins (it sorts later because ties keep input order).
        k2.pop()
        v2.pop()
        r2.pop()
        e2.pop()
      }
      k2.push(k)
      v2.push(vals[i])
      r2.push(vers[i] as number)
      e2.push(exps[i] as number)
    }
    keys = k2
    vals = v2
    vers = r2
    exps = e2
  }
  if (stampVersion !== undefined) vers.fill(stampVersion)
  let maxVersion = 0
  for (const v of vers) if (v > maxVersion) maxVersion = v
  const fill = Math.max(baseSeq, meta.seq) + 1
  for (let i = 0; i < vers.length; i++) {
    if (vers[i] === 0) {
      vers[i] = fill
      if (fill > maxVersion) maxVersion = fill
    }
  }
  // Order was checked while reading (and restored by the sort above).
  const memtable = Memtable.fromSorted(keys, vals, vers, anyExpiry ? exps : null, { sortedChecked: true })
  // Collections decoded from the file belong to no view yet: adopt them into this table's epoch.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: an empty table has no collections to adopt; the guard only skips a walk
  if (memtable.size > 0) adoptCollections(memtable)
  return { memtable, seq: meta.seq, maxVersion, formatVersion: meta.version }
}

function adoptCollections(mt: Memtable): void {
  const epoch = mt.epoch
  mt.forEach({}, (_k, v) => {
    if (v instanceof KvList || v instanceof KvHash) v.epoch = epoch
  })
}

/**
 * The file's entries as parallel arrays: the binary format decodes into them directly (no
 * object per entry), any other format through its visitor. Anything a format throws that is
 * not a `StoreError` is classified: an operating-system error (errno-style `code`, e.g.
 * `EIO`) is `KV_IO`, anything else is a decoder tripping over the bytes and so `KV_CORRUPT`.
 * The built-in formats classify their own errors; this keeps a pluggable one from leaking a
 * raw RangeError to the store's caller.
 */
async function readColumnsClassified(
  format: SnapshotFormat,
  fs: Fs,
  path: string,
  opts: SnapshotReadOptions | undefined,
  onProgress: ((e: ProgressEvent) => void) | undefined,
): Promise<{ columns: SnapshotColumns; meta: SnapshotReadResult }> {
  try {
    if (format === binarySnapshot) {
      const progress = onProgress === undefined ? undefined : (done: number) => onProgress({ phase: 'load', done, total: undefined })
      const { columns, result } = await readBinaryColumns(fs, path, opts, progress)
      return { columns, meta: result }
    }
    const columns: SnapshotColumns = { keys: [], vals: [], vers: [], exps: [], anyExpiry: false }
    const visit = (e: SnapshotEntry): void => {
      columns.keys.push(e.key)
      columns.vals.push(e.value)
      columns.vers.push(e.version)
      columns.exps.push(e.expiresAt)
      if (e.expiresAt !== 0) columns.anyExpiry = true
      if (onProgress !== undefined && (columns.keys.length & 0xffff) === 0) onProgress({ phase: 'load', done: columns.keys.length, total: undefined })
    }
    const meta = await format.read(fs, path, visit, opts)
    return { columns, meta }
  } catch (err) {
    throw classify(err, path)
  }
}

function classify(err: unknown, path: string): StoreError {
  if (err instanceof StoreError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return new StoreError('KV_IO', `cannot read snapshot ${path}`, { cause: err })
  return new StoreError('KV_CORRUPT', `${path}: damaged snapshot (${(err as Error)?.message ?? String(err)})`, { cause: err })
}

/** The file's format. detectFileFormat throws only StoreErrors (KV_IO from reading the head). */
function detect(fs: Fs, path: string): SnapshotFormat {
  const format = detectFileFormat(fs, path)
  if (format === undefined) throw new StoreError('KV_CORRUPT', `${path}: not a kvstore snapshot (unknown format)`)
  return format
}

/**
 * Entries of a view for a snapshot writer, skipping keys expired at `now`. `count` is
 * exact (formats write it up front); `done` counts entries handed out so far. The
 * iterator reuses one entry object: writers consume each entry before pulling the next.
 */
export function snapshotEntries(view: MemtableReader, now: number): { count: number; readonly done: number; iterate(): Iterable<SnapshotEntry> } {
  let count = view.size
  // Stryker disable next-line ConditionalExpression,EqualityOperator: with no expiring keys the walk subtracts nothing; the guard only skips it
  if (view.expiringCount > 0) {
    view.forEach({}, (_k, _v, _ver, exp) => {
      if (exp !== 0 && exp <= now) count--
    })
  }
  let done = 0
  return {
    count,
    get done() {
      return done
    },
    *iterate(): Iterable<SnapshotEntry> {
      const entry = { key: '', value: undefined as unknown, expiresAt: 0, version: 0 }
      const cur = view.cursor({})
      while (cur.next()) {
        const exp = cur.expiresAt
        if (exp !== 0 && exp <= now) continue
        entry.key = cur.key
        entry.value = cur.value
        entry.expiresAt = exp
        entry.version = cur.version
        done++
        yield entry
      }
    },
  }
}
