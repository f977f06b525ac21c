// Byte-level reading and writing shared by the WAL op codec and the snapshot formats.
// Integers are little-endian on write; the reader can be switched to big-endian for
// binary version-1 files (the first kvstore format) written on big-endian machines.

import { isUtf8 } from 'node:buffer'
import { StoreError } from '../errors.js'

const TWO_32 = 0x1_0000_0000
/** Strings up to this many UTF-16 units are encoded by a JS loop when ASCII (cheaper than a native call). */
const SHORT_STRING = 16
/** Strings longer than this get an exact byte count instead of the 3-bytes-per-unit reservation. */
const LONG_STRING = 64 * 1024
/** A writer holding more than this after a big payload drops back to its initial size on reset. */
const MAX_RETAINED_BYTES = 1024 * 1024

/**
 * A growable little-endian byte buffer, reused across encodes.
 *
 * Capacity doubles when needed, so a writer reused with {@link ByteWriter.reset}
 * stops allocating once it has seen its largest payload; capacity above 1 MiB is
 * given back on reset, so one huge value does not pin memory. Every write is
 * amortised O(1) per byte.
 */
export class ByteWriter {
  #buf: Buffer
  #view: DataView
  #pos = 0
  readonly #initialBytes: number

  /** @param initialBytes - starting capacity; grows on demand. */
  constructor(initialBytes = 256) {
    this.#initialBytes = Math.max(16, initialBytes)
    this.#buf = Buffer.allocUnsafe(this.#initialBytes)
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength)
  }

  /** Bytes written since the last {@link ByteWriter.reset}. */
  get length(): number {
    return this.#pos
  }

  /** Forget the contents so the writer can be reused (keeping up to 1 MiB of capacity). */
  reset(): void {
    this.#pos = 0
    if (this.#buf.length > MAX_RETAINED_BYTES && this.#buf.length > this.#initialBytes) {
      this.#buf = Buffer.allocUnsafe(this.#initialBytes)
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength)
    }
  }

  /**
   * The bytes written so far, as a view of the internal buffer (no copy).
   *
   * The view is valid until the next write or reset; copy it (`new Uint8Array(view)`)
   * to keep it longer.
   */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#pos)
  }

  /** Append one byte (`value & 0xff`). */
  u8(value: number): void {
    if (this.#pos + 1 > this.#buf.length) this.#grow(1)
    this.#buf[this.#pos++] = value
  }

  /** Append an unsigned 16-bit integer. */
  u16(value: number): void {
    if (this.#pos + 2 > this.#buf.length) this.#grow(2)
    const b = this.#buf
    const p = this.#pos
    b[p] = value
    b[p + 1] = value >>> 8
    this.#pos = p + 2
  }

  /** Append an unsigned 32-bit integer (taken modulo 2^32). */
  u32(value: number): void {
    if (this.#pos + 4 > this.#buf.length) this.#grow(4)
    const b = this.#buf
    const p = this.#pos
    b[p] = value
    b[p + 1] = value >>> 8
    b[p + 2] = value >>> 16
    b[p + 3] = value >>> 24
    this.#pos = p + 4
  }

  /**
   * Append a non-negative integer below 2^53 as an unsigned 64-bit integer (low word first).
   *
   * @throws RangeError when `value` is not a safe non-negative integer.
   */
  u64(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`u64 out of range: ${value}`)
    this.u32(value >>> 0)
    this.u32(Math.floor(value / TWO_32))
  }

  /** Append an IEEE-754 double (exact for every number, including -0). */
  f64(value: number): void {
    if (this.#pos + 8 > this.#buf.length) this.#grow(8)
    this.#view.setFloat64(this.#pos, value, true)
    this.#pos += 8
  }

  /** Append `str` as a u32 byte length followed by its UTF-8 bytes. */
  string(str: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units),
    // so reserve that, write, and back-patch the real length: no Buffer.byteLength pass.
    const room = 4 + maxUtf8Bytes(str)
    if (this.#pos + room > this.#buf.length) this.#grow(room)
    const start = this.#pos + 4
    const written = this.#encode(str, start)
    const b = this.#buf
    const p = this.#pos
    b[p] = written
    b[p + 1] = written >>> 8
    b[p + 2] = written >>> 16
    b[p + 3] = written >>> 24
    this.#pos = start + written
  }

  /** Append the UTF-8 bytes of `str` with no length prefix (for text formats). */
  text(str: string): void {
    const room = maxUtf8Bytes(str)
    if (this.#pos + room > this.#buf.length) this.#grow(room)
    this.#pos += this.#encode(str, this.#pos)
  }

  /** Append raw bytes (no length prefix). */
  bytes(src: Uint8Array): void {
    if (this.#pos + src.length > this.#buf.length) this.#grow(src.length)
    this.#buf.set(src, this.#pos)
    this.#pos += src.length
  }

  /** Skip `n` bytes (contents unspecified) and return their offset, to be filled by the `set*` methods. */
  reserve(n: number): number {
    if (this.#pos + n > this.#buf.length) this.#grow(n)
    const at = this.#pos
    this.#pos += n
    return at
  }

  /** Overwrite a u32 at `offset` (which must lie inside what was written). */
  setU32(offset: number, value: number): void {
    if (offset < 0 || offset + 4 > this.#pos) throw new RangeError(`setU32 outside written bytes: ${offset}`)
    this.#view.setUint32(offset, value >>> 0, true)
  }

  /** Overwrite a byte at `offset` (which must lie inside what was written). */
  setU8(offset: number, value: number): void {
    if (offset < 0 || offset >= this.#pos) throw new RangeError(`setU8 outside written bytes: ${offset}`)
    this.#buf[offset] = value
  }

  /** Encode `str` at `at` (room for all its UTF-8 bytes is guaranteed); returns bytes written. */
  #encode(str: string, at: number): number {
    const n = str.length
    const b = this.#buf
    if (n <= SHORT_STRING) {
      let i = 0
      for (; i < n; i++) {
        const c = str.charCodeAt(i)
        if (c >= 0x80) break
        b[at + i] = c
      }
      if (i === n) return n
    }
    return b.write(str, at, 'utf8')
  }

  #grow(extra: number): void {
    let size = this.#buf.length * 2
    while (size < this.#pos + extra) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.#buf.copy(next, 0, 0, this.#pos)
    this.#buf = next
    this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength)
  }
}

/**
 * A bounds-checked cursor over bytes, little-endian unless told otherwise.
 *
 * Every read past the end throws `KV_CORRUPT` and sets {@link ByteReader.needed}, so a
 * streaming parser can tell "this chunk ended too early" from real damage.
 */
export class ByteReader {
  #buf: Buffer
  #view: DataView
  #pos: number
  #end: number
  #le: boolean
  #needed = 0

  /**
   * @param buf - bytes to read (not copied; a `Uint8Array` is wrapped as a `Buffer` view).
   * @param littleEndian - false to read every multi-byte field big-endian.
   */
  constructor(buf: Uint8Array, littleEndian = true) {
    this.#buf = asBuffer(buf)
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#pos = 0
    this.#end = buf.length
    this.#le = littleEndian
  }

  /** Start over on new bytes at `pos`, keeping the byte order. */
  reset(buf: Uint8Array, pos = 0): void {
    this.#buf = asBuffer(buf)
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#pos = pos
    this.#end = buf.length
    this.#needed = 0
  }

  /** Current offset from the start of the buffer. */
  get pos(): number {
    return this.#pos
  }

  set pos(value: number) {
    this.#pos = value
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.#end - this.#pos
  }

  /** True when multi-byte fields are read little-endian. */
  get littleEndian(): boolean {
    return this.#le
  }

  /**
   * After a read ran past the end: the buffer length that read would have needed;
   * 0 when the last error (if any) was not an overrun. Reset by {@link ByteReader.reset}.
   */
  get needed(): number {
    return this.#needed
  }

  /** Read one byte. @throws {@link StoreError} `KV_CORRUPT` past the end. */
  u8(): number {
    if (this.#pos + 1 > this.#end) throw this.#overrun(1)
    return this.#buf[this.#pos++] as number
  }

  /** Read an unsigned 16-bit integer. @throws {@link StoreError} `KV_CORRUPT` past the end. */
  u16(): number {
    if (this.#pos + 2 > this.#end) throw this.#overrun(2)
    const v = this.#view.getUint16(this.#pos, this.#le)
    this.#pos += 2
    return v
  }

  /** Read an unsigned 32-bit integer. @throws {@link StoreError} `KV_CORRUPT` past the end. */
  u32(): number {
    if (this.#pos + 4 > this.#end) throw this.#overrun(4)
    const v = this.#view.getUint32(this.#pos, this.#le)
    this.#pos += 4
    return v
  }

  /**
   * Read an unsigned 64-bit integer as a number.
   *
   * @throws {@link StoreError} `KV_CORRUPT` past the end, or when the value is 2^53 or more
   *   (it could not be represented exactly).
   */
  u64(): number {
    if (this.#pos + 8 > this.#end) throw this.#overrun(8)
    const a = this.#view.getUint32(this.#pos, this.#le)
    const b = this.#view.getUint32(this.#pos + 4, this.#le)
    const lo = this.#le ? a : b
    const hi = this.#le ? b : a
    if (hi >= 0x20_0000) throw new StoreError('KV_CORRUPT', `u64 at offset ${this.#pos} exceeds 2^53`)
    this.#pos += 8
    return hi * TWO_32 + lo
  }

  /** Read an IEEE-754 double. @throws {@link StoreError} `KV_CORRUPT` past the end. */
  f64(): number {
    if (this.#pos + 8 > this.#end) throw this.#overrun(8)
    const v = this.#view.getFloat64(this.#pos, this.#le)
    this.#pos += 8
    return v
  }

  /**
   * Read a u32 byte length and that many UTF-8 bytes as a string.
   *
   * Malformed UTF-8 decodes to U+FFFD; formats without a checksum check with
   * {@link ByteReader.utf8Valid} first. @throws {@link StoreError} `KV_CORRUPT` past the end.
   */
  string(): string {
    const start = this.#pos
    const n = this.u32()
    if (this.#pos + n > this.#end) {
      this.#pos = start
      throw this.#overrun(4 + n)
    }
    const s = this.#decode(this.#pos, n)
    this.#pos += n
    return s
  }

  /** Read `n` bytes as UTF-8 text (no length prefix). @throws {@link StoreError} `KV_CORRUPT` past the end. */
  text(n: number): string {
    if (this.#pos + n > this.#end) throw this.#overrun(n)
    const s = this.#decode(this.#pos, n)
    this.#pos += n
    return s
  }

  /**
   * Read `n` raw bytes as a view of the underlying buffer (no copy: copy it to keep it
   * beyond the buffer's lifetime). @throws {@link StoreError} `KV_CORRUPT` past the end.
   */
  bytes(n: number): Uint8Array {
    if (this.#pos + n > this.#end) throw this.#overrun(n)
    const v = this.#buf.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    return v
  }

  /** True when the `n` bytes at the cursor are well-formed UTF-8 (the cursor does not move). */
  utf8Valid(n: number): boolean {
    if (this.#pos + n > this.#end) return false
    return isUtf8(this.#buf.subarray(this.#pos, this.#pos + n))
  }

  // Measured: a JS decode loop loses to the native call even for 13-byte ASCII keys.
  #decode(at: number, n: number): string {
    return this.#buf.toString('utf8', at, at + n)
  }

  #overrun(n: number): StoreError {
    this.#needed = this.#pos + n
    return new StoreError('KV_CORRUPT', `unexpected end of data: need ${n} bytes at offset ${this.#pos}, have ${this.#end - this.#pos}`)
  }
}

/** Room to reserve for `str`: 3 bytes per unit, or the exact count for long strings. */
function maxUtf8Bytes(str: string): number {
  return str.length > LONG_STRING ? Buffer.byteLength(str, 'utf8') : 3 * str.length
}

function asBuffer(buf: Uint8Array): Buffer {
  return Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
}
