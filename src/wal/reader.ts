// Segment scanning and recovery classification (docs/FORMAT.md, "Recovery rules").
//
// A segment is read through a window: the whole buffer for an in-memory scan, or a bounded
// buffer refilled from the file (1 MiB chunks, grown only to the one record frame being
// checked, whose length checkRecordHeader bounds by MAX_PAYLOAD_BYTES). So neither a segment
// over 2 GiB nor a length field read from disk can make the reader allocate without bound.

import type { Fs } from '../fs/fs.js'
import { StoreError } from '../errors.js'
import { listSegments, segmentPath } from './segments.js'
import {
  MAX_PAYLOAD_BYTES,
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
  recordFrameSize,
  type SegmentHeader,
} from './format.js'

/** Bytes read from a segment file at a time (the window grows beyond it only for one larger record). */
export const READ_CHUNK_BYTES = 1024 * 1024

/** One record handed to a scan's `visit` callback. */
export interface WalRecord {
  /** Sequence number. */
  readonly seq: number
  /** Caller-defined type, 1..255. */
  readonly type: number
  /**
   * The payload: a view, not a copy. For {@link scanSegment} it views the scanned bytes; for a
   * file read ({@link readSegment}, {@link scanWal}, {@link SegmentFile}) it views the read
   * buffer, which is reused once `visit` returns. Copy it to keep it.
   */
  readonly payload: Uint8Array
  /** Byte offset of the record header in the segment. */
  readonly offset: number
}

/** What a scan found in one segment. */
export interface SegmentScan {
  /**
   * The verified segment header; `undefined` when the file is shorter than 32 bytes, starts with
   * 32 zero bytes, the header fails verification, or it names another segment than
   * {@link SegmentScanOptions.segment}.
   */
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
export interface SegmentScanOptions {
  /**
   * `'strict'` stops visiting at the first corrupt record; `'salvage'` skips to the next valid
   * record and goes on (and reads records after a damaged segment header using the stored salt).
   * Both report the first corruption.
   *
   * @defaultValue `'strict'`
   */
  mode?: 'strict' | 'salvage'
  /**
   * The segment number the file name gives. A verified header naming another number is then
   * treated like a damaged header: corruption at offset 8, nothing visited in strict mode.
   * Unchecked when omitted.
   */
  segment?: number
}

/** Options of the file-reading scans. */
export interface ReadOptions extends SegmentScanOptions {
  /** @internal Read chunk size (tests use tiny ones to cross chunk boundaries). @defaultValue {@link READ_CHUNK_BYTES} */
  chunkBytes?: number
}

/**
 * A segment's bytes seen through a window.
 *
 * Invariant: `buf[0, filled)` holds the file's bytes `[base, base + filled)`. An in-memory window
 * holds everything; a file window is refilled by {@link Window.load}, which every access goes
 * through, so a payload view handed out earlier may be overwritten by a later load.
 */
class Window {
  buf: Uint8Array
  view: DataView
  base = 0
  filled: number
  readonly size: number
  readonly #fs: Fs | undefined
  readonly #fd: number
  readonly #path: string
  readonly #chunk: number
  /** A load since the last refill needed more than a chunk: keep the grown buffer for the next frame. */
  // Stryker disable next-line BooleanLiteral: the initial value is never read: the first refill reallocates (empty buffer) and then sets #bigUsed
  #bigUsed = false

  // Stryker disable next-line UnaryOperator,StringLiteral: the fd/path defaults belong to in-memory windows, which never read a file (refill throws first)
  constructor(bytes: Uint8Array, size: number, fs?: Fs, fd = -1, path = '', chunk = READ_CHUNK_BYTES) {
    this.buf = bytes
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.filled = bytes.length
    this.size = size
    this.#fs = fs
    this.#fd = fd
    this.#path = path
    this.#chunk = chunk
  }

  /**
   * Make the file's bytes `[off, off + len)` available at `buf[off - base]`.
   *
   * Precondition: `off + len <= size` and `len` is a record frame (bounded by
   * `recordFrameSize(MAX_PAYLOAD_BYTES)`) or at most a chunk.
   */
  load(off: number, len: number): void {
    if (len > this.#chunk) this.#bigUsed = true
    if (off >= this.base && off + len <= this.base + this.filled) return
    this.#refill(off, len)
  }

  /** Bytes read at a time. */
  get chunk(): number {
    return this.#chunk
  }

  /** True when the file's bytes `[from, to)` are all zero; reads at most a chunk at a time. */
  isZero(from: number, to: number): boolean {
    for (let pos = from; pos < to; ) {
      const n = Math.min(this.#chunk, to - pos)
      this.load(pos, n)
      const rel = pos - this.base
      if (!isZero(this.buf, rel, rel + n)) return false
      pos += n
    }
    return true
  }

  #refill(off: number, len: number): void {
    const fs = this.#fs
    // Unreachable for in-memory windows (they hold every byte): a broken precondition.
    // Stryker disable next-line StringLiteral,ArithmeticOperator: unreachable (in-memory windows hold every byte); only the precondition's message
    if (fs === undefined) throw new RangeError(`read of [${off}, ${off + len}) outside ${this.size} bytes`)
    const want = Math.max(len, Math.min(this.#chunk, this.size - off))
    // Grow to one large frame only. Drop back to a chunk once a whole refill went by without
    // needing more, so a large record does not pin memory, yet a run of them is not reallocated
    // per record (a refill for a header then reads the next large frame along with it).
    if (this.buf.length < want || (this.buf.length > this.#chunk && !this.#bigUsed)) {
      this.buf = new Uint8Array(want)
      this.view = new DataView(this.buf.buffer)
    }
    this.#bigUsed = len > this.#chunk
    const end = Math.min(this.buf.length, this.size - off)
    // Invalid until the read completes, so a failed read leaves no stale bytes claimed.
    this.filled = 0
    let got = 0
    while (got < end) {
      let n: number
      try {
        n = fs.read(this.#fd, this.buf, got, end - got, off + got)
      } catch (err) {
        throw new StoreError('KV_IO', `cannot read WAL segment ${this.#path}`, { cause: err })
      }
      // The directory lock keeps other writers out, so a short file here is an I/O fault.
      if (!(n > 0)) throw new StoreError('KV_IO', `WAL segment ${this.#path} ended at ${off + got} while being read (expected ${this.size} bytes)`)
      got += n
    }
    this.base = off
    this.filled = got
  }
}

/**
 * Scan one segment's bytes, calling `visit` for each valid record in order, and classify the end.
 *
 * Applies the recovery rules of docs/FORMAT.md: a torn or zero tail ends the scan quietly; damage
 * followed by a valid record is reported as `corruption`. Never throws on bad data; exceptions
 * from `visit` propagate. O(file size), plus a look-ahead of O(file size) per damaged record
 * (at most one in strict mode).
 */
export function scanSegment(bytes: Uint8Array, visit: (rec: WalRecord) => void, opts?: SegmentScanOptions): SegmentScan {
  return scanWindow(new Window(bytes, bytes.length), visit, opts)
}

/**
 * An open segment file, read in bounded chunks (never whole).
 *
 * Open with {@link SegmentFile.open}; {@link SegmentFile.close} it when done. Memory held is one
 * chunk, or one record frame while a larger record is checked.
 */
export class SegmentFile {
  readonly #fs: Fs
  readonly #fd: number
  readonly #window: Window
  /** Path the file was opened at. */
  readonly path: string

  private constructor(fs: Fs, fd: number, path: string, size: number, chunk: number) {
    this.#fs = fs
    this.#fd = fd
    this.path = path
    this.#window = new Window(new Uint8Array(0), size, fs, fd, path, chunk)
  }

  /**
   * Open `path` for reading.
   *
   * @throws {@link StoreError} `KV_IO` when the file cannot be opened or stat'ed (cause: the fs error).
   * @throws RangeError when `chunkBytes` is not a positive integer.
   */
  static open(fs: Fs, path: string, opts?: ReadOptions): SegmentFile {
    const chunk = opts?.chunkBytes ?? READ_CHUNK_BYTES
    if (!Number.isSafeInteger(chunk) || chunk < 1) throw new RangeError(`chunkBytes must be a positive integer, got ${chunk}`)
    let fd: number
    try {
      fd = fs.open(path, 'r')
    } catch (err) {
      throw new StoreError('KV_IO', `cannot read WAL segment ${path}`, { cause: err })
    }
    let size: number
    try {
      size = fs.fstat(fd).size
    } catch (err) {
      closeQuietly(fs, fd)
      throw new StoreError('KV_IO', `cannot stat WAL segment ${path}`, { cause: err })
    }
    return new SegmentFile(fs, fd, path, size, chunk)
  }

  /** File size when opened. */
  get size(): number {
    return this.#window.size
  }

  /** The segment header, or why it is unusable (`'short'` below 32 bytes; see `decodeSegmentHeader`). */
  header(): SegmentHeader | string {
    const w = this.#window
    if (w.size < SEGMENT_HEADER_SIZE) return 'short'
    w.load(0, SEGMENT_HEADER_SIZE)
    return decodeSegmentHeader(w.buf)
  }

  /** {@link scanSegment} the file. Payloads are valid only during `visit`. */
  scan(visit: (rec: WalRecord) => void, opts?: SegmentScanOptions): SegmentScan {
    return scanWindow(this.#window, visit, opts)
  }

  /** True when bytes `[from, to)` (clamped to the file) are all zero. */
  isZero(from: number, to = this.size): boolean {
    return this.#window.isZero(from, Math.min(to, this.size))
  }

  /** Call `sink` with bytes `[from, to)` of the file in order, a chunk at a time (views valid during the call). */
  forEachChunk(from: number, to: number, sink: (chunk: Uint8Array) => void): void {
    const w = this.#window
    const end = Math.min(to, w.size)
    for (let pos = from; pos < end; ) {
      const n = Math.min(w.chunk, end - pos)
      w.load(pos, n)
      const rel = pos - w.base
      sink(w.buf.subarray(rel, rel + n))
      pos += n
    }
  }

  /** Close the file. @throws {@link StoreError} `KV_IO` when close fails. */
  close(): void {
    try {
      this.#fs.close(this.#fd)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot close WAL segment ${this.path}`, { cause: err })
    }
  }
}

function closeQuietly(fs: Fs, fd: number): void {
  try {
    fs.close(fd)
  } catch {
    // Already failing; the first error is the one to report.
  }
}

/**
 * Read the segment file at `path` in chunks and {@link scanSegment} it.
 *
 * The payloads passed to `visit` are views into a reused read buffer: valid only during `visit`.
 *
 * @throws {@link StoreError} `KV_IO` when the file cannot be read (cause: the fs error).
 */
export function readSegment(fs: Fs, path: string, visit: (rec: WalRecord) => void, opts?: ReadOptions): SegmentScan {
  const file = SegmentFile.open(fs, path, opts)
  let scan: SegmentScan
  try {
    scan = file.scan(visit, opts)
  } catch (err) {
    try {
      file.close()
    } catch {
      // Keep the scan's error.
    }
    throw err
  }
  file.close()
  return scan
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
 * Segments are streamed (see {@link readSegment}): payloads are valid only during `visit`.
 *
 * @throws {@link StoreError} `KV_IO` when the directory or a segment cannot be read.
 */
export function scanWal(fs: Fs, dir: string, visit: (rec: WalRecord, segment: number) => void, opts?: ReadOptions): WalScan {
  const salvage = opts?.mode === 'salvage'
  const numbers = listSegments(fs, dir)
  const out: WalScan = { segments: [], lastSeq: -1 }
  let prevLast: number | undefined
  for (let i = 0; i < numbers.length; i++) {
    const segment = numbers[i] as number
    const path = segmentPath(dir, segment)
    const isNewest = i === numbers.length - 1
    const file = SegmentFile.open(fs, path, opts)
    let scan: SegmentScan
    let problem: { offset: number; reason: string } | undefined
    try {
      const header = file.header()
      // Stryker disable next-line ConditionalExpression: for a string, header.segment is undefined and never equals a segment number
      if (typeof header !== 'string' && header.segment === segment && prevLast !== undefined && header.baseSeq !== prevLast) {
        problem = { offset: 16, reason: `segment starts after seq ${header.baseSeq} but the previous one ends at ${prevLast}` }
      }
      if (problem !== undefined && !salvage) {
        out.corruption = { segment, path, ...problem }
        break
      }
      scan = file.scan((rec) => visit(rec, segment), { ...opts, segment })
    } finally {
      file.close()
    }
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

function tailOf(w: Window, from: number): SegmentScan['tail'] {
  if (from === w.size) return 'clean'
  return w.isZero(from, w.size) ? 'zeros' : 'torn'
}

function scanWindow(w: Window, visit: (rec: WalRecord) => void, opts?: SegmentScanOptions): SegmentScan {
  const salvage = opts?.mode === 'salvage'
  const size = w.size
  if (size < SEGMENT_HEADER_SIZE) {
    return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: tailOf(w, 0) }
  }
  w.load(0, SEGMENT_HEADER_SIZE)
  const decoded = decodeSegmentHeader(w.buf)
  const storedSalt = w.view.getUint32(12, true)
  let damage: string | undefined
  if (typeof decoded === 'string') damage = decoded
  else if (opts?.segment !== undefined && decoded.segment !== opts.segment) damage = `segment header names segment ${decoded.segment}, not ${opts.segment}`
  if (damage !== undefined) {
    // The header is synced before any record is appended, so a header that fails its checks with
    // nothing after it is a creation torn by a crash; with data after it (or a verified header
    // naming another segment: a misplaced file), the header itself is wrong.
    const misnamed = typeof decoded !== 'string'
    if (!misnamed && w.isZero(SEGMENT_HEADER_SIZE, size)) {
      return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: decoded === 'zeroed' ? 'zeros' : 'torn' }
    }
    const corruption = { offset: misnamed ? 8 : 0, reason: decoded === 'zeroed' ? 'zeroed segment header followed by data' : damage }
    if (!salvage) {
      return { header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: size, tail: 'torn', corruption }
    }
    const scan = scanRecords(w, storedSalt, -1, true, visit, true)
    scan.header = undefined
    scan.corruption = corruption
    if (scan.records === 0) scan.validEnd = 0
    return scan
  }
  const header = decoded as SegmentHeader
  const scan = scanRecords(w, header.salt, header.baseSeq, false, visit, salvage)
  scan.header = { segment: header.segment, salt: header.salt, baseSeq: header.baseSeq }
  return scan
}

function scanRecords(
  w: Window,
  salt: number,
  baseSeq: number,
  anyFirstSeq: boolean,
  visit: (rec: WalRecord) => void,
  salvage: boolean,
): SegmentScan {
  const size = w.size
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
    if (size - off < RECORD_HEADER_SIZE) {
      tail = tailOf(w, off)
      break
    }
    let reason: string
    w.load(off, RECORD_HEADER_SIZE)
    let rel = off - w.base
    const len = checkRecordHeader(w.buf, w.view, rel, salt)
    if (len >= 0) {
      const seq = readRecordSeq(w.view, rel)
      if (acceptAnySeq || seq === lastSeq + 1) {
        const frame = recordFrameSize(len)
        // A verified header proves the length, so a frame past EOF is a torn append (rule 3).
        // Checked before the frame is loaded: the length never sizes a read beyond the file.
        if (off + frame > size) {
          tail = 'torn'
          break
        }
        w.load(off, frame)
        rel = off - w.base
        const checked = checkRecordBody(w.buf, w.view, rel, len, salt)
        // Stryker disable next-line EqualityOperator: checkRecordBody returns a frame size (>= 24) or a negative defect, never 0
        if (checked > 0) {
          const start = rel + RECORD_HEADER_SIZE
          visit({ seq, type: readRecordType(w.buf, rel), payload: w.buf.subarray(start, start + len), offset: off })
          records++
          lastSeq = seq
          acceptAnySeq = false
          off += frame
          continue
        }
        reason = defectReason(checked)
      } else {
        reason = `sequence ${seq} where ${lastSeq + 1} was expected`
      }
    } else {
      reason = defectReason(len)
    }
    if (w.isZero(off, size)) {
      tail = 'zeros'
      break
    }
    const next = findValidRecord(w, off + RECORD_ALIGN, salt, lastSeq)
    // Stryker disable next-line EqualityOperator: findValidRecord returns an offset >= 40 or -1, never 0
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
 * Each offset is screened by cheap field checks before any CRC is computed; a frame is loaded
 * only for a header whose CRC verifies and whose length fits the file and MAX_PAYLOAD_BYTES.
 * O(size - from).
 */
function findValidRecord(w: Window, from: number, salt: number, afterSeq: number): number {
  const size = w.size
  for (let o = from; o + RECORD_HEADER_SIZE <= size; o += RECORD_ALIGN) {
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: extra load() calls only; load() returns at once for a range already in the window
    if (o < w.base || o + RECORD_HEADER_SIZE > w.base + w.filled) w.load(o, RECORD_HEADER_SIZE)
    const b = w.buf
    const r = o - w.base
    // Stryker disable next-line ConditionalExpression,LogicalOperator: cheap pre-screen; checkRecordHeader below rejects the same type/flags/rsv values before any frame is loaded
    if (b[r + 16] === 0 || b[r + 17] !== 0 || b[r + 18] !== 0 || b[r + 19] !== 0) continue
    const len = w.view.getUint32(r + 4, true)
    const frame = recordFrameSize(len)
    // Stryker disable next-line ConditionalExpression: dropping `len > MAX_PAYLOAD_BYTES` is caught by checkRecordHeader (DEFECT_TOO_LARGE); the frame-past-EOF operand is killed by test/unit/wal-reader-mutants.test.ts
    if (len > MAX_PAYLOAD_BYTES || o + frame > size) continue
    if (readRecordSeq(w.view, r) <= afterSeq) continue
    if (checkRecordHeader(b, w.view, r, salt) < 0) continue
    w.load(o, frame)
    if (checkRecordBody(w.buf, w.view, o - w.base, len, salt) > 0) return o
  }
  return -1
}
