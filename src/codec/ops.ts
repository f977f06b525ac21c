// WAL op codec: a batch of ops <-> one record payload.
//
// payload := count u32, then count × (opcode u8, fields)
// Fields per opcode (strings are u32 length + UTF-8, values use codec/value.ts):
//   SET    key, value, expiresAt f64        DEL    key
//   EXPIRE key, expiresAt f64               CLEAR  (none)
//   PUSH   key, left u8, n u32, n × value   POP    key, left u8, count f64
//   HSET   key, n u32, n × (field, value)   HDEL   key, n u32, n × field
//   LSET   key, index f64, value            LTRIM  key, start f64, stop f64
// Numbers that may be negative or large (times, indices, counts) are f64: exact for
// every safe integer, one format to read.

import { StoreError } from '../errors.js'
import { ByteReader, type ByteWriter } from './bytes.js'
import { decodeValue, encodeValue } from './value.js'

/**
 * One logged mutation. A WAL record holds a batch of ops the caller applies all or
 * nothing.
 *
 * - `set`: `value` is normally a non-collection value; `expiresAt` is absolute ms, 0 = none.
 * - `expire`: `expiresAt` 0 = persist.
 * - `push`: values are pushed one by one, so LPUSH a b c leaves c at the head (as Redis).
 * - `pop`, `lset`, `ltrim`: indices follow Redis rules (negative from the tail).
 */

/** WAL record type of an encoded op list (the WAL itself treats record types as opaque). */
export const RECORD_OPS = 1

export type Op =
  | { t: 'set'; key: string; value: unknown; expiresAt: number }
  | { t: 'del'; key: string }
  | { t: 'expire'; key: string; expiresAt: number }
  | { t: 'clear' }
  | { t: 'push'; key: string; left: boolean; values: unknown[] }
  | { t: 'pop'; key: string; left: boolean; count: number }
  | { t: 'hset'; key: string; fields: string[]; values: unknown[] }
  | { t: 'hdel'; key: string; fields: string[] }
  | { t: 'lset'; key: string; index: number; value: unknown }
  | { t: 'ltrim'; key: string; start: number; stop: number }

/** Opcodes, one byte on disk. Stable: never renumber. */
export const OpCode = {
  SET: 1,
  DEL: 2,
  EXPIRE: 3,
  CLEAR: 4,
  PUSH: 5,
  POP: 6,
  HSET: 7,
  HDEL: 8,
  LSET: 9,
  LTRIM: 10,
} as const

/**
 * Append the payload for `ops` (u32 count, then each op) to `w` at its current position.
 *
 * Does not reset `w`, so a caller can write a record header first and back-patch it.
 * O(encoded size); allocation-free for string/number values once `w` has grown.
 *
 * @throws {@link StoreError} `KV_INVALID_VALUE` for a value the value codec rejects
 *   (`w` then holds a partial payload: reset it).
 * @throws RangeError when an `hset` has different numbers of fields and values, or a `push`
 *   or `hset` has none (the decoder refuses what no store writes).
 */
export function encodeOps(ops: readonly Op[], w: ByteWriter): void {
  w.u32(ops.length)
  for (let i = 0; i < ops.length; i++) encodeOp(ops[i] as Op, w)
}

function encodeOp(op: Op, w: ByteWriter): void {
  switch (op.t) {
    case 'set':
      w.u8(OpCode.SET)
      w.string(op.key)
      encodeValue(w, op.value)
      w.f64(op.expiresAt)
      return
    case 'del':
      w.u8(OpCode.DEL)
      w.string(op.key)
      return
    case 'expire':
      w.u8(OpCode.EXPIRE)
      w.string(op.key)
      w.f64(op.expiresAt)
      return
    case 'clear':
      w.u8(OpCode.CLEAR)
      return
    case 'push': {
      if (op.values.length === 0) throw new RangeError('push: no values (the decoder refuses an empty push)')
      w.u8(OpCode.PUSH)
      w.string(op.key)
      w.u8(op.left ? 1 : 0)
      const vs = op.values
      w.u32(vs.length)
      for (let i = 0; i < vs.length; i++) encodeValue(w, vs[i])
      return
    }
    case 'pop':
      w.u8(OpCode.POP)
      w.string(op.key)
      w.u8(op.left ? 1 : 0)
      w.f64(op.count)
      return
    case 'hset': {
      const { fields, values } = op
      if (fields.length !== values.length) throw new RangeError(`hset: ${fields.length} fields but ${values.length} values`)
      if (fields.length === 0) throw new RangeError('hset: no fields (the decoder refuses an empty hset)')
      w.u8(OpCode.HSET)
      w.string(op.key)
      w.u32(fields.length)
      for (let i = 0; i < fields.length; i++) {
        w.string(fields[i] as string)
        encodeValue(w, values[i])
      }
      return
    }
    case 'hdel': {
      w.u8(OpCode.HDEL)
      w.string(op.key)
      const fields = op.fields
      w.u32(fields.length)
      for (let i = 0; i < fields.length; i++) w.string(fields[i] as string)
      return
    }
    case 'lset':
      w.u8(OpCode.LSET)
      w.string(op.key)
      w.f64(op.index)
      encodeValue(w, op.value)
      return
    case 'ltrim':
      w.u8(OpCode.LTRIM)
      w.string(op.key)
      w.f64(op.start)
      w.f64(op.stop)
      return
  }
}

/**
 * Decode a payload written by {@link encodeOps}, refusing anything this codec would not write.
 *
 * The whole payload must be consumed: trailing bytes mean damage. Every field is checked, since a
 * checksummed record can still hold values no store writes (a bug, a foreign writer, tampering):
 * keys must be non-empty valid UTF-8 (else the key could never be read or deleted again), hash
 * fields valid UTF-8, expiry times safe non-negative integers, list indices safe integers, pop
 * counts safe non-negative integers, push and hset counts at least 1 (no empty collection is
 * ever created). Every count is bounded by the bytes left before anything is allocated.
 * O(payload size).
 *
 * @throws {@link StoreError} `KV_CORRUPT` for any of the above, an unknown opcode, a bad value,
 *   data cut short or trailing bytes (the message names the byte offset within the payload);
 *   any other error raised while decoding (e.g. JSON nested too deep) is wrapped the same way.
 */
export function decodeOps(payload: Uint8Array): Op[] {
  try {
    return decodeAll(payload)
  } catch (err) {
    if (err instanceof StoreError) throw err
    throw new StoreError('KV_CORRUPT', `undecodable ops payload: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }
}

function decodeAll(payload: Uint8Array): Op[] {
  const r = new ByteReader(payload)
  const n = r.u32()
  // Every op takes at least one byte: a larger count is damage, caught before allocating.
  if (n > r.remaining) throw new StoreError('KV_CORRUPT', `op count ${n} exceeds the ${r.remaining}-byte payload`)
  const ops = new Array<Op>(n)
  for (let i = 0; i < n; i++) ops[i] = decodeOp(r, payload)
  if (r.remaining !== 0) throw new StoreError('KV_CORRUPT', `${r.remaining} trailing bytes after ${n} ops at offset ${r.pos}`)
  return ops
}

function decodeOp(r: ByteReader, bytes: Uint8Array): Op {
  const at = r.pos
  const code = r.u8()
  switch (code) {
    case OpCode.SET: {
      const key = readKey(r, bytes)
      const value = decodeValue(r)
      return { t: 'set', key, value, expiresAt: readTime(r) }
    }
    case OpCode.DEL:
      return { t: 'del', key: readKey(r, bytes) }
    case OpCode.EXPIRE: {
      const key = readKey(r, bytes)
      return { t: 'expire', key, expiresAt: readTime(r) }
    }
    case OpCode.CLEAR:
      return { t: 'clear' }
    case OpCode.PUSH: {
      const key = readKey(r, bytes)
      const left = readFlag(r)
      const n = readCount(r, 1, 'push value count')
      const values = new Array<unknown>(n)
      for (let i = 0; i < n; i++) values[i] = decodeValue(r)
      return { t: 'push', key, left, values }
    }
    case OpCode.POP: {
      const key = readKey(r, bytes)
      const left = readFlag(r)
      return { t: 'pop', key, left, count: readInteger(r, 0, 'pop count') }
    }
    case OpCode.HSET: {
      const key = readKey(r, bytes)
      const n = readCount(r, 1, 'hset field count')
      const fields = new Array<string>(n)
      const values = new Array<unknown>(n)
      for (let i = 0; i < n; i++) {
        fields[i] = readText(r, bytes, 'hash field', true)
        values[i] = decodeValue(r)
      }
      return { t: 'hset', key, fields, values }
    }
    case OpCode.HDEL: {
      const key = readKey(r, bytes)
      const n = readCount(r, 0, 'hdel field count')
      const fields = new Array<string>(n)
      for (let i = 0; i < n; i++) fields[i] = readText(r, bytes, 'hash field', true)
      return { t: 'hdel', key, fields }
    }
    case OpCode.LSET: {
      const key = readKey(r, bytes)
      const index = readInteger(r, -Number.MAX_SAFE_INTEGER, 'list index')
      return { t: 'lset', key, index, value: decodeValue(r) }
    }
    case OpCode.LTRIM: {
      const key = readKey(r, bytes)
      const start = readInteger(r, -Number.MAX_SAFE_INTEGER, 'list index')
      return { t: 'ltrim', key, start, stop: readInteger(r, -Number.MAX_SAFE_INTEGER, 'list index') }
    }
    default:
      throw new StoreError('KV_CORRUPT', `unknown opcode ${code} at offset ${at}`)
  }
}

function readFlag(r: ByteReader): boolean {
  const at = r.pos
  const b = r.u8()
  if (b > 1) throw new StoreError('KV_CORRUPT', `bad flag byte ${b} at offset ${at}`)
  return b === 1
}

/** A key: what `validateKey` accepts, bar the store's `maxKeyBytes` (which may change between opens). */
function readKey(r: ByteReader, bytes: Uint8Array): string {
  return readText(r, bytes, 'key', false)
}

/**
 * A u32-length string that must be valid UTF-8: decoding would turn bad bytes into U+FFFD, so
 * the string would differ from what was written (and UTF-8 cannot hold a lone surrogate).
 */
function readText(r: ByteReader, bytes: Uint8Array, what: string, allowEmpty: boolean): string {
  const at = r.pos
  const n = r.u32()
  if (n === 0 && !allowEmpty) throw new StoreError('KV_CORRUPT', `empty ${what} at offset ${at}`)
  if (n > r.remaining) throw new StoreError('KV_CORRUPT', `${what} of ${n} bytes at offset ${at} runs past the payload (${r.remaining} left)`)
  const start = r.pos
  // ASCII, the common case, is valid UTF-8: skip the native check for it.
  let ascii = true
  for (let i = start, end = start + n; i < end; i++) {
    if ((bytes[i] as number) >= 0x80) {
      ascii = false
      break
    }
  }
  if (!ascii && !r.utf8Valid(n)) throw new StoreError('KV_CORRUPT', `${what} at offset ${at} is not valid UTF-8`)
  return r.text(n)
}

/** A u32 count of items that each take at least one byte: at least `min`, at most the bytes left. */
function readCount(r: ByteReader, min: number, what: string): number {
  const at = r.pos
  const n = r.u32()
  if (n < min) throw new StoreError('KV_CORRUPT', `${what} ${n} at offset ${at} is below ${min}`)
  if (n > r.remaining) throw new StoreError('KV_CORRUPT', `${what} ${n} at offset ${at} exceeds the ${r.remaining} bytes left`)
  return n
}

/** An f64 that must be a safe integer >= `min`. */
function readInteger(r: ByteReader, min: number, what: string): number {
  const at = r.pos
  const v = r.f64()
  if (!Number.isSafeInteger(v) || v < min) throw new StoreError('KV_CORRUPT', `${what} ${v} at offset ${at} is not an integer in [${min}, 2^53)`)
  return v
}

/** An absolute expiry time in ms (0 = none): a safe non-negative integer. */
function readTime(r: ByteReader): number {
  return readInteger(r, 0, 'expiry time')
}
