// Binary snapshot format.
//
// v1 (the first kvstore format, read only; all fields in the byte order of the magic):
//   magic u32 = 0x4B56DB | version u32 = 1 | timestamp u64 (unix seconds) | count u32
//   count × (key length u32, key UTF-8, value length u32, value UTF-8)
// v2 (written, little-endian; same 20-byte header prefix):
//   magic u32 | version u32 = 2 | timestamp u64 (unix ms) | count u32 | seq u64
//   count × (key: u32 length + UTF-8, value: codec/value.ts tag + data,
//            expiresAt f64 (ms, 0 = none), version f64)
//   crc u32 = crc32 (zlib) of every byte before it
// Either may be wrapped whole in gzip or brotli.
//
// Reading streams through a window that holds the entry being parsed. Every length is
// checked against the limits before the window grows for it; a retry after a short
// window at least doubles it, so one big entry costs O(its size) to assemble.

import { crc32 } from 'node:zlib'
import { ByteReader, ByteWriter } from '../codec/bytes.js'
import { decodeString, decodeValue, encodeValue } from '../codec/value.js'
import { StoreError } from '../errors.js'
import type { Fs } from '../fs/fs.js'
import {
  checkExpiresAt,
  checkTimestamp,
  checkVersion,
  DEFAULT_PAUSE_EVERY,
  FLUSH_BYTES,
  type ResolvedLimits,
  resolveLimits,
  type SnapshotEntry,
  type SnapshotFormat,
  type SnapshotMeta,
  type SnapshotReadOptions,
  type SnapshotReadResult,
  type SnapshotWriteOptions,
  showValue,
} from './format.js'
import { ChunkSink, readChunks, readHead, sniff } from './stream.js'

/** Binary snapshot magic number (as a u32). */
export const BINARY_MAGIC = 0x4b56db
/** The binary version this code writes. */
export const BINARY_VERSION = 2

const V1_HEADER_BYTES = 20
const V2_HEADER_BYTES = 28
const EMPTY = Buffer.alloc(0)

/**
 * The binary snapshot format: compact, typed, CRC-checked (v2); reads version-1 files (the first format) in
 * either byte order.
 *
 * `read` verifies the v2 CRC trailer before calling `visit`; entries come in file order.
 * Keys, versions, expiry times and value lengths are checked against the limits whatever
 * the CRC says (a file can be hand-made with a valid CRC).
 */
export const binarySnapshot: SnapshotFormat = {
  name: 'binary',
  write: writeBinary,
  read: readBinary,
}

async function writeBinary(fs: Fs, fd: number, meta: SnapshotMeta, entries: Iterable<SnapshotEntry>, opts: SnapshotWriteOptions = {}): Promise<{ bytes: number }> {
  const sink = new ChunkSink(fs, fd, opts.compress)
  try {
    const pause = opts.pause
    const every = opts.pauseEvery ?? DEFAULT_PAUSE_EVERY
    const w = new ByteWriter(FLUSH_BYTES * 2)
    w.u32(BINARY_MAGIC)
    w.u32(BINARY_VERSION)
    w.u64(meta.timestamp)
    w.u32(meta.count)
    w.u64(meta.seq)
    let crc = 0
    let n = 0
    for (const e of entries) {
      w.string(e.key)
      encodeValue(w, e.value)
      w.f64(e.expiresAt)
      w.f64(e.version)
      n++
      if (w.length >= FLUSH_BYTES) {
        const chunk = w.finish()
        crc = crc32(chunk, crc)
        await sink.write(chunk)
        w.reset()
      }
      if (pause !== undefined && n % every === 0) await pause()
    }
    if (n !== meta.count) throw new StoreError('KV_INVALID_ARGUMENT', `snapshot meta.count is ${meta.count} but ${n} entries were given`)
    crc = crc32(w.finish(), crc)
    w.u32(crc)
    await sink.write(w.finish())
    return { bytes: await sink.end() }
  } catch (err) {
    sink.destroy()
    throw err
  }
}

/**
 * A window over a chunk stream: `buf` holds the bytes from stream offset `base` on.
 * Bytes are dropped only when the parser has consumed them (`onDrop` sees each once).
 */
class Window {
  buf: Buffer = EMPTY
  base = 0
  readonly #it: AsyncIterator<Buffer>
  readonly #onDrop: (consumed: Buffer) => void

  constructor(it: AsyncIterator<Buffer>, onDrop: (consumed: Buffer) => void) {
    this.#it = it
    this.#onDrop = onDrop
  }

  /**
   * Drop bytes before `from` and read until `want` (at least `need`) bytes follow it, or
   * the stream ends; false when fewer than `need` bytes follow.
   */
  async fill(from: number, need: number, want = need): Promise<boolean> {
    if (from > 0) this.#onDrop(this.buf.subarray(0, from))
    const parts: Buffer[] = [this.buf.subarray(from)]
    let have = this.buf.length - from
    this.base += from
    // Stryker disable next-line EqualityOperator,ConditionalExpression: reading only up to `need` gives the same bytes in more rounds (want only sizes the reads)
    while (have < want) {
      const r = await this.#it.next()
      if (r.done === true) break
      parts.push(r.value)
      have += r.value.length
    }
    this.buf = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have)
    return have >= need
  }

  /** True when nothing follows the current buffer. */
  async atEnd(): Promise<boolean> {
    for (;;) {
      const r = await this.#it.next()
      if (r.done === true) return true
      if (r.value.length > 0) {
        this.buf = Buffer.concat([this.buf, r.value])
        return false
      }
    }
  }
}

/** A snapshot's entries as parallel arrays, in file order. */
export interface SnapshotColumns {
  keys: string[]
  vals: unknown[]
  vers: number[]
  exps: number[]
  /** Whether any entry has an expiry. */
  anyExpiry: boolean
}

async function readBinary(fs: Fs, path: string, visit: (e: SnapshotEntry) => void, opts?: SnapshotReadOptions): Promise<SnapshotReadResult> {
  const { columns, result } = await readBinaryColumns(fs, path, opts)
  const { keys, vals, vers, exps } = columns
  for (let i = 0; i < keys.length; i++) visit({ key: keys[i] as string, value: vals[i], expiresAt: exps[i] as number, version: vers[i] as number })
  return result
}

/**
 * Read a binary snapshot into parallel arrays: what loading wants, without an object per
 * entry. The same checks as `binarySnapshot.read`: nothing is returned unless the whole file
 * (and its CRC) checked out. @throws {@link StoreError} `KV_CORRUPT` on damage; `KV_IO`.
 */
export async function readBinaryColumns(
  fs: Fs,
  path: string,
  opts?: SnapshotReadOptions,
  onCount?: (decoded: number) => void,
): Promise<{ columns: SnapshotColumns; result: SnapshotReadResult }> {
  const limits = resolveLimits(opts)
  const { compression } = sniff(readHead(fs, path))
  const where = compression === undefined ? 'byte offset' : `${compression}-decompressed byte offset`
  const corrupt = (offset: number, why: string, cause?: unknown): StoreError =>
    new StoreError('KV_CORRUPT', `${path}: damaged binary snapshot at ${where} ${offset}: ${why}`, cause === undefined ? undefined : { cause })
  const chunks = readChunks(fs, path, compression)
  let crc = 0
  const win = new Window(chunks, (consumed) => {
    crc = crc32(consumed, crc)
  })
  let decoded: { columns: SnapshotColumns; result: SnapshotReadResult }
  try {
    decoded = await decodeFile(win, limits, where, corrupt, () => crc, onCount)
  } catch (err) {
    if (err instanceof StoreError) throw err
    // Whatever a decoder throws on bytes it did not expect (RangeError, TypeError …) is damage.
    throw corrupt(win.base, (err as Error)?.message ?? String(err), err)
  } finally {
    await chunks.return()
  }
  return decoded
}

type Corrupt = (offset: number, why: string, cause?: unknown) => StoreError

async function decodeFile(
  win: Window,
  limits: ResolvedLimits,
  where: string,
  corrupt: Corrupt,
  crcSoFar: () => number,
  onCount: ((decoded: number) => void) | undefined,
): Promise<{ columns: SnapshotColumns; result: SnapshotReadResult }> {
  if (!(await win.fill(0, V1_HEADER_BYTES))) throw corrupt(0, `file too short for a header (${win.buf.length} bytes)`)
  const b = win.buf
  const le = b[0] === 0xdb && b[1] === 0x56 && b[2] === 0x4b && b[3] === 0x00
  const be = b[0] === 0x00 && b[1] === 0x4b && b[2] === 0x56 && b[3] === 0xdb
  if (!le && !be) throw corrupt(0, 'bad magic (not a kvstore binary snapshot)')
  const r = new ByteReader(b, le)
  r.pos = 4
  const version = r.u32()
  if (version !== 1 && version !== 2) throw corrupt(4, `unsupported version ${version}`)
  if (version === 2 && !(await win.fill(0, V2_HEADER_BYTES))) throw corrupt(0, 'file too short for a version 2 header')
  r.reset(win.buf, 8)
  let timestamp: number
  let count: number
  let seq = 0
  try {
    timestamp = r.u64()
    count = r.u32()
    if (version === 2) seq = r.u64()
  } catch (err) {
    throw corrupt(8, 'bad header field', err)
  }
  if (version === 1) timestamp *= 1000
  const badTs = checkTimestamp(timestamp)
  if (badTs !== undefined) throw corrupt(8, badTs)
  const badSeq = checkVersion(seq, 'seq')
  if (badSeq !== undefined) throw corrupt(20, badSeq)

  // Entries are held back until the whole file (and its CRC) has been checked. The
  // arrays grow per decoded entry: a forged count runs out of data, it sizes nothing.
  const columns: SnapshotColumns = { keys: [], vals: [], vers: [], exps: [], anyExpiry: false }
  const readEntry = version === 2 ? readEntryV2 : readEntryV1
  const out = columns.keys
  while (out.length < count) {
    const start = r.pos
    try {
      readEntry(r, limits, columns)
    } catch (err) {
      const needed = r.needed
      if (!(err instanceof StoreError) || needed === 0) {
        // The decoders count offsets from the window's start; the message should count from the file's.
        const why = ((err as Error)?.message ?? String(err)).replace(/\bat offset (\d+)/g, (_m, n: string) => `at ${where} ${win.base + Number(n)}`)
        throw corrupt(win.base + start, `entry ${out.length}: ${why}`, err)
      }
      // Ask for at least twice what this attempt had, so an entry spanning many chunks is
      // re-parsed O(log size) times, not once per chunk.
      // Stryker disable next-line ArithmeticOperator,MethodExpression: `want` only sizes the reads; the result is the same, only slower
      const want = Math.max(needed - start, 2 * (win.buf.length - start))
      // fill() moves the window's base to `start`: take the entry's file offset first.
      const entryAt = win.base + start
      if (!(await win.fill(start, needed - start, want))) throw corrupt(entryAt, `entry ${out.length} of ${count} cut short (truncated file)`)
      r.reset(win.buf, 0)
      continue
    }
    if (onCount !== undefined && (out.length & 0xffff) === 0) onCount(out.length)
  }

  if (version === 2) {
    const trailerAt = r.pos
    if (r.remaining < 4) {
      const fileAt = win.base + trailerAt
      if (!(await win.fill(trailerAt, 4))) throw corrupt(fileAt, 'CRC trailer missing (truncated file)')
      r.reset(win.buf, 0)
    }
    // The CRC covers everything before the trailer: what was dropped plus this window's head.
    const crc = crc32(win.buf.subarray(0, r.pos), crcSoFar())
    const at = win.base + r.pos
    const stored = r.u32()
    if (stored !== crc) throw corrupt(at, `checksum mismatch (stored ${hex(stored)}, computed ${hex(crc)})`)
  }
  if (r.remaining !== 0 || !(await win.atEnd())) throw corrupt(win.base + r.pos, 'trailing bytes after the last entry')
  return { columns, result: { seq, timestamp, count, version } }
}

/** Decode one entry and append it to `out`; appends nothing when it throws (a short window retries). */
function readEntryV2(r: ByteReader, limits: ResolvedLimits, out: SnapshotColumns): void {
  const key = readKey(r, limits)
  const value = decodeValue(r, { maxValueBytes: limits.maxValueBytes, maxFieldBytes: limits.maxKeyBytes })
  const expiresAt = r.f64()
  const version = r.f64()
  const bad = checkExpiresAt(expiresAt) ?? checkVersion(version)
  if (bad !== undefined) throw new StoreError('KV_CORRUPT', `key ${showValue(key)}: ${bad}`)
  out.keys.push(key)
  out.vals.push(value)
  // + 0 turns -0 into 0: both mean "none".
  out.vers.push(version + 0)
  out.exps.push(expiresAt + 0)
  if (expiresAt !== 0) out.anyExpiry = true
}

function readEntryV1(r: ByteReader, limits: ResolvedLimits, out: SnapshotColumns): void {
  // v1 has no checksum: strict UTF-8 keeps damage from loading as U+FFFD.
  const key = readKey(r, limits)
  const value = decodeString(r, limits.maxValueBytes, 'value')
  out.keys.push(key)
  out.vals.push(value)
  out.vers.push(0)
  out.exps.push(0)
}

/** A key as `checkKey` wants it: the strict decode already bounds its bytes and rules out lone surrogates. */
function readKey(r: ByteReader, limits: ResolvedLimits): string {
  const key = decodeString(r, limits.maxKeyBytes, 'key')
  if (key.length === 0) throw new StoreError('KV_CORRUPT', 'empty key')
  return key
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}
