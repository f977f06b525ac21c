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
  /** Install a whole new state at `seq` (open, or a rebuild from a snapshot). */
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

/** Where a follower reads: the segment it follows and the last seq applied from the WAL. */
interface Cursor {
  tail: SegmentTail | undefined
  applied: number
  /** Bytes after the last applied record in `tail`: written but not whole yet, or unreadable. */
  pendingBytes: number
}

/**
 * Why a drain stopped: every whole record applied (`'caught-up'`); it applied its share of
 * records and more may be there (`'more'`: give the event loop a turn, then go on); the WAL
 * goes on only after a gap a snapshot covers (`'rebuild'`: worth it once a newer snapshot
 * exists); the files no longer hold what was applied, because the writer cut records
 * (`'reset'`: rebuild from what is there, even if that is less).
 */
type DrainEnd = 'caught-up' | 'more' | 'rebuild' | 'reset'

/** Records applied before a poll gives the event loop a turn: a backlog never blocks readers for long. */
const RECORDS_PER_TURN = 1000

/** Directory entries whose changes tell a follower nothing: snapshot temp files being written, the lock. */
const QUIET_NAME = /\.tmp-|^LOCK/

/** A record that verified and decoded but does not apply to the state: the state may hold part of it. */
class ApplyFailure extends StoreError {}

/**
 * Follower mode: `Store.open({ dir, readOnly: true })`.
 *
 * Invariant: the state is always the writer's state as of `appliedSeq` (a snapshot plus
 * whole, verified records in seq order). It changes one record at a time, or to a whole
 * snapshot at a later seq (or, when the writer cut records, an earlier one): a read sees a
 * record (a batch, a transaction) whole or not at all. Watchers hear each record applied,
 * and a `clear` for each snapshot installed after open.
 */
export class FollowerPersistence implements Persistence {
  readonly mode = 'dir'
  readonly path: string
  readonly failure: Error | undefined = undefined
  readonly wantsCompaction = false
  readonly unsaved = false
  readonly #o: FollowerPersistenceOptions
  readonly #catalog: SnapshotCatalog
  #cur: Cursor = { tail: undefined, applied: 0, pendingBytes: 0 }
  #caughtUpAt = 0
  #resyncs = 0
  #error: string | undefined
  /** The error not yet reported to a call (`takeError`). */
  #unreported: StoreError | undefined
  /** A rebuild the last drain asked for. */
  #need: 'rebuild' | 'reset' | undefined
  /** Where the followed segment has bytes that do not verify, since when, and whether a scan already found a valid record after them. */
  #stuck: { segment: number; offset: number; since: number; suspect: boolean } | undefined
  #opening = true
  #polling: Promise<void> | undefined
  #again = false
  #timer: ReturnType<typeof setTimeout> | undefined
  #watcher: FSWatcher | undefined
  /** The directory may have new segments or snapshots: list it on the next drain. */
  #listingStale = true
  #closed = false

  constructor(path: string, o: FollowerPersistenceOptions) {
    this.path = path
    this.#o = o
    this.#catalog = new SnapshotCatalog(o.fs, path, { limits: o.limits })
  }

  /** Seq of the last record applied. */
  get appliedSeq(): number {
    return this.#cur.applied
  }

  async open(_keyspace: Keyspace, _budget: MemoryBudget): Promise<number> {
    const st = this.#o.fs.stat(this.path)
    if (st === undefined || !st.isDirectory) throw new StoreError('KV_IO', `${this.path} is not a store directory (a follower never creates one)`)
    await this.#rebuild(true)
    await this.#catchUp()
    this.#opening = false
    this.#startWatching()
    return this.#cur.applied
  }

  log(): Promise<void> {
    throw readOnlyError()
  }

  flush(): Promise<void> {
    return Promise.resolve()
  }

  save(_point: PointInTime): Promise<SnapshotResult> {
    return Promise.reject(readOnlyError())
  }

  replaceAll(): Promise<void> {
    return Promise.reject(readOnlyError())
  }

  /**
   * Look at the WAL now and apply what was appended; resolves with the applied seq.
   * A poll already running is joined, and one more follows it, so every record written
   * before the call is seen.
   */
  refresh(): Promise<number> {
    if (this.#closed) return Promise.resolve(this.#cur.applied)
    this.#again = true
    this.#listingStale = true
    return this.#kick().then(() => this.#cur.applied)
  }

  /** The error the follower ran into, once: the next call after it rejects with it. */
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
    this.#cur.tail?.close()
    this.#cur.tail = undefined
  }

  stats(): PersistenceStats {
    return { mode: 'dir', path: this.path, sync: undefined, walSegment: this.#cur.tail?.segment, walBytes: 0, recovery: undefined }
  }

  followerStats(): FollowerStats {
    return {
      appliedSeq: this.#cur.applied,
      segment: this.#cur.tail?.segment,
      pendingBytes: this.#cur.pendingBytes,
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
        this.#watcher = fsWatch(this.path, { persistent: false }, (_event, name) => {
          if (typeof name === 'string' && QUIET_NAME.test(name)) return
          // Appends to the followed segment need no listing; anything else may be a new segment or snapshot.
          if (typeof name !== 'string' || name !== this.#cur.tail?.path.slice(this.path.length + 1)) this.#listingStale = true
          this.#notify()
        })
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
      this.#listingStale = true
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
      await this.#catchUp()
    } catch (err) {
      if (err instanceof ApplyFailure) this.#need = 'reset'
      this.#fail(err)
    }
  }

  /** Apply every record there is, rebuilding from a snapshot where the WAL asks for it. */
  async #catchUp(): Promise<void> {
    if (this.#need !== undefined) {
      await this.#rebuild(false)
      if (this.#need !== undefined) return // still waiting for the snapshot that covers the gap
    }
    for (;;) {
      if (this.#closed) return
      const cur = this.#cur
      const before = cur.applied
      let end: DrainEnd
      try {
        end = this.#drain(cur, this.#o.apply)
      } finally {
        if (cur.applied !== before) this.#o.advanced(cur.applied)
      }
      if (end === 'caught-up') {
        this.#caughtUp()
        return
      }
      if (end === 'more') {
        await new Promise<void>((resolve) => setImmediate(resolve))
        continue
      }
      this.#need = end
      await this.#rebuild(false)
      if (this.#need !== undefined) return
    }
  }

  #fail(err: unknown): void {
    const e = err instanceof StoreError ? err : new StoreError('KV_CORRUPT', err instanceof Error ? err.message : String(err), { cause: err })
    if (this.#error !== e.message) this.#unreported = e
    this.#error = e.message
  }

  #caughtUp(): void {
    this.#caughtUpAt = this.#o.now()
    if (this.#cur.pendingBytes === 0) this.#error = undefined
  }

  /**
   * Apply to `apply` every whole record after `cur.applied`, moving on to later segments as
   * the writer rotates. Synchronous.
   * @throws {@link StoreError} `KV_CORRUPT` for damage; `ApplyFailure` when a record does not apply.
   */
  #drain(cur: Cursor, apply: (ops: Op[], seq: number) => void): DrainEnd {
    const { fs } = this.#o
    const start = cur.applied
    for (;;) {
      if (this.#closed) return 'caught-up'
      if (cur.tail === undefined) {
        const found = this.#segmentFor(cur.applied)
        if (found === 'none') return 'caught-up'
        if (found === 'gap') return 'rebuild'
        cur.tail = found
      }
      const tail = cur.tail
      if (this.#pollTail(cur, tail, apply, RECORDS_PER_TURN - (cur.applied - start)) === 'reset') return 'reset'
      if (cur.applied - start >= RECORDS_PER_TURN) return 'more'
      // More records may follow in a later segment once this one is finished. Listing the
      // directory is the dearest step of a poll: only when a change notification named
      // another file, the poll timer fired, or there is no notification at all.
      if (!this.#listingStale && this.#watcher !== undefined) return 'caught-up'
      this.#listingStale = false
      const next = this.#nextSegment(tail.segment)
      if (next === undefined) return 'caught-up'
      const opened = SegmentTail.open(fs, this.path, next)
      if (opened === 'pending') {
        this.#listingStale = true
        return 'caught-up'
      }
      if (opened === 'missing') continue // deleted between listing and opening: list again
      // The writer finishes a segment before it creates the next: read it to its end once more.
      if (this.#pollTail(cur, tail, apply, Infinity) === 'reset') {
        opened.close()
        return 'reset'
      }
      const base = opened.header.baseSeq
      if (base !== cur.applied) {
        opened.close()
        // It starts before what was applied: the writer cut records (a lenient recovery).
        if (base < cur.applied) return 'reset'
        if (cur.pendingBytes > 0) {
          throw corrupt(`${tail.path} at offset ${tail.offset}: a finished segment holds bytes that do not verify (seq ${cur.applied + 1} expected)`)
        }
        // A gap: a compaction deleted segments not read yet (its snapshot covers them), or a
        // load started the WAL at its snapshot's seq (written just after the segment).
        return 'rebuild'
      }
      tail.close()
      cur.tail = opened
      cur.pendingBytes = 0
      this.#listingStale = true
    }
  }

  /** Apply the records `tail` has; `'reset'` when the file no longer holds what was read from it. */
  #pollTail(cur: Cursor, tail: SegmentTail, apply: (ops: Op[], seq: number) => void, maxRecords: number): 'ok' | 'reset' {
    const st = tail.poll((rec) => {
      // A segment starting before the state (the base snapshot covers its first records).
      if (rec.seq <= cur.applied) return
      if (rec.seq !== cur.applied + 1) throw corrupt(`${tail.path} at offset ${rec.offset}: sequence gap: expected ${cur.applied + 1}, found ${rec.seq}`)
      if (rec.type !== RECORD_OPS) throw corrupt(`${tail.path} at offset ${rec.offset}: unknown record type ${rec.type}`)
      let ops: Op[]
      try {
        ops = decodeOps(rec.payload)
      } catch (err) {
        throw corrupt(`${tail.path} at offset ${rec.offset}: undecodable record: ${messageOf(err)}`)
      }
      try {
        apply(ops, rec.seq)
      } catch (err) {
        throw new ApplyFailure('KV_CORRUPT', `${tail.path} at offset ${rec.offset}: record ${rec.seq} does not apply: ${messageOf(err)}`)
      }
      cur.applied = rec.seq
    }, maxRecords)
    if (st.kind !== 'caught-up') return 'reset'
    cur.pendingBytes = st.pendingBytes
    if (st.reason === undefined) this.#stuck = undefined
    else this.#checkStuck(tail, cur.applied)
    return 'ok'
  }

  /**
   * Bytes after the last applied record do not verify. At open, or once they stayed so for
   * {@link STUCK_MS}, look past them: a valid record after them makes them damage. A running
   * follower needs that twice, {@link STUCK_MS} apart: one scan can race a restarted writer
   * that cuts a torn tail and appends where it was.
   * @throws {@link StoreError} `KV_CORRUPT` naming the file and offset.
   */
  #checkStuck(tail: SegmentTail, applied: number): void {
    const now = this.#o.now()
    const s = this.#stuck
    if (s === undefined || s.segment !== tail.segment || s.offset !== tail.offset) {
      this.#stuck = { segment: tail.segment, offset: tail.offset, since: now, suspect: false }
      if (!this.#opening) return
    } else if (now - s.since < STUCK_MS && !this.#opening) {
      return
    }
    const file = SegmentFile.open(this.#o.fs, tail.path)
    let found: { offset: number; reason: string } | undefined
    try {
      found = file.scan(() => undefined, { mode: 'strict', segment: tail.segment }).corruption
    } finally {
      file.close()
    }
    if (found !== undefined && (this.#opening || s?.suspect === true)) {
      throw corrupt(`${tail.path} at offset ${found.offset}: ${found.reason}, with valid records after it (last good seq ${applied})`)
    }
    // A torn tail (wait for the writer, or its restart, which cuts it), or damage to confirm: look again later.
    this.#stuck = { segment: tail.segment, offset: tail.offset, since: now, suspect: found !== undefined }
  }

  /**
   * The segment holding the record after `applied`: the newest whose base seq is at or below
   * it. `'gap'` when every segment starts after it; `'none'` when there is no segment.
   */
  #segmentFor(applied: number): SegmentTail | 'none' | 'gap' {
    const { fs } = this.#o
    let found: SegmentTail | undefined
    let later = false
    for (const n of listSegments(fs, this.path)) {
      const t = SegmentTail.open(fs, this.path, n)
      if (typeof t === 'string') continue
      if (t.header.baseSeq > applied) {
        t.close()
        later = true
        break
      }
      found?.close()
      found = t
    }
    return found ?? (later ? 'gap' : 'none')
  }

  #nextSegment(after: number): number | undefined {
    let next: number | undefined
    for (const n of listSegments(this.#o.fs, this.path)) if (n > after && (next === undefined || n < next)) next = n
    return next
  }

  /**
   * Install the newest snapshot that verifies, if the WAL continues from it; the records
   * after it are then applied like any others. At open (`first`) and after a reset it installs
   * what it finds; after a gap only a snapshot past the applied seq is worth it, so without one
   * it waits (`#need` stays set for a later poll: a load is still writing it).
   */
  async #rebuild(first: boolean): Promise<void> {
    const force = first || this.#need === 'reset'
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) return
      if (!force && !this.#catalog.list().some((snap) => snap.seq > this.#cur.applied)) return
      const base = await this.#newestSnapshot(first)
      if (this.#closed) return
      if (base !== 'retry') {
        if (!force && base.seq <= this.#cur.applied) return
        const start = this.#segmentFor(base.seq)
        if (start !== 'gap') {
          // One synchronous step: the snapshot replaces the state, and the cursor moves to it.
          this.#cur.tail?.close()
          this.#cur = { tail: start === 'none' ? undefined : start, applied: base.seq, pendingBytes: 0 }
          this.#need = undefined
          this.#listingStale = true
          this.#o.reset(base.mt, base.seq)
          if (!first) this.#resyncs++
          this.#o.advanced(base.seq)
          return
        }
      }
      // The WAL starts after the snapshot: the one it starts from is being written (a load), or
      // a compaction replaced files while they were read. A running follower keeps its state and
      // tries again on a later poll (a slow snapshot write is no damage); only open gives up.
      if (attempt >= MAX_RESYNC_ATTEMPTS) {
        if (!first) return
        throw corrupt(base === 'retry' ? `${this.path}: snapshots kept vanishing while read` : `${this.path}: the WAL does not continue from seq ${base.seq}, the newest snapshot that verifies`)
      }
      await delay(Math.min(5 * (attempt + 1), 50))
    }
  }

  /** The newest snapshot that verifies (empty at seq 0 when there is none); `'retry'` when one vanished while read. */
  async #newestSnapshot(first: boolean): Promise<{ mt: Memtable; seq: number } | 'retry'> {
    let damaged: StoreError | undefined
    for (const snap of this.#catalog.list()) {
      try {
        const loaded = await loadSnapshotFile(this.#o.fs, snap.path, first ? this.#o.onProgress : undefined, 0, undefined, this.#o.limits)
        return { mt: loaded.memtable, seq: Math.max(snap.seq, loaded.seq) }
      } catch (err) {
        // Deleted by a compaction while listed: look again.
        if (isMissing(err)) return 'retry'
        if (!(err instanceof StoreError) || err.code !== 'KV_CORRUPT') throw err
        damaged ??= err
      }
    }
    if (damaged !== undefined && listSegments(this.#o.fs, this.path).length === 0) throw damaged
    return { mt: new Memtable(), seq: 0 }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function isMissing(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause
  return (err as { code?: unknown } | null)?.code === 'ENOENT' || cause?.code === 'ENOENT'
}

/** What a write on a follower rejects with. */
export function readOnlyError(): StoreError {
  return new StoreError('KV_READ_ONLY', 'this store is a read-only follower: write through the store that opened the directory for writing')
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
