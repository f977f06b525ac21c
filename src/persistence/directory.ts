import { dirname } from 'node:path'
import { encodeOps, RECORD_OPS, type Op } from '../codec/ops.js'
import { ByteWriter } from '../codec/bytes.js'
import { DirLock } from '../dir-lock.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { Keyspace } from '../keyspace.js'
import type { MemoryBudget } from '../memory-budget.js'
import type { Memtable } from '../memtable.js'
import type { ProgressEvent, RecoveryMode, SnapshotFormatName, SyncPolicy } from '../options.js'
import { recoverDirectory, type RecoveryStats } from '../recovery.js'
import type { SnapshotCatalog } from '../snapshot/catalog.js'
import type { SnapshotReadOptions } from '../snapshot/format.js'
import { snapshotEntries } from '../snapshot/io.js'
import { MAX_PAYLOAD_BYTES } from '../wal/format.js'
import { removeSegmentsBelow } from '../wal/segments.js'
import type { WalWriter } from '../wal/writer.js'
import type { Persistence, PersistenceStats, PointInTime, SnapshotResult } from './persistence.js'

/** What {@link DirectoryPersistence} needs from the store. */
export interface DirectoryPersistenceOptions {
  readonly fs: Fs
  readonly sync: SyncPolicy
  readonly syncIntervalMs: number | undefined
  readonly recovery: RecoveryMode
  readonly snapshotFormat: SnapshotFormatName
  /** Compact once the WAL grew this much since the last compaction; 0 = never by size. */
  readonly compactThresholdBytes: number
  readonly now: () => number
  readonly onProgress: (e: ProgressEvent) => void
  readonly limits: SnapshotReadOptions
  readonly fileMode: number | undefined
  readonly dirMode: number | undefined
}

/**
 * Directory mode: a WAL with group commit plus snapshots, under an exclusive lock.
 *
 * Invariant: WAL order == apply order == seq order, and the newest durable snapshot plus
 * the WAL records after its seq are exactly the acknowledged state. Compaction rotates the
 * WAL in the same synchronous step as the store takes its view, so every later record goes
 * to the new segment and no record is both in the snapshot and replayed after it.
 */
export class DirectoryPersistence implements Persistence {
  readonly mode = 'dir'
  readonly path: string
  readonly #o: DirectoryPersistenceOptions
  readonly #encoder = new ByteWriter()
  #lock: DirLock | undefined
  #wal: WalWriter | undefined
  #snapshots: SnapshotCatalog | undefined
  #recovery: RecoveryStats | undefined
  /** A multi-step operation failed half-way (a load after the WAL rotated): writes are refused. */
  #failure: StoreError | undefined
  #compacting = false
  /** Seq of the newest record logged, and of the newest snapshot that succeeded. */
  #loggedSeq = 0
  #savedSeq = 0

  constructor(path: string, o: DirectoryPersistenceOptions) {
    this.path = path
    this.#o = o
  }

  get failure(): Error | undefined {
    return this.#failure ?? this.#wal?.failure
  }

  get wantsCompaction(): boolean {
    const t = this.#o.compactThresholdBytes
    return !this.#compacting && t > 0 && this.#wal !== undefined && this.#wal.bytesSinceRotate >= t
  }

  get unsaved(): boolean {
    return this.#loggedSeq !== this.#savedSeq
  }

  async open(keyspace: Keyspace, budget: MemoryBudget): Promise<number> {
    const { fs } = this.#o
    const dir = this.path
    let existed
    try {
      existed = fs.stat(dir)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot open directory ${dir}`, { cause: err })
    }
    if (existed !== undefined && !existed.isDirectory) throw new StoreError('KV_IO', `${dir} exists and is not a directory`)
    try {
      if (this.#o.dirMode === undefined) fs.mkdir(dir)
      else fs.mkdir(dir, this.#o.dirMode)
      // A new directory's own entry must be durable too, or power loss can lose the whole store.
      if (existed === undefined) await fs.fsyncDir(dirname(dir))
    } catch (err) {
      throw new StoreError('KV_IO', `cannot create directory ${dir}`, { cause: err })
    }
    this.#lock = DirLock.acquire(fs, dir)
    try {
      const rec = await recoverDirectory({
        fs,
        dir,
        mode: this.#o.recovery,
        sync: this.#o.sync,
        ...(this.#o.syncIntervalMs === undefined ? {} : { syncIntervalMs: this.#o.syncIntervalMs }),
        limits: this.#o.limits,
        ...(this.#o.fileMode === undefined ? {} : { fileMode: this.#o.fileMode }),
        onProgress: this.#o.onProgress,
        loadSnapshot: (mt) => {
          keyspace.install(mt)
          budget.replayRestart()
          budget.replaySettle()
        },
        applyOps: (ops, seq) => {
          for (const op of ops) budget.replayApply(op, seq)
          budget.replaySettle()
        },
      })
      this.#wal = rec.writer
      this.#snapshots = rec.snapshots
      this.#recovery = rec.stats
      keyspace.purgeExpired(Infinity)
      this.#loggedSeq = this.#savedSeq = rec.lastSeq
      return rec.lastSeq
    } catch (err) {
      this.#lock.release()
      throw err
    }
  }

  log(seq: number, ops: readonly Op[]): Promise<void> {
    const w = this.#encoder
    w.reset()
    encodeOps(ops, w)
    const payload = w.finish()
    // maxBatchBytes bounds the estimate; this bounds the exact encoding, before anything is applied.
    if (payload.length > MAX_PAYLOAD_BYTES) {
      throw new StoreError('KV_BATCH_TOO_LARGE', `record of ${payload.length} bytes exceeds the largest WAL record (${MAX_PAYLOAD_BYTES})`)
    }
    this.#loggedSeq = seq
    return (this.#wal as WalWriter).append(seq, RECORD_OPS, payload)
  }

  flush(): Promise<void> {
    return (this.#wal as WalWriter).flush()
  }

  /** Compaction: rotate now (synchronously with the caller's view), snapshot, drop what it covers. */
  async save(point: PointInTime): Promise<SnapshotResult> {
    const wal = this.#wal as WalWriter
    const rotated = wal.rotate()
    this.#compacting = true
    const started = performance.now()
    try {
      const segment = await rotated
      const entries = snapshotEntries(point.view, this.#o.now())
      const { path, bytes } = await (this.#snapshots as SnapshotCatalog).write(
        this.#o.snapshotFormat,
        { seq: point.seq, timestamp: this.#o.now(), count: entries.count },
        entries.iterate(),
        (done) => this.#o.onProgress({ phase: 'compact', done, total: entries.count }),
      )
      await this.#dropCovered(point.seq, segment)
      this.#savedSeq = Math.max(this.#savedSeq, point.seq)
      return { path, format: this.#o.snapshotFormat, entries: entries.done, bytes, seq: point.seq, timeMs: performance.now() - started }
    } finally {
      this.#compacting = false
    }
  }

  /**
   * A new WAL segment starting after `seq`, then snapshot `seq` of `mt`, then install and
   * drop what it replaces. Until the snapshot is durable a crash leaves the old state
   * (recovery discards the empty segment).
   */
  async replaceAll(mt: Memtable, seq: number, install: () => void): Promise<void> {
    const wal = this.#wal as WalWriter
    const segment = await wal.rotate(seq)
    try {
      const entries = snapshotEntries(mt.view(), this.#o.now())
      await (this.#snapshots as SnapshotCatalog).write(this.#o.snapshotFormat, { seq, timestamp: this.#o.now(), count: entries.count }, entries.iterate())
    } catch (err) {
      // The WAL now continues after `seq` but the base snapshot at `seq` is missing: memory
      // and files no longer agree on what comes next. Refuse writes until reopen, which
      // recovers the old state (the new segment is empty).
      this.#failure = new StoreError('KV_IO', 'load failed after the WAL was rotated; reopen the store to recover', { cause: err })
      throw err
    }
    install()
    this.#loggedSeq = this.#savedSeq = seq
    await this.#dropCovered(seq, segment)
  }

  async close(): Promise<void> {
    try {
      await this.#wal?.close()
    } finally {
      this.#lock?.release()
    }
  }

  stats(): PersistenceStats {
    return {
      mode: 'dir',
      path: this.path,
      sync: this.#o.sync,
      walSegment: this.#wal?.segment,
      walBytes: this.#wal?.sizeBytes ?? 0,
      recovery: this.#recovery,
    }
  }

  /** Delete snapshots older than `seq` and WAL segments before `segment`; fsync the directory. */
  async #dropCovered(seq: number, segment: number): Promise<void> {
    removeSegmentsBelow(this.#o.fs, this.path, segment)
    await (this.#snapshots as SnapshotCatalog).dropOlderThan(seq)
  }
}
