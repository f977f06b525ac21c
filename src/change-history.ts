// The changes after a seq, read back from a directory's WAL: what `watch({ fromSeq })`
// replays before it goes live. The WAL holds ops, not the changes watchers were told of,
// so where a change depends on the state (did a delete find the key? did a pop empty the
// list?) the state at `fromSeq` is rebuilt from the base snapshot and the records before
// it, and each record is applied with the same `Keyspace.apply` as a live write.
import { decodeOps, RECORD_OPS, type Op } from './codec/ops.js'
import { StoreError } from './errors.js'
import type { Fs } from './fs/fs.js'
import type { Keyspace } from './keyspace.js'
import { SnapshotCatalog } from './snapshot/catalog.js'
import type { SnapshotReadOptions } from './snapshot/format.js'
import { loadSnapshotFile } from './snapshot/io.js'
import { SegmentTail } from './wal/tailer.js'
import { listSegments } from './wal/segments.js'
import { changeOf, type Change } from './watch.js'

/** Where and what to read. */
export interface HistoryRequest {
  readonly fs: Fs
  readonly dir: string
  /** Changes after this seq... */
  readonly fromSeq: number
  /** ...up to and including this one (the store's seq when the feed started). */
  readonly toSeq: number
  readonly limits: SnapshotReadOptions
  /** An empty keyspace to rebuild the state at `fromSeq` in (the store builds its parts). */
  readonly newKeyspace: () => Keyspace
  /** Only ops on keys this accepts matter (the feed's key or prefix); `clear` always does. */
  readonly wanted: (key: string) => boolean
}

/** Records read per step: one step's changes are buffered, not the whole history. */
const RECORDS_PER_STEP = 256

function trimmed(fromSeq: number, why: string): StoreError {
  return new StoreError('KV_TRIMMED', `the WAL no longer holds the changes after seq ${fromSeq} (${why}): read the state and watch from its seq`)
}

/**
 * Open the history of `r.dir` from `r.fromSeq` to `r.toSeq`: every segment it needs is
 * opened at once, so a compaction that deletes them afterwards cannot take them away, and
 * the base state is rebuilt when the changes need it. The returned iterator then yields
 * the changes record by record, in seq order.
 *
 * @throws {@link StoreError} `KV_TRIMMED` when the WAL no longer starts at or before
 *   `fromSeq`; `KV_CORRUPT` when a record in the range does not verify or decode; `KV_IO`.
 */
export async function openHistory(r: HistoryRequest): Promise<AsyncIterator<Change[]>> {
  if (r.fromSeq >= r.toSeq) return (async function* () {})()
  const tails = openSegments(r)
  try {
    const first = tails[0]
    if (first === undefined || first.header.baseSeq > r.fromSeq) {
      throw trimmed(r.fromSeq, first === undefined ? 'there is no WAL segment' : `the oldest segment starts after seq ${first.header.baseSeq}`)
    }
    const ks = r.newKeyspace()
    const withState = await needsState(r, tails)
    if (withState) await rebuildBase(r, ks)
    // Reopen after the look-ahead: the tails were read to find the ops.
    for (const t of tails) t.close()
    const fresh = openSegments(r)
    return changes(r, fresh, withState ? ks : undefined)
  } catch (err) {
    for (const t of tails) t.close()
    throw err
  }
}

/** Every segment from the one holding `fromSeq + 1` to the newest, opened now. */
function openSegments(r: HistoryRequest): SegmentTail[] {
  const out: SegmentTail[] = []
  for (const n of listSegments(r.fs, r.dir)) {
    const t = SegmentTail.open(r.fs, r.dir, n)
    if (typeof t === 'string') continue
    // A later segment that starts at or before fromSeq makes the earlier ones unnecessary.
    if (t.header.baseSeq <= r.fromSeq) {
      for (const old of out.splice(0)) old.close()
    }
    out.push(t)
  }
  return out
}

/** True when some op in the range on a wanted key has a change that depends on the state before it. */
async function needsState(r: HistoryRequest, tails: readonly SegmentTail[]): Promise<boolean> {
  for await (const step of steps(r, tails, r.fromSeq, r.toSeq)) {
    for (const { ops } of step) {
      for (const op of ops) {
        if ((op.t === 'del' || op.t === 'pop' || op.t === 'ltrim' || op.t === 'hdel') && r.wanted(op.key)) return true
      }
    }
  }
  return false
}

/**
 * Load into `ks` the state as of `fromSeq`: the newest snapshot at or before it, then the
 * records after the snapshot up to `fromSeq`.
 */
async function rebuildBase(r: HistoryRequest, ks: Keyspace): Promise<void> {
  const catalog = new SnapshotCatalog(r.fs, r.dir, { limits: r.limits })
  let base = 0
  for (const snap of catalog.list()) {
    if (snap.seq > r.fromSeq) continue
    try {
      const loaded = await loadSnapshotFile(r.fs, snap.path, undefined, 0, undefined, r.limits)
      ks.install(loaded.memtable)
      base = Math.max(snap.seq, loaded.seq)
      break
    } catch (err) {
      if ((err as { cause?: { code?: unknown } }).cause?.code === 'ENOENT') throw trimmed(r.fromSeq, `${snap.path} was removed by a compaction`)
      throw err
    }
  }
  const tails = openSegments({ ...r, fromSeq: base })
  try {
    for await (const step of steps(r, tails, base, r.fromSeq)) {
      for (const { ops, seq } of step) for (const op of ops) ks.apply(op, seq)
    }
  } finally {
    for (const t of tails) t.close()
  }
}

interface LoggedRecord {
  readonly ops: Op[]
  readonly seq: number
}

/**
 * The records in `(after, toSeq]` of `tails`, in order, a step of records at a time (the
 * event loop gets a turn between steps).
 * @throws {@link StoreError} `KV_TRIMMED` for a gap before a segment; `KV_CORRUPT` when
 *   the WAL ends before `toSeq` or a record does not decode.
 */
async function* steps(r: HistoryRequest, tails: readonly SegmentTail[], after: number, toSeq: number): AsyncGenerator<LoggedRecord[]> {
  let last = after
  for (const tail of tails) {
    if (last >= toSeq) return
    if (tail.header.baseSeq > last) throw trimmed(r.fromSeq, `records ${last + 1} to ${tail.header.baseSeq} are gone`)
    for (;;) {
      const step: LoggedRecord[] = []
      let seen = 0
      const st = tail.poll((rec) => {
        seen++
        if (rec.seq <= last || rec.seq > toSeq) return
        if (rec.type !== RECORD_OPS) throw new StoreError('KV_CORRUPT', `${tail.path} at offset ${rec.offset}: unknown record type ${rec.type}`)
        step.push({ ops: decodeOps(rec.payload), seq: rec.seq })
        last = rec.seq
      }, RECORDS_PER_STEP)
      if (st.kind !== 'caught-up') throw new StoreError('KV_CORRUPT', `${tail.path} changed while its history was read`)
      if (step.length > 0) yield step
      if (last >= toSeq) return
      if (seen < RECORDS_PER_STEP) break // this segment has no more whole records
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }
  if (last < toSeq) throw new StoreError('KV_CORRUPT', `the WAL ends at seq ${last}, before seq ${toSeq}, which it held when the feed started`)
}

/** The changes of the records in `(r.fromSeq, r.toSeq]`, a step of records at a time. */
async function* changes(r: HistoryRequest, tails: SegmentTail[], ks: Keyspace | undefined): AsyncGenerator<Change[]> {
  try {
    for await (const step of steps(r, tails, r.fromSeq, r.toSeq)) {
      const batch: Change[] = []
      for (const { ops, seq } of step) {
        for (const op of ops) {
          const wanted = op.t === 'clear' || r.wanted(op.key)
          if (ks === undefined) {
            // No op in the range depends on the state: sets, pushes, hsets, lsets and expiries keep or create their key.
            if (wanted) batch.push(changeOf(op, seq, true))
            continue
          }
          const result = ks.apply(op, seq)
          // As for a live write: a delete that found nothing changed nothing.
          if (!wanted || (op.t === 'del' && result === false)) continue
          batch.push(changeOf(op, seq, op.t !== 'set' && op.t !== 'del' && op.t !== 'clear' && ks.table.has(op.key)))
        }
      }
      if (batch.length > 0) yield batch
    }
  } finally {
    for (const t of tails) t.close()
  }
}
