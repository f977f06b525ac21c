import { basename, dirname } from 'node:path'
import type { Op } from '../codec/ops.js'
import { DirLock } from '../dir-lock.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { Keyspace } from '../keyspace.js'
import type { MemoryBudget } from '../memory-budget.js'
import type { Memtable } from '../memtable.js'
import type { ProgressEvent } from '../options.js'
import { formatFor, loadSnapshotFile } from '../snapshot/io.js'
import type { SnapshotReadOptions } from '../snapshot/format.js'
import { removeStaleTemps } from '../snapshot/write-file.js'
import type { Persistence, PersistenceStats, PointInTime, SnapshotResult } from './persistence.js'
import { writePointInTime } from './write-point.js'

const RESOLVED: Promise<void> = Promise.resolve()

/** What {@link FilePersistence} needs from the store. */
export interface FilePersistenceOptions {
  readonly fs: Fs
  readonly now: () => number
  readonly onProgress: (e: ProgressEvent) => void
  readonly limits: SnapshotReadOptions
  readonly fileMode: number | undefined
}

/**
 * Snapshot-file mode: the whole state is one snapshot file, rewritten by `save` (the
 * periodic snapshot and `close`). Writes are in memory only until then, so a crash loses
 * the writes since the last save; a failed save leaves them unsaved, to be retried.
 */
export class FilePersistence implements Persistence {
  readonly mode = 'file'
  readonly path: string
  readonly failure = undefined
  readonly wantsCompaction = false
  readonly #o: FilePersistenceOptions
  /** Seq of the newest record logged, and of the newest save that succeeded. */
  #loggedSeq = 0
  #savedSeq = 0
  /** `<file>.lock` beside the file: one store per file, across processes and module copies. */
  #lock: DirLock | undefined

  constructor(path: string, o: FilePersistenceOptions) {
    this.path = path
    this.#o = o
  }

  get unsaved(): boolean {
    return this.#loggedSeq !== this.#savedSeq
  }

  async open(keyspace: Keyspace, budget: MemoryBudget): Promise<number> {
    const fs = this.#o.fs
    // Two links to one file share one lock: lock the real file's name.
    let real = this.path
    try {
      if (fs.stat(this.path) !== undefined && fs.realpath !== undefined) real = fs.realpath(this.path)
    } catch {
      // A dangling link or a race with a delete: lock the name as given.
    }
    this.#lock = DirLock.acquire(fs, dirname(real), { name: `${basename(real)}.lock` })
    try {
      // A save interrupted by a crash leaves its temp file beside the store's file; under
      // the lock no other writer can be making one.
      removeStaleTemps(fs, this.path)
      if (fs.stat(this.path) === undefined) return 0
      const loaded = await loadSnapshotFile(fs, this.path, this.#o.onProgress, 0, undefined, this.#o.limits)
      keyspace.install(loaded.memtable)
      budget.replayRestart()
      budget.replaySettle()
      this.#loggedSeq = this.#savedSeq = Math.max(loaded.seq, loaded.maxVersion)
      return this.#loggedSeq
    } catch (err) {
      this.#lock.release()
      throw err
    }
  }

  log(seq: number, _ops: readonly Op[]): Promise<void> {
    this.#loggedSeq = seq
    return RESOLVED
  }

  flush(): Promise<void> {
    return RESOLVED
  }

  /** A failed save leaves the writes unsaved, so `close` and the periodic snapshot retry. */
  async save(point: PointInTime): Promise<SnapshotResult> {
    if (point.seq < this.#savedSeq) {
      throw new StoreError('KV_INVALID_ARGUMENT', `refusing to save seq ${point.seq} over the newer saved seq ${this.#savedSeq}`)
    }
    const result = await this.#write(point)
    this.#savedSeq = Math.max(this.#savedSeq, point.seq)
    return result
  }

  /** The file is written before the new contents are installed: a failed write changes nothing. */
  async replaceAll(mt: Memtable, seq: number, install: () => void): Promise<void> {
    await this.#write({ view: mt.view(), seq })
    install()
    this.#loggedSeq = this.#savedSeq = seq
  }

  async close(finalPoint: () => PointInTime): Promise<void> {
    try {
      if (this.unsaved) await this.save(finalPoint())
    } finally {
      this.#lock?.release()
    }
  }

  stats(): PersistenceStats {
    return { mode: 'file', path: this.path, sync: undefined, walSegment: undefined, walBytes: 0, recovery: undefined }
  }

  #write(point: PointInTime): Promise<SnapshotResult> {
    return writePointInTime(this.#o.fs, this.path, point, {
      format: formatFor(this.path),
      now: this.#o.now(),
      onProgress: (done, total) => this.#o.onProgress({ phase: 'snapshot', done, total }),
      mode: this.#o.fileMode,
      limits: this.#o.limits,
    })
  }
}
