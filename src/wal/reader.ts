// Segment scanning and recovery classification (docs/FORMAT.md, "Recovery rules").

import type { Fs } from '../fs/fs.js'
import { StoreError } from '../errors.js'
import { listSegments, segmentPath } from './segments.js'
import {
  DEFECT_SHORT_FRAME,
  DEFECT_SHORT_HEADER,
  RECORD_ALIGN,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  checkRecordBody,
  checkRecordHeader,
  decodeSegmentHeader,
  defectReason,
  isZero,
  readRecordSeq,
  readRecordType,
} from './format.js'

/** One record handed to a scan's `visit` callback. */
export interface WalRecord {
  /** Sequence number. */
  readonly seq: number
  /** Caller-defined type, 1..255. */
  readonly type: number
  /** The payload: a view into the scanned bytes, not a copy. Copy it to keep it beyond the buffer's life. */
  readonly payload: Uint8Array
  /** Byte offset of the record header in the segment. */
  readonly offset: number
}

/** What a scan found in one segment. */
export interface SegmentScan {
  /** The verified segment header; `undefined` when the file is shorter than 32 bytes, starts with 32 zero bytes, or the header fails verification. */
  header: { segment: number; salt: number; baseSeq: number } | undefined
  /** Seq of the last valid record visited; the header's `baseSeq` when there is none; `-1` when there is no header and no record. */
  lastSeq: number
  /** Number of records visited. */
  records: number
  /** Offset just past the last valid record (padding included); the segment header's end when there is none; 0 without a header. */
  validEnd: number
  /** Size of the scanned bytes. */
  fileSize: number
  /**
   * What follows `validEnd`: `'clean'` nothing, `'zeros'` only zero bytes, `'torn'` anything else
   * (a torn append, or the damage where a strict scan stopped).
   */
  tail: 'clean' | 'torn' | 'zeros'
  /** Set when damage is followed by a valid record (mid-file corruption) or the segment header is damaged; the first one found. */
  corruption?: { offset: number; reason: string }
}

/** How a scan treats mid-file corruption. */
export interface ScanOptions {
  /**
   * `'strict'` stops visiting at the first corrupt record; `'salvage'` skips to the next valid
   * record and goes on (and reads records after a damaged segment header using the stored salt).
   * Both report the first corruption.
   *
   * @defaultValue `'strict'`
   */
  mode?: 'strict' | 'salvage'
}

/**
 * Scan one segment's bytes, calling `visit` for each valid record in order, and classify the end.
 *
 * Applies the recovery rules of docs/FORMAT.md: a torn or zero tail ends the scan quietly; damage
 * followed by a valid record is reported as `corruption`. Never throws on bad data; exceptions
 * from `visit` propagate. O(file size), plus a look-ahead of O(file size) per damaged record
 * (at most one in strict mode).
 */
export function scanSegment(bytes: Uint8Array, visit: (rec: WalRecord) => void, opts?: ScanOptions): SegmentScan {
  const salvage = opts?.mode === 'salvage'
  const size = bytes.length
  if (size < SEGMENT_HEADER_SIZE) {
    return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: tailOf(bytes, 0) }
  }
  const header = decodeSegmentHeader(bytes)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (typeof header === 'string') {
    // The header is synced before any record is appended, so a bad header with nothing after it
    // is a creation torn by a crash; with data after it, the header itself was damaged.
    if (isZero(bytes, SEGMENT_HEADER_SIZE, size)) {
      return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: header === 'zeroed' ? 'zeros' : 'torn' }
    }
    const corruption = { offset: 0, reason: header === 'zeroed' ? 'zeroed segment header followed by data' : header }
    if (!salvage) {
      return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: 'torn', corruption }
    }
    const scan = scanRecords(bytes, view, view.getUint32(12, true), -1, true, visit, true)
    scan.header = undefined
    scan.corruption = corruption
    if (scan.records === 0) scan.validEnd = 0
    return scan
  }
  const scan = scanRecords(bytes, view, header.salt, header.baseSeq, false, visit, salvage)
  scan.header = { segment: header.segment, salt: header.salt, baseSeq: header.baseSeq }
  return scan
}

/**
 * Read the segment file at `path` with `fs.readFile` and {@link scanSegment} it.
 *
 * The payloads passed to `visit` are views into the file's buffer.
 *
 * @throws {@link StoreError} `KV_IO` when the file cannot be read (cause: the fs error).
 */
export function readSegment(fs: Fs, path: string, visit: (rec: WalRecord) => void, opts?: ScanOptions): SegmentScan {
  let bytes: Buffer
  try {
    bytes = fs.readFile(path)
  } catch (err) {
    throw new StoreError('KV_IO', `cannot read WAL segment ${path}`, { cause: err })
  }
  return scanSegment(bytes, visit, opts)
}

/** One segment as seen by {@link scanWal}. */
export interface WalSegmentScan {
  readonly segment: number
  readonly path: string
  readonly scan: SegmentScan
}

/** What {@link scanWal} found across all segments of a directory. */
export interface WalScan {
  /** The segments scanned, ascending; in strict mode the list ends at the first corrupt one. */
  segments: WalSegmentScan[]
  /** Seq of the last record visited, else the newest verified segment header's `baseSeq`, else -1. */
  lastSeq: number
  /** The first corruption, located by segment file and offset. */
  corruption?: { segment: number; path: string; offset: number; reason: string }
}

/**
 * Scan every segment in `dir` in order, calling `visit` for each valid record, and check the chain between segments.
 *
 * On top of {@link scanSegment}'s rules (docs/FORMAT.md, rule 7): a segment's header must name
 * its own number and its `baseSeq` must equal the previous segment's last seq; only the newest
 * segment may have a torn tail or a missing header (a rotation torn by a crash). Anything else
 * is reported as `corruption`. In strict mode nothing after the first corruption is visited.
 * The first segment's `baseSeq` is not checked: older segments may have been dropped after a
 * snapshot, so the caller compares it with the snapshot's seq (and skips seqs it already has).
 *
 * @throws {@link StoreError} `KV_IO` when the directory or a segment cannot be read.
 */
export function scanWal(fs: Fs, dir: string, visit: (rec: WalRecord, segment: number) => void, opts?: ScanOptions): WalScan {
  const salvage = opts?.mode === 'salvage'
  const numbers = listSegments(fs, dir)
  const out: WalScan = { segments: [], lastSeq: -1 }
  let prevLast: number | undefined
  for (let i = 0; i < numbers.length; i++) {
    const segment = numbers[i] as number
    const path = segmentPath(dir, segment)
    const isNewest = i === numbers.length - 1
    let bytes: Buffer
    try {
      bytes = fs.readFile(path)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot read WAL segment ${path}`, { cause: err })
    }
    let problem: { offset: number; reason: string } | undefined
    const header = bytes.length >= SEGMENT_HEADER_SIZE ? decodeSegmentHeader(bytes) : 'short'
    if (typeof header !== 'string') {
      if (header.segment !== segment) problem = { offset: 8, reason: `segment header names segment ${header.segment}` }
      else if (prevLast !== undefined && header.baseSeq !== prevLast) {
        problem = { offset: 16, reason: `segment starts after seq ${header.baseSeq} but the previous one ends at ${prevLast}` }
      }
    }
    if (problem !== undefined && !salvage) {
      out.corruption = { segment, path, ...problem }
      break
    }
    const scan = scanSegment(bytes, (rec) => visit(rec, segment), opts)
    out.segments.push({ segment, path, scan })
    problem ??= scan.corruption
    if (problem === undefined && !isNewest) {
      if (scan.header === undefined) problem = { offset: 0, reason: 'segment without a valid header before the newest segment' }
      else if (scan.tail === 'torn') problem = { offset: scan.validEnd, reason: 'torn tail before the newest segment' }
    }
    if (scan.header !== undefined || scan.records > 0) {
      prevLast = scan.lastSeq
      out.lastSeq = scan.lastSeq
    }
    if (problem !== undefined) {
      out.corruption ??= { segment, path, ...problem }
      if (!salvage) break
    }
  }
  return out
}

function tailOf(bytes: Uint8Array, from: number): SegmentScan['tail'] {
  if (from === bytes.length) return 'clean'
  return isZero(bytes, from, bytes.length) ? 'zeros' : 'torn'
}

function scanRecords(
  bytes: Uint8Array,
  view: DataView,
  salt: number,
  baseSeq: number,
  anyFirstSeq: boolean,
  visit: (rec: WalRecord) => void,
  salvage: boolean,
): SegmentScan {
  const size = bytes.length
  let off = SEGMENT_HEADER_SIZE
  let lastSeq = baseSeq
  let acceptAnySeq = anyFirstSeq
  let records = 0
  let corruption: SegmentScan['corruption']
  let tail: SegmentScan['tail']
  for (;;) {
    if (off === size) {
      tail = 'clean'
      break
    }
    let reason: string
    const len = checkRecordHeader(bytes, view, off, salt)
    if (len === DEFECT_SHORT_HEADER) {
      tail = tailOf(bytes, off)
      break
    }
    if (len >= 0) {
      const seq = readRecordSeq(view, off)
      if (acceptAnySeq || seq === lastSeq + 1) {
        const frame = checkRecordBody(bytes, view, off, len, salt)
        if (frame > 0) {
          const start = off + RECORD_HEADER_SIZE
          visit({ seq, type: readRecordType(bytes, off), payload: bytes.subarray(start, start + len), offset: off })
          records++
          lastSeq = seq
          acceptAnySeq = false
          off += frame
          continue
        }
        // A verified header proves the length, so a frame past EOF is a torn append (rule 3).
        if (frame === DEFECT_SHORT_FRAME) {
          tail = 'torn'
          break
        }
        reason = defectReason(frame)
      } else {
        reason = `sequence ${seq} where ${lastSeq + 1} was expected`
      }
    } else {
      reason = defectReason(len)
    }
    if (isZero(bytes, off, size)) {
      tail = 'zeros'
      break
    }
    const next = findValidRecord(bytes, view, off + RECORD_ALIGN, salt, lastSeq)
    if (next < 0) {
      // Damage with nothing valid after it: what a crash mid-append leaves (rule 2).
      tail = 'torn'
      break
    }
    corruption ??= { offset: off, reason }
    if (!salvage) {
      tail = 'torn'
      break
    }
    off = next
    acceptAnySeq = true
  }
  // Invariant: `off` is the end of the last valid record (or of the segment header).
  const scan: SegmentScan = { header: undefined, lastSeq, records, validEnd: off, fileSize: size, tail }
  if (corruption !== undefined) scan.corruption = corruption
  return scan
}

/**
 * Offset of the first fully valid record at an aligned offset >= `from` with seq > `afterSeq`, or -1.
 *
 * Each offset is screened by cheap field checks before any CRC is computed. O(size - from).
 */
function findValidRecord(bytes: Uint8Array, view: DataView, from: number, salt: number, afterSeq: number): number {
  const size = bytes.length
  for (let o = from; o + RECORD_HEADER_SIZE <= size; o += RECORD_ALIGN) {
    if (bytes[o + 16] === 0 || bytes[o + 17] !== 0 || bytes[o + 18] !== 0 || bytes[o + 19] !== 0) continue
    if (o + RECORD_HEADER_SIZE + view.getUint32(o + 4, true) > size) continue
    if (readRecordSeq(view, o) <= afterSeq) continue
    const len = checkRecordHeader(bytes, view, o, salt)
    if (len < 0) continue
    if (checkRecordBody(bytes, view, o, len, salt) > 0) return o
  }
  return -1
}
