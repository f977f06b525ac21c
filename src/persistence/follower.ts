// A read-only follower of a directory another store writes: the newest snapshot, then
// the WAL after it, then every record the writer appends, applied as it appears. It takes
// no lock and never creates, truncates, renames or deletes a file (docs/FORMAT.md,
// "Followers"), so it cannot slow down or damage the writer.
import { watch as fsWatch, type FSWatcher } from 'node:fs'
import { decodeOps, RECORD_OPS, type Op } from '../codec/ops.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import type { Keyspace } from '../keyspace.js'
import type { MemoryBudget } from '../memory-budget.js'
import { Memtable } from '../memtable.js'
import type { ProgressEvent } from '../options.js'
import { SnapshotCatalog } from '../snapshot/catalog.js'
import type { SnapshotReadOptions } from '../snapshot/format.js'
import { loadSnapshotFile } from '../snapshot/io.js'
import { SegmentFile } from '../wal/reader.js'
import { SegmentTail } from '../wal/tailer.js'
import { listSegments } from '../wal/segments.js'
import type { Persistence, PersistenceStats, PointInTime, SnapshotResult } from './persistence.js'

/** Where a follower stands, from `stats().follower`. */
export interface FollowerStats {
  /** Seq of the last record applied: reads show the writer's state as of this seq. */
  readonly appliedSeq: number
  /** WAL segment being followed, if any. */
  readonly segment: number | undefined
  /** Bytes after the last applied record in the followed segment: written but not yet whole, or unreadable. */
  readonly pendingBytes: number
  /** Milliseconds since the follower last read to the end of the WAL (0 right after a refresh that caught up). */
  readonly lagMs: number
  /** Times the follower rebuilt its state from a snapshot after open (after a writer's `load()`, or falling behind a compaction). */
  readonly resyncs: number
  /** Why the follower cannot go on, while it cannot (damage it read, a snapshot it needs that is missing). It retries on every poll. */
  readonly error: string | undefined
}

/** What {@link FollowerPersistence} needs from the store. */
export interface FollowerPersistenceOptions {
  readonly fs: Fs
  readonly limits: SnapshotReadOptions
  /** Longest wait between two looks at the WAL when no change notification arrives. */
  readonly pollIntervalMs: number
  /** Use `fs.watch` on the directory for prompt notice of appends (real file system only). */
  readonly watchDirectory: boolean
  readonly now: () => number
  readonly onProgress: (e: ProgressEvent) => void
  /** Install a whole new state at `seq` (open, or a resync), in one synchronous step with the records after it. */
  readonly reset: (mt: Memtable, seq: number) => void
  /** Apply the ops of record `seq` (the same path as WAL replay). */
  readonly apply: (ops: Op[], seq: number) => void
  /** Called after a poll applied records or reset the state (for waiters). */
  readonly advanced: (seq: number) => void
}

/** Damage a follower read: kept in `stats().follower.error` and reported to the next read. */
function corrupt(message: string): StoreError {
  return new StoreError('KV_CORRUPT', message)
}

const MAX_RESYNC_ATTEMPTS = 20
/**
 * How long bytes that do not verify may sit at the end of the followed segment before the
 * follower looks past them for damage. A writer's append is visible in pieces only while its
 * `write()` runs; bytes still unverified this much later are a torn tail (the writer crashed:
 * its restart cuts them) or damage (a valid record follows them).
 */
const STUCK_MS = 500

/**
 * Follower mode: `Store.open({ dir, readOnly: true })`.
 *
 * Invariant: the state is always the writer's state as of `appliedSeq` (a snapshot plus
 * whole, verified records in seq order), and it only moves forward, one record or one
 * rebuilt state at a time, each in one synchronous step: a read sees a record (a batch, a
 * transaction) whole or not at all.
 */
export class FollowerPersistence implements Persistence {
  readonly mode = 'dir'
  readonly readOnly = true
  readonly path: string
  readonly failure: Error | undefined = undefined
  readonly wantsCompaction = false
  readonly unsaved = false
  readonly #o: FollowerPersistenceOptions
  readonly #catalog: SnapshotCatalog
  #tail: SegmentTail | undefined
  #applied = 0
  #pendingBytes = 0
  #caughtUpAt = 0
  #resyncs = 0
  #error: string | undefined
  /** The error not yet reported to a read (`takeError`). */
  #unreported: StoreError | undefined
  #needResync = false
  /** Where the followed segment has bytes that do not verify, and since when. */
  #stuck: { segment: number; offset: number; since: number } | undefined
  #opening = true
  #polling: Promise<void> | undefined
  #again = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #watcher: FSWatcher | undefined
  #closed = false

  constructor(path: string, o: FollowerPersistenceOptions) {
    this.path = path
    this.#o = o
    this.#catalog = new SnapshotCatalog(o.fs, path, { limits: o.limits })
  }

  /** Seq of the last record applied. */
  get appliedSeq(): number {
    return this.#applied
  }

  async open(_keyspace: Keyspace, _budget: MemoryBudget): Promise<number> {
    const st = this.#o.fs.stat(this.path)
    if (st === undefined || !st.isDirectory) throw new StoreError('KV_IO', `${this.path} is not a store directory (a follower never creates one)`)
    await this.#resync(true)
    this.#drain()
    if (this.#needResync) await this.#poll()
    this.#opening = false
    this.#startWatching()
    return this.#applied
  }

  log(): Promise<void> {
    throw readOnly()
  }

  flush(): Promise<void> {
    return Promise.resolve()
  }

  save(_point: PointInTime): Promise<SnapshotResult> {
    return Promise.reject(readOnly())
  }

  replaceAll(): Promise<void> {
    return Promise.reject(readOnly())
  }

  /**
   * Look at the WAL now and apply what was appended; resolves with the applied seq.
   * A poll already running is joined, and one more follows it, so every record written
   * before the call is seen.
   */
  refresh(): Promise<number> {
    if (this.#closed) return Promise.resolve(this.#applied)
    this.#again = true
    return this.#kick().then(() => this.#applied)
  }

  /** The error the follower ran into, once: the next read after it rejects with it. */
  takeError(): StoreError | undefined {
    const e = this.#unreported
    this.#unreported = undefined
    return e
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#watcher?.close()
    await this.#polling
    this.#tail?.close()
    this.#tail = undefined
  }

  stats(): PersistenceStats {
    return { mode: 'dir', path: this.path, sync: undefined, walSegment: this.#tail?.segment, walBytes: 0, recovery: undefined }
  }

  followerStats(): FollowerStats {
    return {
      appliedSeq: this.#applied,
      segment: this.#tail?.segment,
      pendingBytes: this.#pendingBytes,
      lagMs: this.#caughtUpAt === 0 ? 0 : Math.max(0, this.#o.now() - this.#caughtUpAt),
      resyncs: this.#resyncs,
      error: this.#error,
    }
  }

  // ------------------------------------------------------------------ polling

  #startWatching(): void {
    if (this.#o.watchDirectory) {
      try {
        // Any change in the directory (an append, a new segment or snapshot) is worth a look.
        this.#watcher = fsWatch(this.path, { persistent: false }, () => this.#notify())
        this.#watcher.on('error', () => {
          this.#watcher?.close()
          this.#watcher = undefined
        })
      } catch {
        this.#watcher = undefined // polling alone still follows, only later
      }
    }
    this.#arm()
  }

  #arm(): void {
    if (this.#closed) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#notify()
    }, this.#o.pollIntervalMs)
    this.#timer.unref?.()
  }

  #notify(): void {
    if (this.#closed) return
    this.#again = true
    void this.#kick()
  }

  /** Run polls until none is asked for; at most one runs at a time. */
  #kick(): Promise<void> {
    if (this.#polling !== undefined) return this.#polling
    this.#polling = (async () => {
      try {
        while (this.#again && !this.#closed) {
          this.#again = false
          await this.#poll()
        }
      } finally {
        this.#polling = undefined
        this.#arm()
      }
    })()
    return this.#polling
  }

  async #poll(): Promise<void> {
    try {
      if (this.#needResync) await this.#resync(false)
      this.#drain()
      if (this.#needResync) await this.#resync(false)
    } catch (err) {
      this.#fail(err)
    }
  }

  #fail(err: unknown): void {
    const e = err instanceof StoreError ? err : new StoreError('KV_CORRUPT', err instanceof Error ? err.message : String(err), { cause: err })
    if (this.#error !== e.message) this.#unreported = e
    this.#error = e.message
  }

  /**
   * Apply every whole record after `appliedSeq`, moving on to later segments as the writer
   * rotates. Synchronous. Sets `#needResync` when the WAL no longer continues from what was
   * applied (a `load()`, a compaction that deleted segments not yet read, a writer that cut
   * records after a failed write).
   */
  #drain(): void {
    const { fs } = this.#o
    for (;;) {
      if (this.#closed) return
      const tail = this.#tail ?? this.#findTail()
      if (tail === undefined) return
      this.#tail = tail
      const before = this.#applied
      const st = this.#pollTail(tail)
      if (st === 'resync') return
      if (this.#applied !== before) this.#o.advanced(this.#applied)
      // More records may follow in a later segment once this one is sealed.
      const next = this.#nextSegment(tail.segment)
      if (next === undefined) {
        this.#caughtUp()
        return
      }
      const opened = SegmentTail.open(fs, this.path, next)
      if (opened === 'pending') {
        this.#caughtUp()
        return
      }
      if (opened === 'missing') continue // deleted between listing and opening: list again
      // The writer finishes a segment before it creates the next: read it to its end once more.
      if (this.#pollTail(tail) === 'resync') {
        opened.close()
        return
      }
      if (opened.header.baseSeq !== this.#applied) {
        opened.close()
        if (opened.header.baseSeq > this.#applied && this.#pendingBytes > 0) {
          throw corrupt(`${tail.path} at offset ${tail.offset}: a sealed segment holds bytes that do not verify (seq ${this.#applied + 1} expected)`)
        }
        this.#needResync = true
        return
      }
      tail.close()
      this.#tail = opened
      this.#error = undefined
    }
  }

  #caughtUp(): void {
    this.#caughtUpAt = this.#o.now()
    if (this.#pendingBytes === 0) this.#error = undefined
  }

  /** Apply the records `tail` has; `'resync'` when it no longer continues the applied state. */
  #pollTail(tail: SegmentTail): 'ok' | 'resync' {
    const applied = this.#applied
    const st = tail.poll((rec) => {
      // A segment starting before the state (the base snapshot covers its first records).
      if (rec.seq <= this.#applied) return
      this.#applyRecord(tail, rec.seq, rec.type, rec.payload, rec.offset)
    })
    if (st.kind === 'caught-up') {
      this.#pendingBytes = st.pendingBytes
      if (st.reason === undefined) this.#stuck = undefined
      else this.#checkStuck(tail)
      return 'ok'
    }
    // The file no longer holds what was read: the writer cut it. Rebuild from what is durable now.
    if (this.#applied !== applied) this.#o.advanced(this.#applied)
    this.#needResync = true
    return 'resync'
  }

  /**
   * Bytes after the last applied record do not verify. At open, or once they stayed so for
   * {@link STUCK_MS}, look past them: a valid record after them makes them damage.
   * @throws {@link StoreError} `KV_CORRUPT` naming the file and offset.
   */
  #checkStuck(tail: SegmentTail): void {
    const now = this.#o.now()
    const s = this.#stuck
    if (s === undefined || s.segment !== tail.segment || s.offset !== tail.offset) {
      this.#stuck = { segment: tail.segment, offset: tail.offset, since: now }
      if (!this.#opening) return
    } else if (now - s.since < STUCK_MS && !this.#opening) {
      return
    }
    const file = SegmentFile.open(this.#o.fs, tail.path)
    try {
      const scan = file.scan(() => undefined, { mode: 'strict', segment: tail.segment })
      if (scan.corruption !== undefined) {
        throw corrupt(`${tail.path} at offset ${scan.corruption.offset}: ${scan.corruption.reason}, with valid records after it (last good seq ${this.#applied})`)
      }
    } finally {
      file.close()
    }
    // A torn tail only: wait for the writer (or its restart, which cuts it). Look again later.
    this.#stuck = { segment: tail.segment, offset: tail.offset, since: now }
  }

  #applyRecord(tail: SegmentTail, seq: number, type: number, payload: Uint8Array, offset: number): void {
    if (seq !== this.#applied + 1) throw corrupt(`${tail.path} at offset ${offset}: sequence gap: expected ${this.#applied + 1}, found ${seq}`)
    if (type !== RECORD_OPS) throw corrupt(`${tail.path} at offset ${offset}: unknown record type ${type}`)
    let ops: Op[]
    try {
      ops = decodeOps(payload)
    } catch (err) {
      throw corrupt(`${tail.path} at offset ${offset}: undecodable record: ${err instanceof Error ? err.message : String(err)}`)
    }
    try {
      this.#o.apply(ops, seq)
    } catch (err) {
      // The state may now hold part of the batch: rebuild it before serving more.
      this.#needResync = true
      throw corrupt(`${tail.path} at offset ${offset}: record ${seq} does not apply: ${err instanceof Error ? err.message : String(err)}`)
    }
    this.#applied = seq
  }

  /** The segment holding the record after `appliedSeq`: the newest whose base seq is at or below it. */
  #findTail(): SegmentTail | undefined {
    const { fs } = this.#o
    let found: SegmentTail | undefined
    for (const n of listSegments(fs, this.path)) {
      const t = SegmentTail.open(fs, this.path, n)
      if (typeof t === 'string') continue
      if (t.header.baseSeq > this.#applied) {
        t.close()
        // Segments exist only after the state: a snapshot the follower has not read covers the gap.
        if (found === undefined) this.#needResync = true
        break
      }
      found?.close()
      found = t
    }
    return found
  }

  #nextSegment(after: number): number | undefined {
    let next: number | undefined
    for (const n of listSegments(this.#o.fs, this.path)) if (n > after && (next === undefined || n < next)) next = n
    return next
  }

  /**
   * Rebuild the state from the newest snapshot the WAL continues, then the records after
   * it, installing both in one synchronous step. At open, the first state; later, only
   * when the WAL no longer continues the applied state.
   */
  async #resync(first: boolean): Promise<void> {
    const { fs } = this.#o
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) return
      let mt: Memtable | undefined
      let seq = 0
      let damaged: string | undefined
      for (const snap of this.#catalog.list()) {
        try {
          const loaded = await loadSnapshotFile(fs, snap.path, first ? this.#o.onProgress : undefined, 0, undefined, this.#o.limits)
          mt = loaded.memtable
          seq = Math.max(snap.seq, loaded.seq)
          break
        } catch (err) {
          const e = err instanceof StoreError ? err : undefined
          // Deleted by a compaction while listed: look again.
          if (isMissing(err)) {
            damaged = undefined
            mt = undefined
            break
          }
          if (e?.code !== 'KV_CORRUPT') throw err
          damaged ??= `${snap.path}: ${e.message}`
        }
      }
      if (this.#closed) return
      const segs = listSegments(fs, this.path)
      // The WAL must continue from the snapshot: some segment starts at or before its seq, or none exists yet.
      let start: SegmentTail | undefined
      let later = false
      for (const n of segs) {
        const t = SegmentTail.open(fs, this.path, n)
        if (typeof t === 'string') continue
        if (t.header.baseSeq > seq) {
          t.close()
          later = true
          break
        }
        start?.close()
        start = t
      }
      if (start === undefined && later) {
        // A load or compaction is writing the snapshot the WAL now starts from: wait for it.
        if (attempt >= MAX_RESYNC_ATTEMPTS) {
          throw new StoreError('KV_CORRUPT', damaged ?? `${this.path}: the WAL starts after seq ${seq}, the newest snapshot that verifies`)
        }
        await delay(Math.min(5 * (attempt + 1), 50))
        continue
      }
      if (!first && mt === undefined && start === undefined) {
        // A writer never leaves a directory it wrote without a snapshot or a segment: files are
        // being replaced (a snapshot deleted while listed), or the directory was emptied.
        if (attempt >= MAX_RESYNC_ATTEMPTS) throw new StoreError('KV_CORRUPT', `${this.path} holds neither a snapshot nor a WAL segment to follow`)
        await delay(5)
        continue
      }
      // One synchronous step from here: the old state is replaced by the new one and the records after it.
      this.#tail?.close()
      this.#tail = start
      this.#applied = seq
      this.#needResync = false
      this.#o.reset(mt ?? new Memtable(), seq)
      if (!first) this.#resyncs++
      try {
        this.#drain()
      } finally {
        this.#o.advanced(this.#applied)
      }
      return
    }
  }
}

function isMissing(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause
  return (err as { code?: unknown } | null)?.code === 'ENOENT' || cause?.code === 'ENOENT'
}

function readOnly(): StoreError {
  return new StoreError('KV_READ_ONLY', 'this store is a read-only follower: write through the store that opened the directory for writing')
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
