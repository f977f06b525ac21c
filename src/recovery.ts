import { basename } from 'node:path'
import { performance } from 'node:perf_hooks'
import { decodeOps, RECORD_OPS, type Op } from './codec/ops.js'
import { isStoreError, StoreError } from './errors.js'
import type { Fs } from './fs/fs.js'
import { Memtable } from './memtable.js'
import type { ProgressEvent, RecoveryMode, SyncPolicy } from './options.js'
import { SnapshotCatalog, type SnapshotFileInfo } from './snapshot/catalog.js'
import type { SnapshotReadOptions } from './snapshot/format.js'
import { loadSnapshotFile } from './snapshot/io.js'
import { MAX_SEGMENT_NUMBER, type SegmentHeader } from './wal/format.js'
import { SegmentFile, type SegmentScan, type WalRecord } from './wal/reader.js'
import { listSegments, segmentPath } from './wal/segments.js'
import { WalWriter, type WalWriterOptions } from './wal/writer.js'


/** What open found, from `stats().recovery`. */
export interface RecoveryStats {
  /** Snapshot the state was rebuilt from, if any. */
  readonly snapshot: string | undefined
  readonly snapshotSeq: number
  readonly snapshotEntries: number
  /** Newer snapshots that failed verification and were skipped (kept on disk). */
  readonly skippedSnapshots: string[]
  readonly segments: number
  /** WAL records replayed (those after the snapshot). */
  readonly records: number
  /** WAL bytes read. */
  readonly bytes: number
  /** Bytes cut from a torn or zero-filled tail. */
  readonly truncatedTailBytes: number
  /** Files the cut bytes or dropped segments were moved to (`*.broken`). */
  readonly brokenFiles: string[]
  /** Mid-file damage found (only with a lenient `recovery` mode; strict fails instead). */
  readonly corruption: { readonly file: string; readonly offset: number; readonly reason: string; readonly lastGoodSeq: number } | undefined
  /** Temp files of interrupted snapshots that were removed. */
  readonly removedTemps: string[]
  readonly lastSeq: number
  readonly timeMs: number
}

/** Inputs of {@link recoverDirectory}. */
export interface RecoveryParams {
  readonly fs: Fs
  readonly dir: string
  readonly mode: RecoveryMode
  readonly sync: SyncPolicy
  readonly syncIntervalMs?: number
  /** Size limits the base snapshot is read with: the store's, so it can hold what the file holds. */
  readonly limits?: SnapshotReadOptions
  /** Permission bits of files recovery and the writer create. @defaultValue the file system's default */
  readonly fileMode?: number
  /** Passed to the WAL writer ({@link WalWriterOptions.maxSegmentBytes}); its default when omitted. */
  readonly maxSegmentBytes?: number
  /** @internal Read chunk size for segments (tests use tiny ones). */
  readonly readChunkBytes?: number
  readonly onProgress: (e: ProgressEvent) => void
  /**
   * Install the base state: the snapshot's memtable, or an empty one when there is no usable
   * snapshot. Called before any ops, and again with a fresh copy when replay starts over because
   * an `applyOps` call threw: whatever state the earlier calls left must be discarded.
   */
  readonly loadSnapshot: (mt: Memtable) => void
  /**
   * Apply the ops of one WAL record at `seq`. May throw (ops that do not fit the state, such as a
   * list push onto a plain value): the record then counts as corrupt at its file and offset,
   * exactly like one that fails its checksum, and replay starts over without it.
   */
  readonly applyOps: (ops: Op[], seq: number) => void
}

/** Result of {@link recoverDirectory}: the state is installed through the callbacks. */
export interface Recovered {
  readonly writer: WalWriter
  readonly lastSeq: number
  readonly snapshots: SnapshotCatalog
  readonly stats: RecoveryStats
}

type Corruption = NonNullable<RecoveryStats['corruption']>

function corrupt(c: Corruption, cause?: unknown): StoreError {
  const message = `${c.file} at offset ${c.offset}: ${c.reason} (last good seq ${c.lastGoodSeq})`
  return cause === undefined ? new StoreError('KV_CORRUPT', message) : new StoreError('KV_CORRUPT', message, { cause })
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function ioError(what: string, path: string, err: unknown): StoreError {
  return err instanceof StoreError ? err : new StoreError('KV_IO', `cannot ${what} ${path}`, { cause: err })
}

/** Thrown out of a scan when `applyOps` fails, so replay can start over from the base state. */
class ApplyFailure extends Error {
  constructor(
    readonly corruption: Corruption,
    readonly key: string,
    override readonly cause: unknown,
  ) {
    super(corruption.reason)
  }
}

interface Segment {
  readonly number: number
  readonly path: string
}

/** The base state replay starts from. */
interface Base {
  readonly snap: SnapshotFileInfo | undefined
  readonly seq: number
  readonly entries: number
  readonly skipped: string[]
}

/** The segment that new records are appended to, and where. */
interface Tail {
  readonly segment: Segment
  readonly salt: number
  readonly baseSeq: number
  /** Seq of the last record kept in the file (its own chain): the next append must follow it. */
  readonly lastSeq: number
  readonly validEnd: number
}

/** What a replay pass found and what must change on disk; a pass itself never changes a file. */
interface Replay {
  lastSeq: number
  records: number
  bytesRead: number
  truncatedTailBytes: number
  corruption: Corruption | undefined
  /** Segments cut at `at`: bytes `[at, size)` are kept aside (unless all zero), then the file is truncated. */
  readonly cuts: Array<{ readonly path: string; readonly at: number; readonly size: number }>
  /** Segments deleted: a torn creation (bytes kept aside when `keep`) or the empty segment of a crashed load. */
  readonly drops: Array<{ readonly path: string; readonly size: number; readonly keep: boolean }>
  /** Segments moved aside whole (point-in-time: everything from the damage on). */
  readonly aside: string[]
  tail: Tail | undefined
}

/**
 * Rebuild a store directory's state: newest snapshot that verifies, then every WAL
 * record after its seq, then open the WAL for appending.
 *
 * Rules (docs/FORMAT.md, "Recovery"): a torn or zero tail of the last segment is cut
 * (non-zero bytes kept in `<segment>.broken-<offset>`, never overwriting a file) and the store
 * opens; damage anywhere else, a sequence gap, a missing segment, a segment header naming
 * another segment, a record that does not decode or whose ops do not apply to the state is
 * corruption: `strict` throws `KV_CORRUPT` naming file, offset and last good seq;
 * `point-in-time` keeps the state before the damage and moves everything after it aside;
 * `salvage` skips damaged records. A damaged newest snapshot falls back to an older one only
 * when the WAL still covers everything after the older one; otherwise open fails. Segments are
 * streamed in bounded chunks, whatever their size. Running it twice gives the same state.
 *
 * @throws {@link StoreError} `KV_CORRUPT` as above; `KV_IO` (cause: the fs error) when a file
 *   cannot be read or repaired.
 */
export async function recoverDirectory(p: RecoveryParams): Promise<Recovered> {
  const started = performance.now()
  const { fs, dir, mode } = p
  const catalog = new SnapshotCatalog(fs, dir, { mode: p.fileMode, limits: p.limits })
  const removedTemps = catalog.removeTemps()
  const segments = listSegments(fs, dir).map((number) => ({ number, path: segmentPath(dir, number) }))
  const decoded = segments.map((s) => readHeader(fs, s, p.readChunkBytes))
  // Only a verified header naming its own segment is trusted for its base seq.
  const headers = decoded.map((h, i) => (typeof h !== 'string' && h.segment === (segments[i] as Segment).number ? h : undefined))
  const first = decoded[0]
  const firstBase = first === undefined || typeof first === 'string' ? undefined : first.baseSeq

  // 1. Base snapshot: newest that verifies and that the WAL can continue from.
  const base = await installBase(p, catalog)
  const snapSeq = base.seq
  if (base.skipped.length > 0 && (firstBase === undefined || firstBase > snapSeq)) {
    // Falling back is safe only if the WAL still starts at or before the older base.
    throw new StoreError(
      'KV_CORRUPT',
      `snapshot ${base.skipped[0]} is damaged and the WAL no longer covers an older state (opening would lose data)`,
    )
  }
  if (firstBase !== undefined && firstBase > snapSeq && mode !== 'salvage') {
    const reason = `WAL starts after seq ${firstBase} but the newest usable snapshot covers only up to ${snapSeq}`
    throw corrupt({ file: (segments[0] as Segment).path, offset: 0, reason, lastGoodSeq: snapSeq })
  }

  // 2. Replay the WAL after the snapshot. A record whose ops fail to apply may have applied part
  // of its batch, so replay starts over from the base state with that record marked corrupt
  // (strict mode just fails). Each restart refuses one more record, so this ends.
  const refused = new Map<string, string>()
  let replay: Replay
  for (;;) {
    try {
      replay = replaySegments(p, segments, headers, snapSeq, refused)
      break
    } catch (err) {
      if (!(err instanceof ApplyFailure)) throw err
      if (mode === 'strict') throw corrupt(err.corruption, err.cause)
      refused.set(err.key, err.corruption.reason)
      await reinstallBase(p, base)
    }
  }

  // 3. Repair the files, then open the WAL for appending: the tail segment where it ends, or a new one.
  const brokenFiles = await repair(fs, dir, replay, removedTemps.length > 0, p.readChunkBytes, p.fileMode)
  const opts: WalWriterOptions = { sync: p.sync }
  if (p.syncIntervalMs !== undefined) opts.syncIntervalMs = p.syncIntervalMs
  if (p.maxSegmentBytes !== undefined) opts.maxSegmentBytes = p.maxSegmentBytes
  if (p.fileMode !== undefined) opts.fileMode = p.fileMode
  const tail = replay.tail
  let writer: WalWriter
  if (tail !== undefined) {
    writer = WalWriter.openForAppend(
      fs,
      dir,
      tail.segment.number,
      { salt: tail.salt, baseSeq: tail.baseSeq, lastSeq: tail.lastSeq, validEnd: tail.validEnd },
      opts,
    )
  } else {
    const next = segments.length > 0 ? (segments[segments.length - 1] as Segment).number + 1 : 1
    if (next > MAX_SEGMENT_NUMBER) {
      const last = (segments[segments.length - 1] as Segment).path
      throw corrupt({ file: last, offset: 0, reason: 'no segment number left after this one', lastGoodSeq: replay.lastSeq })
    }
    writer = await WalWriter.create(fs, dir, next, replay.lastSeq, opts)
  }
  const lastSeq = writer.lastSeq

  return {
    writer,
    lastSeq,
    snapshots: catalog,
    stats: {
      snapshot: base.snap?.path,
      snapshotSeq: snapSeq,
      snapshotEntries: base.entries,
      skippedSnapshots: base.skipped,
      segments: segments.length,
      records: replay.records,
      bytes: replay.bytesRead,
      truncatedTailBytes: replay.truncatedTailBytes,
      brokenFiles,
      corruption: replay.corruption,
      removedTemps,
      lastSeq,
      timeMs: performance.now() - started,
    },
  }
}

/**
 * Load the newest snapshot that verifies and install it with `p.loadSnapshot`.
 *
 * A snapshot that fails to decode, or whose installation throws, is skipped (named in
 * `skipped`) in favour of an older one; only `KV_IO` ends the search.
 */
async function installBase(p: RecoveryParams, catalog: SnapshotCatalog): Promise<Base> {
  const skipped: string[] = []
  let installFailed = false
  for (const candidate of catalog.list()) {
    let loaded: Awaited<ReturnType<typeof loadSnapshotFile>>
    try {
      loaded = await loadSnapshotFile(p.fs, candidate.path, p.onProgress, 0, undefined, p.limits)
    } catch (err) {
      // loadSnapshotFile throws only StoreErrors: KV_CORRUPT for this file, KV_IO ends the search.
      if (!isStoreError(err, 'KV_CORRUPT')) throw err
      skipped.push(basename(candidate.path))
      continue
    }
    const entries = loaded.memtable.size
    try {
      p.loadSnapshot(loaded.memtable)
    } catch {
      // The callback refused this state: treat the snapshot as damaged, like a failed decode.
      installFailed = true
      skipped.push(basename(candidate.path))
      continue
    }
    // A version-1 file carries no seq, so its name is all there is. A later one says in its
    // header what it covers, and that wins over the name: a file renamed to a later seq
    // would otherwise skip WAL records it does not hold.
    const seq = loaded.formatVersion >= 2 ? loaded.seq : candidate.seq
    return { snap: candidate, seq, entries, skipped }
  }
  // A refused installation may have left part of its state behind.
  if (installFailed) p.loadSnapshot(new Memtable())
  return { snap: undefined, seq: 0, entries: 0, skipped }
}

/** Install `base` again, from a fresh read of its snapshot (replay mutates the installed copy). */
async function reinstallBase(p: RecoveryParams, base: Base): Promise<void> {
  if (base.snap === undefined) {
    p.loadSnapshot(new Memtable())
    return
  }
  p.loadSnapshot((await loadSnapshotFile(p.fs, base.snap.path, p.onProgress, 0, undefined, p.limits)).memtable)
}

/** One replay pass over `segments` (see {@link Replay}); throws {@link ApplyFailure} when `applyOps` does. */
function replaySegments(
  p: RecoveryParams,
  segments: readonly Segment[],
  headers: ReadonlyArray<{ baseSeq: number } | undefined>,
  snapSeq: number,
  refused: ReadonlyMap<string, string>,
): Replay {
  const { fs, mode } = p
  const salvage = mode === 'salvage'
  const out: Replay = {
    lastSeq: snapSeq,
    records: 0,
    bytesRead: 0,
    truncatedTailBytes: 0,
    corruption: undefined,
    cuts: [],
    drops: [],
    aside: [],
    tail: undefined,
  }
  let lastProgress = performance.now()

  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as Segment
    const isLast = i === segments.length - 1
    // Every record of a segment precedes the next segment's base seq: when the snapshot covers
    // that, the segment (left by a compaction that crashed before deleting it) is not needed,
    // and damage in it must not stop the open.
    const nextBase = headers[i + 1]?.baseSeq
    if (nextBase !== undefined && nextBase <= snapSeq) continue

    const file = SegmentFile.open(fs, seg.path, chunkOpts(p.readChunkBytes))
    let scan: SegmentScan
    const seqBefore = out.lastSeq
    let stop = false
    // Seq of the record before the current one in the file, and where a record-level cut leaves the file's own chain.
    let prevInFile: number | undefined
    let cutChain: number | undefined
    const note = (offset: number, reason: string, chain?: number): void => {
      if (out.corruption !== undefined) return
      out.corruption = { file: seg.path, offset, reason, lastGoodSeq: out.lastSeq }
      cutChain = chain
    }
    const visit = (rec: WalRecord): void => {
      const prev = prevInFile
      prevInFile = rec.seq
      if (stop || rec.seq <= snapSeq) return
      if (rec.seq !== out.lastSeq + 1) {
        if (!salvage) {
          // Stryker disable next-line BooleanLiteral: the reader keeps a file's seqs consecutive, so no later record in it can continue the chain.
          stop = true
          note(rec.offset, `sequence gap: expected ${out.lastSeq + 1}, found ${rec.seq}`, prev)
          return
        }
        // Salvage tolerates gaps but never goes back: a seq replayed already is a stale record.
        if (rec.seq <= out.lastSeq) {
          note(rec.offset, `sequence ${rec.seq} after ${out.lastSeq} was replayed already`)
          return
        }
      }
      const reason = applyRecord(p, seg, rec, out.lastSeq, refused)
      if (reason !== undefined) {
        note(rec.offset, reason, prev)
        // Stryker disable next-line ConditionalExpression,BooleanLiteral: as after a gap, the next record in the file is seq + 1 and no longer continues the chain.
        if (!salvage) stop = true
        return
      }
      out.lastSeq = rec.seq
      out.records++
      if ((out.records & 0x3fff) === 0) {
        const now = performance.now()
        // Stryker disable next-line EqualityOperator: `>=` differs only at exactly 100 ms, where either is right.
        if (now - lastProgress > 100) {
          lastProgress = now
          p.onProgress({ phase: 'replay', done: out.records, total: undefined })
        }
      }
    }
    try {
      out.bytesRead += file.size
      scan = file.scan(visit, { mode: salvage ? 'salvage' : 'strict', segment: seg.number })
      if (classify(out, seg, file, scan, isLast, seqBefore, cutChain, mode)) {
        // point-in-time stopped at damage: everything after it goes aside.
        for (const later of segments.slice(i + 1)) out.aside.push(later.path)
        break
      }
    } finally {
      closeQuietly(file)
    }
  }
  return out
}

/**
 * Decode and apply one record; returns why it is corrupt, or `undefined` once applied.
 *
 * @throws {@link ApplyFailure} when `applyOps` throws (the state may hold part of the batch).
 */
function applyRecord(p: RecoveryParams, seg: Segment, rec: WalRecord, lastGoodSeq: number, refused: ReadonlyMap<string, string>): string | undefined {
  const key = `${seg.number}:${rec.offset}`
  const refusal = refused.get(key)
  if (refusal !== undefined) return refusal
  if (rec.type !== RECORD_OPS) return `unknown record type ${rec.type}`
  let ops: Op[]
  try {
    ops = decodeOps(rec.payload)
  } catch (err) {
    return `undecodable record: ${messageOf(err)}`
  }
  try {
    p.applyOps(ops, rec.seq)
  } catch (err) {
    const reason = `record ${rec.seq} does not apply to the state: ${messageOf(err)}`
    throw new ApplyFailure({ file: seg.path, offset: rec.offset, reason, lastGoodSeq }, key, err)
  }
  return undefined
}

/**
 * Classify one scanned segment into `out` (corruption, cuts, drops, tail); true when
 * point-in-time recovery stops here.
 *
 * @throws {@link StoreError} `KV_CORRUPT` in strict mode when the segment is damaged.
 */
function classify(
  out: Replay,
  seg: Segment,
  file: SegmentFile,
  scan: SegmentScan,
  isLast: boolean,
  seqBefore: number,
  cutChain: number | undefined,
  mode: RecoveryMode,
): boolean {
  const size = scan.fileSize
  const note = (offset: number, reason: string): void => {
    out.corruption ??= { file: seg.path, offset, reason, lastGoodSeq: out.lastSeq }
  }
  if (scan.header === undefined) {
    // (The reader reports a file shorter than a header as a torn tail, without corruption.)
    if (isLast && (scan.corruption === undefined || file.isZero(0))) {
      // Crash while creating the segment: it holds nothing; start it afresh. (An empty file is all zeros.)
      out.drops.push({ path: seg.path, size, keep: !file.isZero(0) })
      out.truncatedTailBytes += size
      // Stryker disable next-line BooleanLiteral: this is the last segment, so stopping here moves nothing aside.
      return false
    }
    note(scan.corruption?.offset ?? 0, scan.corruption?.reason ?? 'segment header fails its checksum')
  } else if (scan.corruption !== undefined) {
    note(scan.corruption.offset, scan.corruption.reason)
  } else if (!isLast && scan.tail !== 'clean') {
    // Rotation fsyncs a segment before starting the next: a damaged end here is not a crash tail.
    note(scan.validEnd, 'damaged end of a closed segment')
  }
  const c = out.corruption
  if (c !== undefined && mode !== 'salvage') {
    if (mode === 'strict') throw corrupt(c)
    // point-in-time: keep what came before the damage (in this file: it stopped at the first).
    if (scan.header === undefined) {
      out.aside.push(seg.path)
      return true
    }
    // The damage is in this file: outside salvage the first damage stops the replay, in the
    // file where it is found. It lies inside the file, so the cut removes at least one byte.
    const cut = Math.min(c.offset, scan.validEnd)
    const recordCut = c.offset < scan.validEnd
    out.cuts.push({ path: seg.path, at: cut, size })
    out.truncatedTailBytes += size - cut
    const chain = recordCut ? (cutChain ?? scan.header.baseSeq) : scan.lastSeq
    out.tail = tailAt(seg, scan.header, chain, cut, out, false)
    return true
  }
  if (isLast && scan.header !== undefined && scan.header.baseSeq > seqBefore && scan.lastSeq === scan.header.baseSeq) {
    // A segment started past the last record with nothing in it: a load that crashed
    // before its snapshot was durable. The load never resolved; start afresh.
    out.drops.push({ path: seg.path, size, keep: false })
    // Stryker disable next-line BooleanLiteral: this is the last segment, so stopping here moves nothing aside.
    return false
  }
  if (isLast && scan.header !== undefined) {
    if (scan.validEnd < size) {
      out.cuts.push({ path: seg.path, at: scan.validEnd, size })
      out.truncatedTailBytes += size - scan.validEnd
    }
    // Stryker disable next-line ConditionalExpression: outside salvage every record of the file was applied or is covered by the snapshot, so its chain never passes the state.
    out.tail = tailAt(seg, scan.header, scan.lastSeq, scan.validEnd, out, mode === 'salvage')
  }
  return false
}

/**
 * The append position after `chain`, the seq the kept part of the file ends with.
 *
 * Appends must continue the file's own chain, so when it differs from the replayed state the
 * result is `undefined` and new records go to a new segment. One exception: when salvage skipped
 * the file's last records (`mayAdvance`), the state's seq moves up to the chain instead, so seqs
 * never repeat in the file (the skipped records stay, and are skipped again by the next salvage).
 */
function tailAt(
  seg: Segment,
  header: NonNullable<SegmentScan['header']>,
  chain: number,
  validEnd: number,
  out: Replay,
  mayAdvance: boolean,
): Tail | undefined {
  if (chain < out.lastSeq || (chain > out.lastSeq && !mayAdvance)) return undefined
  out.lastSeq = chain
  return { segment: seg, salt: header.salt, baseSeq: header.baseSeq, lastSeq: chain, validEnd }
}

/**
 * Carry out `replay`'s file changes; returns the names of the copies and moved files.
 *
 * Copies are made durable (data and directory entry) before anything is cut or removed, so a
 * crash in between loses no byte.
 */
async function repair(
  fs: Fs,
  dir: string,
  replay: Replay,
  dirChanged: boolean,
  chunkBytes: number | undefined,
  mode: number | undefined,
): Promise<string[]> {
  const broken: string[] = []
  for (const d of replay.drops) if (d.keep) broken.push(await keepCopy(fs, d.path, 0, chunkBytes, mode))
  for (const c of replay.cuts) if (!isZeroRange(fs, c.path, c.at, chunkBytes)) broken.push(await keepCopy(fs, c.path, c.at, chunkBytes, mode))
  if (broken.length > 0) await fsyncDir(fs, dir)
  for (const d of replay.drops) {
    try {
      fs.unlink(d.path)
    } catch (err) {
      throw ioError('delete', d.path, err)
    }
  }
  for (const c of replay.cuts) await truncateFile(fs, c.path, c.at)
  for (const path of replay.aside) {
    const moved = freeName(fs, `${path}.broken`)
    try {
      fs.rename(path, moved)
    } catch (err) {
      throw ioError('move aside', path, err)
    }
    broken.push(basename(moved))
  }
  if (dirChanged || replay.drops.length > 0 || replay.aside.length > 0) await fsyncDir(fs, dir)
  return broken
}

async function fsyncDir(fs: Fs, dir: string): Promise<void> {
  try {
    await fs.fsyncDir(dir)
  } catch (err) {
    throw ioError('fsync directory', dir, err)
  }
}

function chunkOpts(chunkBytes: number | undefined): { chunkBytes?: number } {
  return chunkBytes === undefined ? {} : { chunkBytes }
}

function closeQuietly(file: SegmentFile): void {
  try {
    file.close()
  } catch {
    // Reading is done; a failed close of a read-only descriptor loses nothing.
  }
}

/** The segment header of `seg` (32 bytes read), or why it is unusable. */
function readHeader(fs: Fs, seg: Segment, chunkBytes: number | undefined): SegmentHeader | string {
  const file = SegmentFile.open(fs, seg.path, chunkOpts(chunkBytes))
  try {
    return file.header()
  } finally {
    closeQuietly(file)
  }
}

function isZeroRange(fs: Fs, path: string, from: number, chunkBytes: number | undefined): boolean {
  const file = SegmentFile.open(fs, path, chunkOpts(chunkBytes))
  try {
    return file.isZero(from)
  } finally {
    closeQuietly(file)
  }
}

/** Most names tried for one copy before giving up; each taken name was left by an earlier recovery or someone else. */
const MAX_NAME_ATTEMPTS = 1000

/** `base`, or `base.<k>` for the smallest k >= 1 that does not exist. */
function freeName(fs: Fs, base: string): string {
  for (let k = 0; k < MAX_NAME_ATTEMPTS; k++) {
    const name = k === 0 ? base : `${base}.${k}`
    if (fs.stat(name) === undefined) return name
  }
  throw new StoreError('KV_IO', `cannot find a free name for ${base} (${MAX_NAME_ATTEMPTS} taken)`)
}

/**
 * Copy bytes `[from, end)` of `path` next to it, as `<path>.broken-<from>` (or `.<k>` after it
 * when that exists), and datasync the copy; returns the copy's name.
 *
 * Created with `'wx'` (O_CREAT | O_EXCL): it never opens an existing file, so a planted
 * symlink or an earlier copy is never followed or overwritten.
 */
async function keepCopy(fs: Fs, path: string, from: number, chunkBytes: number | undefined, mode: number | undefined): Promise<string> {
  const base = `${path}.broken-${from}`
  let copy = base
  let fd = -1
  // Stryker disable next-line EqualityOperator: open never returns descriptor 0 (stdin), so fd <= 0 is the same test.
  for (let k = 0; fd < 0; k++) {
    if (k === MAX_NAME_ATTEMPTS) throw new StoreError('KV_IO', `cannot find a free name for ${base} (${MAX_NAME_ATTEMPTS} taken)`)
    copy = k === 0 ? base : `${base}.${k}`
    try {
      fd = fs.open(copy, 'wx', mode)
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code !== 'EEXIST') throw ioError('create', copy, err)
    }
  }
  const src = SegmentFile.open(fs, path, chunkOpts(chunkBytes))
  try {
    let pos = 0
    src.forEachChunk(from, src.size, (chunk) => {
      for (let done = 0; done < chunk.length; ) {
        let n: number
        try {
          n = fs.write(fd, chunk, done, chunk.length - done, pos + done)
        } catch (err) {
          throw ioError('write', copy, err)
        }
        if (!(n > 0)) throw new StoreError('KV_IO', `cannot write ${copy}: no progress`)
        done += n
      }
      pos += chunk.length
    })
    await fs.datasync(fd)
  } catch (err) {
    throw ioError('write', copy, err)
  } finally {
    closeQuietly(src)
    try {
      fs.close(fd)
    } catch {
      // The data is synced or the copy already failed.
    }
  }
  return basename(copy)
}

/** Truncate `path` to `length` bytes, durably. */
async function truncateFile(fs: Fs, path: string, length: number): Promise<void> {
  let fd: number
  try {
    fd = fs.open(path, 'r+')
  } catch (err) {
    throw ioError('open', path, err)
  }
  try {
    fs.ftruncate(fd, length)
    await fs.datasync(fd)
  } catch (err) {
    throw ioError('truncate', path, err)
  } finally {
    try {
      fs.close(fd)
    } catch {
      // The truncation is synced or already failed.
    }
  }
}
