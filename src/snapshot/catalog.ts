import { join } from 'node:path'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { SnapshotFormatName } from '../options.js'
import type { SnapshotEntry, SnapshotLimits, SnapshotMeta } from './format.js'
import { pacing } from './pacing.js'
import { formatByName } from './io.js'
import { writeSnapshotFile } from './write-file.js'

/** A snapshot file in a store directory. */
export interface SnapshotFileInfo {
  readonly seq: number
  readonly path: string
  readonly format: SnapshotFormatName
}

const NAME = /^snap-(\d{16})\.(kvs|json)$/
/**
 * Temp file of an interrupted write of a snapshot file (write-file.ts names them
 * `<target>.tmp-<hex>`). Only snapshot targets: nothing else in the directory is ours to
 * delete.
 */
const TEMP_NAME = /^snap-\d{16}\.(kvs|json)\.tmp-[0-9a-f]+$/

/** File name of the snapshot covering `seq`. */
export function snapshotName(seq: number, format: SnapshotFormatName): string {
  return `snap-${String(seq).padStart(16, '0')}.${format === 'json' ? 'json' : 'kvs'}`
}

/**
 * The snapshots of a store directory: `snap-<seq>.kvs` (binary) or `.json`, where
 * `seq` is the last WAL sequence number the snapshot covers.
 */
export class SnapshotCatalog {
  readonly #fs: Fs
  readonly #dir: string
  readonly #mode: number | undefined
  /** The store's limits: the JSON writer refuses a line its reader would refuse. */
  readonly #limits: SnapshotLimits | undefined

  /**
   * @param opts.limits the store's size limits, passed to the format's writer
   * @param opts.mode permission bits of the snapshot files {@link SnapshotCatalog.write}
   *   creates, set exactly; by default new ones get `DEFAULT_FILE_MODE` (see write-file.ts).
   */
  constructor(fs: Fs, dir: string, opts: { mode?: number | undefined; limits?: SnapshotLimits | undefined } = {}) {
    this.#fs = fs
    this.#dir = dir
    this.#mode = opts.mode
    this.#limits = opts.limits
  }

  /** Snapshots, newest (highest seq) first. */
  list(): SnapshotFileInfo[] {
    const out: SnapshotFileInfo[] = []
    for (const name of this.#readdir()) {
      const m = NAME.exec(name)
      if (m === null) continue
      out.push({ seq: Number(m[1]), path: join(this.#dir, name), format: m[2] === 'json' ? 'json' : 'binary' })
    }
    return out.sort((a, b) => b.seq - a.seq)
  }

  /**
   * Delete temp files left by snapshot writes interrupted by a crash: only temp files of
   * snapshot files (`snap-<seq>.kvs.tmp-<hex>`), so no other file (the lock's files, a
   * user's `notes.tmp-old`) is ever touched. Call it only while holding the directory's
   * lock, when no snapshot write can be in progress. Returns their names.
   * @throws {@link StoreError} `KV_IO` when one cannot be removed.
   */
  removeTemps(): string[] {
    const removed: string[] = []
    for (const name of this.#readdir()) {
      if (!TEMP_NAME.test(name)) continue
      const path = join(this.#dir, name)
      if (this.#fs.stat(path)?.isDirectory !== false) continue
      if (this.#unlink(path)) removed.push(name)
    }
    return removed
  }

  /**
   * Write `snap-<meta.seq>` atomically and durably (temp, fsync, rename, directory fsync).
   * @throws {@link StoreError} `KV_IO`; the previous snapshots are untouched.
   */
  async write(
    format: SnapshotFormatName,
    meta: SnapshotMeta,
    entries: Iterable<SnapshotEntry>,
    onProgress?: (done: number) => void,
  ): Promise<{ path: string; bytes: number }> {
    const path = join(this.#dir, snapshotName(meta.seq, format))
    const { bytes } = await writeSnapshotFile(this.#fs, path, formatByName(format), meta, entries, {
      ...pacing(onProgress),
      ...this.#limits,
      ...(this.#mode === undefined ? {} : { mode: this.#mode }),
    })
    return { path, bytes }
  }

  /**
   * Delete snapshots older than `seq` (the durable one at `seq` replaces them) and make
   * the deletions durable.
   * @throws {@link StoreError} `KV_IO` when one cannot be removed or the directory synced.
   */
  async dropOlderThan(seq: number): Promise<void> {
    for (const s of this.list()) if (s.seq < seq) this.#unlink(s.path)
    try {
      await this.#fs.fsyncDir(this.#dir)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot sync directory ${this.#dir}`, { cause: err })
    }
  }

  /** Remove `path`; false when it was already gone. @throws {@link StoreError} `KV_IO`. */
  #unlink(path: string): boolean {
    try {
      this.#fs.unlink(path)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw new StoreError('KV_IO', `cannot remove ${path}`, { cause: err })
    }
  }

  #readdir(): string[] {
    try {
      return this.#fs.readdir(this.#dir)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot list ${this.#dir}`, { cause: err })
    }
  }
}
