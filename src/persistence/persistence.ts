// The seam between a store and where its state lives between runs. Memory, directory
// (WAL + snapshots) and snapshot-file modes are three implementations of it, so the store
// itself never branches on its mode.
import type { Op } from '../codec/ops.js'
import type { Keyspace } from '../keyspace.js'
import type { MemoryBudget } from '../memory-budget.js'
import type { Memtable, MemtableReader } from '../memtable.js'
import type { SnapshotFormatName, SyncPolicy } from '../options.js'
import type { RecoveryStats } from '../recovery.js'

/** What a snapshot captures: a copy-on-write view and the last seq it holds. */
export interface PointInTime {
  readonly view: MemtableReader
  readonly seq: number
}

/** What a snapshot wrote, from `Store.snapshot` and `Store.compact`. */
export interface SnapshotResult {
  readonly path: string
  readonly format: SnapshotFormatName
  readonly entries: number
  readonly bytes: number
  readonly timeMs: number
  /** Last sequence number the snapshot covers. */
  readonly seq: number
}

/** The persistence part of `Store.stats()`. */
export interface PersistenceStats {
  readonly mode: 'memory' | 'dir' | 'file'
  readonly path: string | undefined
  readonly sync: SyncPolicy | undefined
  readonly walSegment: number | undefined
  readonly walBytes: number
  readonly recovery: RecoveryStats | undefined
}

/**
 * Where a store's state lives between runs.
 *
 * Contract: `log` is called once per committed record, in seq order, synchronously
 * before the ops are applied in memory. An I/O failure is reported by the promise and by
 * `failure`, and poisons every later write; `log` throws only to refuse a record outright
 * (`KV_BATCH_TOO_LARGE`), before anything is written or applied. Maintenance calls (`save`,
 * `compact`, `replaceAll`) are serialised by the store, never two at once.
 */
export interface Persistence {
  readonly mode: 'memory' | 'dir' | 'file'
  /** Absolute path of the directory or file; `undefined` in memory. */
  readonly path: string | undefined
  /** Set once a write failed: writes are refused until reopen. */
  readonly failure: Error | undefined
  /** True when the log has grown enough that the store should compact soon. */
  readonly wantsCompaction: boolean
  /** True when writes were made since the last save (file mode) or compaction (dir mode). */
  readonly unsaved: boolean

  /**
   * Fill `keyspace` from disk (snapshot, then WAL replay). Resolves with the last seq. Replayed
   * ops go through `budget` (`replayApply`, `replaySettle` after each record or snapshot,
   * `replayRestart` when replay starts over), which keeps the memory budget as it goes.
   */
  open(keyspace: Keyspace, budget: MemoryBudget): Promise<number>
  /** Log `ops` as record `seq`; the promise settles when the record is durable under the sync policy. */
  log(seq: number, ops: readonly Op[]): Promise<void>
  /**
   * Make every record logged so far durable, whatever the sync policy: the WAL is written and
   * datasynced (dir mode). Memory and file mode resolve at once (file mode is made durable by
   * `save`). Rejects like `log` when a write failed.
   */
  flush(): Promise<void>
  /**
   * Write the store's own snapshot of `point` (file mode: the file; dir mode: a compaction,
   * rotating the WAL synchronously at the call). Memory mode refuses.
   */
  save(point: PointInTime): Promise<SnapshotResult>
  /**
   * Make `mt` the durable contents at `seq` (load), calling `install` to put it in memory
   * at the point where memory and disk agree.
   */
  replaceAll(mt: Memtable, seq: number, install: () => void): Promise<void>
  /** Flush, fsync and release the files (file mode: save first when unsaved). */
  close(finalPoint: () => PointInTime): Promise<void>
  stats(): PersistenceStats
}
