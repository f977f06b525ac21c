// Snapshots, loads and compactions: the operations that write whole files. They are
// serialised with each other (never two at once) and take copy-on-write views, so
// writers keep going while they run; only `load` holds the exclusive lock.
import { resolve as resolvePath } from 'node:path'
import type { CommitFunnel } from './commit.js'
import type { Fs } from './fs/fs.js'
import type { Gate } from './gate.js'
import type { Keyspace } from './keyspace.js'
import type { Limits } from './limits.js'
import type { ProgressEvent, SnapshotFormatName } from './options.js'
import type { Persistence, PointInTime, SnapshotResult } from './persistence/persistence.js'
import { writePointInTime } from './persistence/write-point.js'
import { formatFor, loadSnapshotFile } from './snapshot/io.js'
import type { ChangeHub } from './watch.js'

/** What {@link Maintenance} works with. */
export interface MaintenanceParts {
  readonly fs: Fs
  readonly persist: Persistence
  readonly ks: Keyspace
  readonly funnel: CommitFunnel
  readonly gate: Gate
  readonly hub: ChangeHub
  readonly limits: Limits
  /** Permission bits for snapshot copies (undefined: the default). */
  readonly fileMode: number | undefined
  readonly progress: (e: ProgressEvent) => void
  /** Throws when the store is closed or writes are refused. */
  readonly checkWritable: () => void
  /** False once the store is closing: nothing new is started. */
  readonly running: () => boolean
}

/** A store's file-writing operations and the timer that runs them periodically. */
export class Maintenance {
  readonly #p: MaintenanceParts
  #timer: NodeJS.Timeout | undefined
  #compactQueued = false
  snapshots = 0
  compactions = 0

  constructor(parts: MaintenanceParts) {
    this.#p = parts
  }

  /** The state as of now: a copy-on-write view and the last seq it holds. */
  pointInTime(): PointInTime {
    return { view: this.#p.ks.table.view(), seq: this.#p.funnel.seq }
  }

  /** Save (file mode) or compact (dir mode) every `intervalMs` when something is unsaved. Unref'd. */
  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.#p.persist.mode === 'memory') return
    this.#timer = setInterval(() => {
      if (!this.#p.running() || !this.#p.persist.unsaved) return
      // A failure is retried next period; a WAL failure already poisons writes.
      this.#p.gate.serial(() => this.#save()).catch(() => undefined)
    }, intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /**
   * Write `point` to `path` (format and compression as given), or, when `path` is the
   * store's own file in file mode with no format asked, save the store.
   */
  async snapshot(path: string, point: () => PointInTime, format?: SnapshotFormatName, compress?: 'gzip' | 'brotli'): Promise<SnapshotResult> {
    const { persist, gate, fs } = this.#p
    const abs = resolvePath(path)
    const own = persist.mode === 'file' && abs === persist.path && format === undefined && compress === undefined
    // Saving the store's own file takes its view when it runs, never earlier: a save queued
    // behind another must not overwrite newer contents with older ones.
    if (own) return this.compact()
    const taken = point()
    const result = await gate.serial(() =>
      writePointInTime(fs, abs, taken, {
            format: format ?? formatFor(abs),
            compress,
            now: this.#p.limits.clock.now(),
            onProgress: (done, total) => this.#p.progress({ phase: 'snapshot', done, total }),
            mode: this.#p.fileMode,
            limits: { maxKeyBytes: this.#p.limits.maxKeyBytes, maxValueBytes: this.#p.limits.maxValueBytes },
          }),
    )
    this.snapshots++
    return result
  }

  /** Compact (dir mode) or save (file mode), after whatever maintenance is queued. */
  compact(): Promise<SnapshotResult> {
    return this.#p.gate.serial(() => this.#save())
  }

  /** The log grew past the compaction threshold: compact once, after the current call. */
  compactSoon(): void {
    if (this.#compactQueued) return
    this.#compactQueued = true
    // After the current call has applied its op (views must include it), not inside it.
    queueMicrotask(() => {
      if (!this.#p.running()) {
        this.#compactQueued = false
        return
      }
      this.compact()
        // A failed compaction leaves the old snapshot and WAL in place; a WAL failure (if
        // that was the cause) already poisons writes.
        .catch(() => undefined)
        .finally(() => {
          this.#compactQueued = false
        })
    })
  }

  /**
   * Replace the whole contents with the snapshot file at `path`, under the exclusive lock.
   * Versions stay monotonic; into a store never written the file's versions are kept.
   */
  load(path: string): Promise<{ entries: number; timeMs: number }> {
    const { gate, funnel, ks, persist, limits, hub } = this.#p
    const abs = resolvePath(path)
    return gate.serial(() =>
      gate.exclusive(async () => {
        this.#p.checkWritable()
        const started = performance.now()
        const fresh = funnel.seq === 0 && ks.table.size === 0
        const stamp = fresh ? undefined : funnel.seq + 1
        const bounds = { maxKeyBytes: limits.maxKeyBytes, maxValueBytes: limits.maxValueBytes }
        const loaded = await loadSnapshotFile(this.#p.fs, abs, (e) => this.#p.progress({ ...e, phase: 'load' }), funnel.seq, stamp, bounds)
        const seq = Math.max(funnel.seq + 1, loaded.maxVersion)
        await persist.replaceAll(loaded.memtable, seq, () => {
          funnel.seq = seq
          ks.install(loaded.memtable)
        })
        hub.publish({ type: 'clear', key: '', version: seq })
        return { entries: loaded.memtable.size, timeMs: performance.now() - started }
      }),
    )
  }

  #save(): Promise<SnapshotResult> {
    this.#p.checkWritable()
    // The view, the seq and (in dir mode) the WAL rotation inside save are taken in one
    // synchronous step: the view holds exactly the records up to the seq.
    return this.#p.persist.save(this.pointInTime()).then((result) => {
      if (this.#p.persist.mode === 'dir') this.compactions++
      else this.snapshots++
      return result
    })
  }
}
