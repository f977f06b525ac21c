import { basename } from 'node:path'
import { performance } from 'node:perf_hooks'
import { decodeOps, type Op } from './codec/ops.js'
import { StoreError } from './errors.js'
import type { Fs } from './fs/fs.js'
import type { Memtable } from './memtable.js'
import type { ProgressEvent, RecoveryMode, SyncPolicy } from './options.js'
import { SnapshotCatalog, type SnapshotFileInfo } from './snapshot/catalog.js'
import { loadSnapshotFile } from './snapshot/io.js'
import { scanSegment, type SegmentScan } from './wal/reader.js'
import { listSegments, segmentPath } from './wal/segments.js'
import { SEGMENT_HEADER_SIZE } from './wal/format.js'
import { WalWriter } from './wal/writer.js'

/** WAL record types written by the store (the WAL itself treats them as opaque). */
export const RECORD_OPS = 1

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
  readonly onProgress: (e: ProgressEvent) => void
  /** Install the state read from the base snapshot (called at most once, before any ops). */
  readonly loadSnapshot: (mt: Memtable) => void
  /** Apply the ops of one WAL record at `seq`. */
  readonly applyOps: (ops: Op[], seq: number) => void
}

/** Result of {@link recoverDirectory}: the state is installed through the callbacks. */
export interface Recovered {
  readonly writer: WalWriter
  readonly lastSeq: number
  readonly snapshots: SnapshotCatalog
  readonly stats: RecoveryStats
}

function corrupt(file: string, offset: number, reason: string, lastGoodSeq: number): StoreError {
  return new StoreError('KV_CORRUPT', `${file} at offset ${offset}: ${reason} (last good seq ${lastGoodSeq})`)
}

/**
 * Rebuild a store directory's state: newest snapshot that verifies, then every WAL
 * record after its seq, then open the WAL for appending.
 *
 * Rules (docs/FORMAT.md, "Recovery"): a torn or zero tail of the last segment is cut
 * (bytes kept in `<segment>.broken-<offset>`) and the store opens; damage anywhere
 * else, a sequence gap, or a missing segment is corruption: `strict` throws
 * `KV_CORRUPT` naming file, offset and last good seq; `point-in-time` keeps the state
 * before the damage and moves everything after it aside; `salvage` skips damaged
 * records. A damaged newest snapshot falls back to an older one only when the WAL
 * still covers everything after the older one; otherwise open fails. Running it twice
 * gives the same state.
 */
export async function recoverDirectory(p: RecoveryParams): Promise<Recovered> {
  const started = performance.now()
  const { fs, dir, mode } = p
  const catalog = new SnapshotCatalog(fs, dir)
  const removedTemps = catalog.removeTemps()
  const segments = listSegments(fs, dir).map((number) => ({ number, path: segmentPath(dir, number) }))
  const firstBase = segments.length > 0 ? readBaseSeq(fs, segments[0]!.path) : undefined

  // 1. Base snapshot: newest that verifies and that the WAL can continue from.
  let snap: SnapshotFileInfo | undefined
  let snapSeq = 0
  let snapEntries = 0
  const skippedSnapshots: string[] = []
  for (const candidate of catalog.list()) {
    try {
      const loaded = await loadSnapshotFile(fs, candidate.path, p.onProgress)
      p.loadSnapshot(loaded.memtable)
      snap = candidate
      snapSeq = Math.max(candidate.seq, loaded.seq)
      snapEntries = loaded.memtable.size
      break
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'KV_CORRUPT') throw err
      skippedSnapshots.push(basename(candidate.path))
    }
  }
  if (skippedSnapshots.length > 0 && (firstBase === undefined || firstBase > snapSeq)) {
    // Falling back is safe only if the WAL still starts at or before the older base.
    throw new StoreError(
      'KV_CORRUPT',
      `snapshot ${skippedSnapshots[0]} is damaged and the WAL no longer covers an older state (opening would lose data)`,
    )
  }
  if (firstBase !== undefined && firstBase > snapSeq && mode !== 'salvage') {
    throw corrupt(segments[0]!.path, 0, `WAL starts after seq ${firstBase} but the newest usable snapshot covers only up to ${snapSeq}`, snapSeq)
  }

  // 2. Replay the WAL after the snapshot.
  let lastSeq = snapSeq
  let records = 0
  let bytesRead = 0
  let truncatedTailBytes = 0
  const brokenFiles: string[] = []
  let corruption: RecoveryStats['corruption']
  let tailScan: SegmentScan | undefined
  let tailSegment: { number: number; path: string } | undefined
  let lastProgress = performance.now()

  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!
    const isLast = i === segments.length - 1
    const bytes = readFile(fs, seg.path)
    bytesRead += bytes.length
    const seqBefore = lastSeq
    let stop = false
    const scan = scanSegment(
      bytes,
      (rec) => {
        if (stop || rec.seq <= snapSeq) return
        if (rec.seq !== lastSeq + 1 && mode !== 'salvage') {
          stop = true
          corruption ??= { file: seg.path, offset: rec.offset, reason: `sequence gap: expected ${lastSeq + 1}, found ${rec.seq}`, lastGoodSeq: lastSeq }
          return
        }
        if (rec.type === RECORD_OPS) {
          let ops: Op[]
          try {
            ops = decodeOps(rec.payload)
          } catch (err) {
            stop = true
            corruption ??= { file: seg.path, offset: rec.offset, reason: `undecodable record: ${(err as Error).message}`, lastGoodSeq: lastSeq }
            return
          }
          p.applyOps(ops, rec.seq)
        } else {
          stop = true
          corruption ??= { file: seg.path, offset: rec.offset, reason: `unknown record type ${rec.type}`, lastGoodSeq: lastSeq }
          return
        }
        lastSeq = rec.seq
        records++
        if ((records & 0x3fff) === 0 && performance.now() - lastProgress > 100) {
          lastProgress = performance.now()
          p.onProgress({ phase: 'replay', done: records, total: undefined })
        }
      },
      { mode: mode === 'salvage' ? 'salvage' : 'strict' },
    )
    if (scan.header === undefined) {
      if (isLast && (scan.corruption === undefined || scan.fileSize < SEGMENT_HEADER_SIZE || allZero(bytes))) {
        // Crash while creating the segment: it holds nothing; start it afresh.
        if (bytes.length > 0) brokenFiles.push(keepCopy(fs, seg.path, bytes, 0))
        fs.unlink(seg.path)
        truncatedTailBytes += bytes.length
        continue
      }
      corruption ??= { file: seg.path, offset: 0, reason: 'segment header fails its checksum', lastGoodSeq: lastSeq }
    } else if (scan.corruption !== undefined) {
      corruption ??= { file: seg.path, offset: scan.corruption.offset, reason: scan.corruption.reason, lastGoodSeq: lastSeq }
    } else if (!isLast && scan.tail !== 'clean') {
      // Rotation fsyncs a segment before starting the next: a damaged end here is not a crash tail.
      corruption ??= { file: seg.path, offset: scan.validEnd, reason: 'damaged end of a closed segment', lastGoodSeq: lastSeq }
    }
    if (corruption !== undefined && mode !== 'salvage') {
      if (mode === 'strict') throw corrupt(corruption.file, corruption.offset, corruption.reason, corruption.lastGoodSeq)
      // point-in-time: keep what came before the damage, move the rest aside.
      const cut = corruption.file === seg.path ? Math.min(corruption.offset, scan.validEnd) : scan.validEnd
      if (cut < bytes.length) brokenFiles.push(keepCopy(fs, seg.path, bytes.subarray(cut), cut))
      truncatedTailBytes += bytes.length - cut
      for (const later of segments.slice(i + 1)) {
        const moved = `${later.path}.broken`
        fs.rename(later.path, moved)
        brokenFiles.push(basename(moved))
      }
      if (scan.header !== undefined) {
        tailSegment = seg
        tailScan = { ...scan, validEnd: cut, lastSeq }
      }
      break
    }
    if (isLast && scan.header !== undefined && scan.header.baseSeq > seqBefore && scan.lastSeq === scan.header.baseSeq) {
      // A segment started past the last record with nothing in it: a load that crashed
      // before its snapshot was durable. The load never resolved; start afresh.
      fs.unlink(seg.path)
      continue
    }
    if (isLast && scan.header !== undefined) {
      if (scan.validEnd < scan.fileSize) {
        brokenFiles.push(keepCopy(fs, seg.path, bytes.subarray(scan.validEnd), scan.validEnd))
        truncatedTailBytes += scan.fileSize - scan.validEnd
      }
      tailSegment = seg
      tailScan = scan
    }
    if (corruption !== undefined && mode === 'salvage' && isLast && scan.header === undefined) break
  }

  // 3. Open the WAL for appending: the last segment where it ends, or a new one.
  const opts = p.syncIntervalMs === undefined ? { sync: p.sync } : { sync: p.sync, syncIntervalMs: p.syncIntervalMs }
  let writer: WalWriter
  if (tailSegment !== undefined && tailScan?.header !== undefined) {
    writer = WalWriter.openForAppend(
      fs,
      dir,
      tailSegment.number,
      { salt: tailScan.header.salt, baseSeq: tailScan.header.baseSeq, lastSeq, validEnd: tailScan.validEnd },
      opts,
    )
  } else {
    const next = segments.length > 0 ? segments[segments.length - 1]!.number + 1 : 1
    writer = await WalWriter.create(fs, dir, next, lastSeq, opts)
  }
  if (brokenFiles.length > 0 || removedTemps.length > 0) await fs.fsyncDir(dir)

  return {
    writer,
    lastSeq,
    snapshots: catalog,
    stats: {
      snapshot: snap?.path,
      snapshotSeq: snapSeq,
      snapshotEntries: snapEntries,
      skippedSnapshots,
      segments: segments.length,
      records,
      bytes: bytesRead,
      truncatedTailBytes,
      brokenFiles,
      corruption,
      removedTemps,
      lastSeq,
      timeMs: performance.now() - started,
    },
  }
}

function readFile(fs: Fs, path: string): Buffer {
  try {
    return fs.readFile(path)
  } catch (err) {
    throw new StoreError('KV_IO', `cannot read ${path}`, { cause: err })
  }
}

/** Base seq from a segment header, without verifying records (undefined if unreadable). */
function readBaseSeq(fs: Fs, path: string): number | undefined {
  const scan = scanSegment(readFile(fs, path).subarray(0, 32), () => undefined)
  return scan.header?.baseSeq
}

function allZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false
  return true
}

/** Save bytes about to be cut from `path` next to it; returns the copy's name. */
function keepCopy(fs: Fs, path: string, bytes: Uint8Array, offset: number): string {
  const copy = `${path}.broken-${offset}`
  const fd = fs.open(copy, 'w')
  try {
    let off = 0
    while (off < bytes.length) off += fs.write(fd, bytes, off, bytes.length - off, off)
  } finally {
    fs.close(fd)
  }
  return basename(copy)
}
