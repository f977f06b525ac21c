// Following one WAL segment while another process appends to it. Unlike recovery, a
// follower may see a record that is still being written, so an incomplete or unverified
// frame at the end of the file means "not yet", never "torn": the tailer waits and reads it
// again, and it never truncates, renames or writes anything.
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import {
  checkRecordBody,
  checkRecordHeader,
  decodeSegmentHeader,
  DEFECT_SHORT_FRAME,
  DEFECT_SHORT_HEADER,
  defectReason,
  readRecordSeq,
  readRecordType,
  RECORD_HEADER_SIZE,
  recordFrameSize,
  SEGMENT_HEADER_SIZE,
  type SegmentHeader,
} from './format.js'
import { READ_CHUNK_BYTES, type WalRecord } from './reader.js'
import { segmentPath } from './segments.js'

/** How a {@link SegmentTail.poll} ended. */
export type TailState =
  /** Every whole record in the file was delivered; the rest (if any) is not written yet. */
  | { readonly kind: 'caught-up'; readonly pendingBytes: number; readonly reason: string | undefined }
  /** The file is shorter than what was read from it: the writer cut it (recovery or a failed write). */
  | { readonly kind: 'shrunk'; readonly size: number }
  /** A verified record does not continue the sequence: the file no longer holds what was read. */
  | { readonly kind: 'diverged'; readonly expected: number; readonly found: number; readonly offset: number }

/**
 * One segment file opened for following: delivers every whole, verified record after the
 * last one delivered, each exactly once and in order.
 *
 * The descriptor stays open, so a segment the writer deletes (compaction) can still be
 * read to its end. Memory held: one read chunk, or one record frame while a larger record
 * is read.
 */
export class SegmentTail {
  readonly #fs: Fs
  readonly #fd: number
  readonly segment: number
  readonly path: string
  readonly header: SegmentHeader
  /** File offset just past the last record delivered. */
  #offset = SEGMENT_HEADER_SIZE
  /** Seq of the last record delivered (the header's base seq before the first). */
  #lastSeq: number
  #buf = new Uint8Array(READ_CHUNK_BYTES)
  #closed = false

  private constructor(fs: Fs, fd: number, segment: number, path: string, header: SegmentHeader) {
    this.#fs = fs
    this.#fd = fd
    this.segment = segment
    this.path = path
    this.header = header
    this.#lastSeq = header.baseSeq
  }

  /**
   * Open segment `segment` of `dir` for following.
   *
   * Resolves `'missing'` when the file does not exist (deleted by a compaction) and
   * `'pending'` when its header is not complete yet (the writer is creating it).
   *
   * @throws {@link StoreError} `KV_CORRUPT` when a complete header is damaged or names
   *   another segment; `KV_IO` when the file cannot be read.
   */
  static open(fs: Fs, dir: string, segment: number): SegmentTail | 'missing' | 'pending' {
    const path = segmentPath(dir, segment)
    let fd: number
    try {
      fd = fs.open(path, 'r')
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return 'missing'
      throw new StoreError('KV_IO', `cannot read WAL segment ${path}`, { cause: err })
    }
    try {
      const head = new Uint8Array(SEGMENT_HEADER_SIZE)
      const n = readFully(fs, fd, head, 0, path)
      if (n < SEGMENT_HEADER_SIZE) {
        fs.close(fd)
        return 'pending'
      }
      const header = decodeSegmentHeader(head)
      if (typeof header === 'string') {
        fs.close(fd)
        // The writer syncs a new segment's header before the segment is used, but a reader
        // can still catch the moment between create and write: zeros are "not yet".
        if (header === 'zeroed') return 'pending'
        throw new StoreError('KV_CORRUPT', `${path}: ${header}`)
      }
      if (header.segment !== segment) {
        fs.close(fd)
        throw new StoreError('KV_CORRUPT', `${path}: header names segment ${header.segment}`)
      }
      return new SegmentTail(fs, fd, segment, path, header)
    } catch (err) {
      try {
        fs.close(fd)
      } catch {
        // already closed above, or closing failed too: the first error is the one to report
      }
      throw err
    }
  }

  /** Seq of the last record delivered; the header's base seq before the first. */
  get lastSeq(): number {
    return this.#lastSeq
  }

  /** File offset just past the last record delivered. */
  get offset(): number {
    return this.#offset
  }

  /**
   * Deliver the whole, verified records written since the last poll, in order, stopping
   * early after `maxRecords`.
   *
   * `visit` gets a payload view valid only during the call. A frame that is incomplete or
   * does not verify ends the poll as `caught-up` with its reason: it may still be being
   * written. The caller decides when such bytes stop being "not yet" (the segment is sealed
   * once a later segment exists).
   *
   * @throws {@link StoreError} `KV_IO` when the file cannot be read; whatever `visit` throws.
   */
  poll(visit: (rec: WalRecord) => void, maxRecords = Infinity): TailState {
    if (this.#closed) throw new StoreError('KV_CLOSED', `${this.path} is closed`)
    const fs = this.#fs
    let size: number
    try {
      size = fs.fstat(this.#fd).size
    } catch (err) {
      throw new StoreError('KV_IO', `cannot stat WAL segment ${this.path}`, { cause: err })
    }
    if (size < this.#offset) return { kind: 'shrunk', size }
    const salt = this.header.salt
    let delivered = 0
    while (delivered < maxRecords) {
      const off = this.#offset
      const left = size - off
      if (left < RECORD_HEADER_SIZE) return caughtUp(left, left === 0 ? undefined : defectReason(DEFECT_SHORT_HEADER))
      // Read what is there, up to a chunk; a larger frame is read whole once its header verified.
      let have = this.#fill(off, Math.min(left, this.#buf.length))
      let bytes = this.#buf.subarray(0, have)
      let view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      let rel = 0
      while (delivered < maxRecords) {
        const len = checkRecordHeader(bytes, view, rel, salt)
        if (len === DEFECT_SHORT_HEADER) break
        if (len < 0) return caughtUp(size - (off + rel), defectReason(len))
        const frame = recordFrameSize(len)
        if (off + rel + frame > size) return caughtUp(size - (off + rel), defectReason(DEFECT_SHORT_FRAME))
        if (rel + frame > have) {
          if (rel > 0) break // refill from this record on
          this.#grow(frame)
          have = this.#fill(off, frame)
          bytes = this.#buf.subarray(0, have)
          view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
        }
        const body = checkRecordBody(bytes, view, rel, len, salt)
        if (body < 0) return caughtUp(size - (off + rel), defectReason(body))
        const seq = readRecordSeq(view, rel)
        if (seq !== this.#lastSeq + 1) return { kind: 'diverged', expected: this.#lastSeq + 1, found: seq, offset: off + rel }
        visit({ seq, type: readRecordType(bytes, rel), payload: bytes.subarray(rel + RECORD_HEADER_SIZE, rel + RECORD_HEADER_SIZE + len), offset: off + rel })
        this.#lastSeq = seq
        rel += frame
        this.#offset = off + rel
        delivered++
        if (off + rel >= size) return caughtUp(0, undefined)
      }
      if (this.#buf.length > READ_CHUNK_BYTES) this.#buf = new Uint8Array(READ_CHUNK_BYTES)
    }
    return caughtUp(size - this.#offset, undefined)
  }

  /** Close the descriptor; later polls throw. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    try {
      this.#fs.close(this.#fd)
    } catch {
      // A follower only reads: nothing is lost when a close fails.
    }
  }

  #grow(frame: number): void {
    if (this.#buf.length < frame) this.#buf = new Uint8Array(frame)
  }

  /** Read `[off, off + len)` into the buffer's start; returns the bytes read (fewer at EOF). */
  #fill(off: number, len: number): number {
    return readFully(this.#fs, this.#fd, this.#buf.subarray(0, len), off, this.path)
  }
}

function caughtUp(pendingBytes: number, reason: string | undefined): TailState {
  return { kind: 'caught-up', pendingBytes, reason }
}

/** Read into all of `buf` from `position`; returns the bytes read (fewer when the file ends). */
function readFully(fs: Fs, fd: number, buf: Uint8Array, position: number, path: string): number {
  let got = 0
  while (got < buf.length) {
    let n: number
    try {
      n = fs.read(fd, buf, got, buf.length - got, position + got)
    } catch (err) {
      throw new StoreError('KV_IO', `cannot read WAL segment ${path}`, { cause: err })
    }
    if (!(n > 0)) break
    got += n
  }
  return got
}
