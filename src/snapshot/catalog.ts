import { join } from 'node:path'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { SnapshotFormatName } from '../options.js'
import type { SnapshotEntry, SnapshotMeta } from './format.js'
import { formatByName } from './io.js'
import { writeSnapshotFile } from './write-file.js'

/** A snapshot file in a store directory. */
export interface SnapshotFileInfo {
  readonly seq: number
  readonly path: string
  readonly format: SnapshotFormatName
}

const NAME = /^snap-(\d{16})\.(kvs|json)$/
/** Marks temp files of interrupted snapshot writes (see write-file.ts). */
const TEMP_MARK = '.tmp-'

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

  constructor(fs: Fs, dir: string) {
    this.#fs = fs
    this.#dir = dir
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

  /** Delete temp files left by snapshot writes interrupted by a crash. Returns their names. */
  removeTemps(): string[] {
    const removed: string[] = []
    for (const name of this.#readdir()) {
      if (!name.includes(TEMP_MARK)) continue
      this.#fs.unlink(join(this.#dir, name))
      removed.push(name)
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
    let done = 0
    let last = Date.now()
    const { bytes } = await writeSnapshotFile(this.#fs, path, formatByName(format), meta, entries, {
      pauseEvery: 4096,
      pause: () =>
        new Promise<void>((resolve) => {
          done += 4096
          if (onProgress !== undefined && Date.now() - last > 100) {
            last = Date.now()
            onProgress(done)
          }
          setImmediate(resolve)
        }),
    })
    return { path, bytes }
  }

  /**
   * Delete snapshots older than `seq` (the durable one at `seq` replaces them) and make
   * the deletions durable.
   */
  async dropOlderThan(seq: number): Promise<void> {
    for (const s of this.list()) if (s.seq < seq) this.#fs.unlink(s.path)
    await this.#fs.fsyncDir(this.#dir)
  }

  #readdir(): string[] {
    try {
      return this.#fs.readdir(this.#dir)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot list ${this.#dir}`, { cause: err })
    }
  }
}
