// WAL framing shared by writer and reader. See docs/FORMAT.md.

import { randomBytes } from 'node:crypto'
import * as zlib from 'node:zlib'

/** First u32 (LE) of every segment: the bytes `KVWL`. */
export const SEGMENT_MAGIC = 0x4c57564b
/** Segment header version written and accepted. */
export const FORMAT_VERSION = 1
/** Bytes of the segment header; the first record starts here. */
export const SEGMENT_HEADER_SIZE = 32
/** Bytes of a record header; the payload starts here. */
export const RECORD_HEADER_SIZE = 24
/** Records start at multiples of this many bytes. */
export const RECORD_ALIGN = 8
/**
 * Largest record payload, 1 GiB: the writer refuses more and the reader treats a longer declared
 * length as a damaged field, so no length read from disk can size an allocation beyond it.
 * Four times the store's default `maxBatchBytes`, which leaves room for encoding overhead.
 */
export const MAX_PAYLOAD_BYTES = 0x4000_0000
/** Segment numbers are u32. */
export const MAX_SEGMENT_NUMBER = 0xffff_ffff

const TWO_32 = 0x1_0000_0000
/** Sequence numbers must stay below 2^53, so the high u32 half is below 2^21. */
const SEQ_HI_LIMIT = 0x20_0000

// Slicing-by-8 tables: CRC_TABLE[k * 256 + b] is the CRC contribution of byte b followed by k zero bytes.
const CRC_TABLE = /* @__PURE__ */ (() => {
  const t = new Int32Array(256 * 8)
  // Stryker disable next-line EqualityOperator: equivalent, n = 256 writes t[256], which the second loop overwrites (n = 0, k = 1) before any read
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  // Stryker disable next-line EqualityOperator: equivalent, n = 256 starts from t[256] = 0 and writes 0 into t[512..1792], already 0 (zero byte, zero bytes after)
  for (let n = 0; n < 256; n++) {
    let c = t[n] as number
    // Stryker disable next-line EqualityOperator: equivalent, k = 8 writes t[2048 + n], past the end of the Int32Array, which ignores it
    for (let k = 1; k < 8; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8)
      t[k * 256 + n] = c
    }
  }
  return t
})()

/**
 * CRC-32 (zlib polynomial) of `bytes[start, end)`, continued from `seed` like `zlib.crc32(data, seed)`.
 *
 * Pure JS (slicing-by-8), no allocation: faster than the native call below about 200 bytes
 * (the call itself costs ~150 ns), and usable on a range without creating a subarray.
 * O(end - start).
 */
export function crc32Range(bytes: Uint8Array, start: number, end: number, seed: number): number {
  const t = CRC_TABLE
  let c = ~seed
  let i = start
  // `as number`: every index below is inside [start, end) or a table of 2048 entries.
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, skipping 8-byte blocks leaves them to the byte loop below, same CRC (speed only)
  for (const end8 = end - 8; i <= end8; i += 8) {
    const lo = c ^ ((bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24))
    c =
      (t[1792 + (lo & 0xff)] as number) ^
      (t[1536 + ((lo >>> 8) & 0xff)] as number) ^
      (t[1280 + ((lo >>> 16) & 0xff)] as number) ^
      (t[1024 + (lo >>> 24)] as number) ^
      (t[768 + (bytes[i + 4] as number)] as number) ^
      (t[512 + (bytes[i + 5] as number)] as number) ^
      (t[256 + (bytes[i + 6] as number)] as number) ^
      (t[bytes[i + 7] as number] as number)
  }
  for (; i < end; i++) c = (t[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}

const nativeCrc32 = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined
/** Below this many bytes the JS CRC beats the native call (measured on Node 20, x64). */
const NATIVE_CRC_MIN_BYTES = 192

/**
 * CRC-32 of all of `data`, continued from `seed`: {@link crc32Range} for short input, else
 * `zlib.crc32` when Node has it (20.15+).
 *
 * The CRC of no bytes is `seed` (zlib would return 0 for an empty view without backing memory,
 * e.g. `crypto.randomBytes(0)`; short input never reaches it).
 */
export function crc32(data: Uint8Array, seed: number): number {
  // Stryker disable next-line EqualityOperator: equivalent, at exactly 192 bytes JS and zlib.crc32 compute the same CRC (threshold picks speed only)
  return data.length < NATIVE_CRC_MIN_BYTES || nativeCrc32 === undefined ? crc32Range(data, 0, data.length, seed) : nativeCrc32(data, seed)
}

/**
 * Bytes a record with a `payloadLength`-byte payload occupies, padding included.
 *
 * Exact for every u32 length: arithmetic, not a bit mask, which would wrap at 2^31.
 */
export function recordFrameSize(payloadLength: number): number {
  const n = RECORD_HEADER_SIZE + payloadLength + RECORD_ALIGN - 1
  return n - (n % RECORD_ALIGN)
}

/** A fresh random salt for a new segment (uniform u32). */
export function randomSalt(): number {
  return randomBytes(4).readUInt32LE(0)
}

/** The decoded fields of a verified segment header. */
export interface SegmentHeader {
  readonly segment: number
  readonly salt: number
  readonly baseSeq: number
}

/** Encode a segment header (32 bytes). Arguments are trusted: callers validate them. */
export function encodeSegmentHeader(segment: number, salt: number, baseSeq: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_SIZE)
  b.writeUInt32LE(SEGMENT_MAGIC, 0)
  b.writeUInt32LE(FORMAT_VERSION, 4)
  b.writeUInt32LE(segment, 8)
  b.writeUInt32LE(salt >>> 0, 12)
  b.writeUInt32LE(baseSeq % TWO_32, 16)
  b.writeUInt32LE(Math.floor(baseSeq / TWO_32), 20)
  b.writeUInt32LE(crc32Range(b, 0, 24, 0), 24)
  return b
}

/**
 * Decode and verify the segment header at the start of `bytes`.
 *
 * Returns the header, or the reason it is unusable (`'zeroed'` when the 32 bytes are all zero).
 * Precondition: `bytes.length >= SEGMENT_HEADER_SIZE`.
 */
export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeader | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_SIZE)
  if (isZero(bytes, 0, SEGMENT_HEADER_SIZE)) return 'zeroed'
  if (v.getUint32(0, true) !== SEGMENT_MAGIC) return 'bad segment magic'
  if (v.getUint32(24, true) !== crc32Range(bytes, 0, 24, 0)) return 'segment header checksum mismatch'
  const version = v.getUint32(4, true)
  if (version !== FORMAT_VERSION) return `unsupported WAL format version ${version}`
  if (v.getUint32(28, true) !== 0) return 'segment header reserved field is not zero'
  const hi = v.getUint32(20, true)
  if (hi >= SEQ_HI_LIMIT) return 'segment base sequence out of range'
  return { segment: v.getUint32(8, true), salt: v.getUint32(12, true), baseSeq: hi * TWO_32 + v.getUint32(16, true) }
}

/** Below this many bytes {@link isZero} loops in JS; above, it compares blocks natively (memcmp). */
const NATIVE_ZERO_MIN_BYTES = 256
const ZERO_BLOCK = /* @__PURE__ */ new Uint8Array(64 * 1024)

/**
 * True when `bytes[start, end)` are all zero.
 *
 * Long ranges (a zero-filled or preallocated tail can be gigabytes) are compared 64 KiB at a
 * time with `Buffer#compare`, an order of magnitude faster than a byte loop. O(end - start).
 */
export function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start
  // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator,BlockStatement: equivalent, picks memcmp or the byte loop, same answer for every start <= end <= length the callers pass
  if (end - start >= NATIVE_ZERO_MIN_BYTES) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const block = ZERO_BLOCK.length
    // Stryker disable next-line EqualityOperator: equivalent, a last full 64 KiB block left to the tail compare below gives the same answer
    for (; i + block <= end; i += block) if (b.compare(ZERO_BLOCK, 0, block, i, i + block) !== 0) return false
    // Stryker disable next-line ConditionalExpression: equivalent, when i === end the tail compare is of two empty ranges, which compares equal (0)
    return i === end || b.compare(ZERO_BLOCK, 0, end - i, i, end) === 0
  }
  for (; i < end; i++) if (bytes[i] !== 0) return false
  return true
}

// Byte stores beat Buffer#writeUInt32LE (which range-checks) on the append hot path.
function putU32(t: Uint8Array, o: number, v: number): void {
  t[o] = v
  t[o + 1] = v >>> 8
  t[o + 2] = v >>> 16
  t[o + 3] = v >>> 24
}

/**
 * Encode one record (header, payload, zero padding) into `target` at `offset`; returns the offset after it.
 *
 * Preconditions (checked by the writer): `target` has `recordFrameSize(payload.length)` bytes from
 * `offset`; `type` is 1..255; `seq` is a safe non-negative integer. Cost: two CRCs and one payload
 * copy; no allocation.
 */
export function encodeRecord(target: Uint8Array, offset: number, salt: number, seq: number, type: number, payload: Uint8Array): number {
  const len = payload.length
  const start = offset + RECORD_HEADER_SIZE
  target.set(payload, start)
  putU32(target, offset + 4, len)
  putU32(target, offset + 8, seq % TWO_32)
  putU32(target, offset + 12, Math.floor(seq / TWO_32))
  putU32(target, offset + 16, type)
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, crc32Range over the copied payload and crc32(payload) compute the same CRC (speed only)
  putU32(target, offset + 20, len < NATIVE_CRC_MIN_BYTES ? crc32Range(target, start, start + len, salt) : crc32(payload, salt))
  putU32(target, offset, crc32Range(target, offset + 4, start, salt))
  const end = offset + recordFrameSize(len)
  for (let i = start + len; i < end; i++) target[i] = 0
  return end
}

// Why a record failed to verify. Negative so a result cannot be confused with a length or size.
/** Fewer than 24 bytes remain (recovery rule 1). */
export const DEFECT_SHORT_HEADER = -1
/** The header verified but the frame runs past end of file (recovery rule 1). */
export const DEFECT_SHORT_FRAME = -2
/** The header CRC does not match. */
export const DEFECT_HEADER_CRC = -3
/** The header CRC matches but `type`, `flags`, `rsv` or `seq` is out of range. */
export const DEFECT_BAD_FIELD = -4
/** The payload CRC does not match. */
export const DEFECT_PAYLOAD_CRC = -5
/** The padding after the payload is not zero. */
export const DEFECT_PADDING = -6
/** The header CRC matches but `len` exceeds {@link MAX_PAYLOAD_BYTES}. */
export const DEFECT_TOO_LARGE = -7

/** Human-readable reason for a negative result of {@link checkRecordHeader} or {@link checkRecordBody}. */
export function defectReason(defect: number): string {
  switch (defect) {
    case DEFECT_SHORT_HEADER:
      return 'record header cut short'
    case DEFECT_SHORT_FRAME:
      return 'record cut short'
    case DEFECT_HEADER_CRC:
      return 'record header checksum mismatch'
    case DEFECT_BAD_FIELD:
      return 'invalid record header field'
    case DEFECT_PAYLOAD_CRC:
      return 'payload checksum mismatch'
    case DEFECT_PADDING:
      return 'non-zero record padding'
    case DEFECT_TOO_LARGE:
      return `record length exceeds ${MAX_PAYLOAD_BYTES} bytes`
    default:
      return `unknown defect ${defect}`
  }
}

/**
 * Verify the record header at `offset`: returns the payload length, or a negative `DEFECT_*` code.
 *
 * Checks, cheapest first, that 24 bytes remain, the header CRC, `type != 0`, `flags == rsv == 0`,
 * `seq < 2^53` and `len <= MAX_PAYLOAD_BYTES`, so a length it returns is safe to allocate once the
 * caller has checked that the frame fits in the file. Does not check the payload. O(1).
 */
export function checkRecordHeader(bytes: Uint8Array, view: DataView, offset: number, salt: number): number {
  if (bytes.length - offset < RECORD_HEADER_SIZE) return DEFECT_SHORT_HEADER
  if (view.getUint32(offset, true) !== crc32Range(bytes, offset + 4, offset + RECORD_HEADER_SIZE, salt)) return DEFECT_HEADER_CRC
  // Stryker disable next-line BooleanLiteral: equivalent, reading rsv big-endian instead of little-endian does not change whether it is zero
  if (bytes[offset + 16] === 0 || bytes[offset + 17] !== 0 || view.getUint16(offset + 18, true) !== 0) return DEFECT_BAD_FIELD
  if (view.getUint32(offset + 12, true) >= SEQ_HI_LIMIT) return DEFECT_BAD_FIELD
  const len = view.getUint32(offset + 4, true)
  return len > MAX_PAYLOAD_BYTES ? DEFECT_TOO_LARGE : len
}

/**
 * Verify the payload and padding of a record whose header verified: returns the frame size, or a negative `DEFECT_*` code.
 *
 * O(payload length).
 */
export function checkRecordBody(bytes: Uint8Array, view: DataView, offset: number, len: number, salt: number): number {
  const frame = recordFrameSize(len)
  if (offset + frame > bytes.length) return DEFECT_SHORT_FRAME
  const start = offset + RECORD_HEADER_SIZE
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, crc32Range and crc32 of the same bytes are equal; the threshold picks speed only
  const crc = len < NATIVE_CRC_MIN_BYTES ? crc32Range(bytes, start, start + len, salt) : crc32(bytes.subarray(start, start + len), salt)
  if (view.getUint32(offset + 20, true) !== crc) return DEFECT_PAYLOAD_CRC
  if (!isZero(bytes, start + len, offset + frame)) return DEFECT_PADDING
  return frame
}

/** The seq field of the record header at `offset` (not verified). */
export function readRecordSeq(view: DataView, offset: number): number {
  return view.getUint32(offset + 12, true) * TWO_32 + view.getUint32(offset + 8, true)
}

/** The type field of the record header at `offset` (not verified). */
export function readRecordType(bytes: Uint8Array, offset: number): number {
  return bytes[offset + 16] as number
}
