// Typed value encoding shared by the WAL op codec and binary snapshots:
// tag u8, then the tag's data (see ValueTag).

import { jsonText } from './json-text.js'
import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import { MAX_DEPTH } from '../value-check.js'
import type { ByteReader, ByteWriter } from './bytes.js'

/** UTF-8 strings up to this many bytes are checked for ASCII by a JS loop (cheaper than a native call). */
const SHORT_STRING = 64
// ignoreBOM: a string that starts with U+FEFF must keep it.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Value tags, one byte on disk. Stable: never renumber.
 *
 * | tag | data |
 * |-----|------|
 * | STRING 0 | u32 length + UTF-8 |
 * | NUMBER 1 | f64 |
 * | JSON 2 | u32 length + UTF-8 of `JSON.stringify` |
 * | BYTES 3 | u32 length + raw bytes |
 * | TRUE 4, FALSE 5, NULL 6 | none |
 * | LIST 7 | u32 count + count non-collection values |
 * | HASH 8 | u32 count + count × (field string, non-collection value) |
 */
export const ValueTag = {
  STRING: 0,
  NUMBER: 1,
  JSON: 2,
  BYTES: 3,
  TRUE: 4,
  FALSE: 5,
  NULL: 6,
  LIST: 7,
  HASH: 8,
} as const

/** One of the {@link ValueTag} numbers. */
export type ValueTag = (typeof ValueTag)[keyof typeof ValueTag]

/**
 * The tag `value` is encoded with.
 *
 * Objects that are not `Uint8Array`, `KvList` or `KvHash` are taken to be JSON data the
 * store has already validated. @throws {@link StoreError} `KV_INVALID_VALUE` for
 * undefined, functions, symbols and bigints.
 */
export function valueTag(value: unknown): ValueTag {
  switch (typeof value) {
    case 'string':
      return ValueTag.STRING
    case 'number':
      return ValueTag.NUMBER
    case 'boolean':
      return value ? ValueTag.TRUE : ValueTag.FALSE
    case 'object':
      if (value === null) return ValueTag.NULL
      if (value instanceof Uint8Array) return ValueTag.BYTES
      if (value instanceof KvList) return ValueTag.LIST
      if (value instanceof KvHash) return ValueTag.HASH
      return ValueTag.JSON
    default:
      throw new StoreError('KV_INVALID_VALUE', `cannot encode a ${typeof value}`)
  }
}

/**
 * Append `value` (tag + data) to `w`.
 *
 * Collections are written with their elements; an element that is itself a
 * collection is rejected. O(encoded size).
 *
 * @throws {@link StoreError} `KV_INVALID_VALUE` for values {@link valueTag} rejects and
 *   for a collection nested in a collection.
 */
export function encodeValue(w: ByteWriter, value: unknown): void {
  const tag = valueTag(value)
  w.u8(tag)
  switch (tag) {
    case ValueTag.STRING:
      w.string(value as string)
      return
    case ValueTag.NUMBER:
      w.f64(value as number)
      return
    case ValueTag.JSON:
      w.string(jsonText(value as object))
      return
    case ValueTag.BYTES: {
      const b = value as Uint8Array
      w.u32(b.length)
      w.bytes(b)
      return
    }
    case ValueTag.LIST: {
      const list = value as KvList
      w.u32(list.length)
      for (const v of list) encodeElement(w, v)
      return
    }
    case ValueTag.HASH: {
      const hash = value as KvHash
      w.u32(hash.size)
      for (const [f, v] of hash) {
        w.string(f)
        encodeElement(w, v)
      }
      return
    }
    default:
      return // TRUE, FALSE, NULL: the tag is the value
  }
}

function encodeElement(w: ByteWriter, value: unknown): void {
  if (value instanceof KvList || value instanceof KvHash) {
    throw new StoreError('KV_INVALID_VALUE', 'a collection cannot hold another collection')
  }
  encodeValue(w, value)
}

/** Size limits for {@link decodeValue}, in bytes; absent = no bound beyond the bytes in the reader. */
export interface ValueLimits {
  /** Largest string, JSON text or byte array (the store's `maxValueBytes`). */
  maxValueBytes?: number
  /** Largest hash field name (the store bounds fields by `maxKeyBytes`). */
  maxFieldBytes?: number
}

/**
 * Read one value (tag + data) from `r`.
 *
 * JSON values come back deep-frozen with null-prototype objects (as the store keeps
 * them); bytes come back as a fresh plain `Uint8Array` (never a view of `r`'s buffer);
 * collections come back with epoch 0. Everything is checked as `set()` checks input:
 * strings are well-formed UTF-8, numbers finite, JSON at most `MAX_DEPTH` deep.
 *
 * Every length is compared with `limits` before anything is read for it, so a
 * streaming caller never buffers for a length it would refuse. Element counts
 * allocate nothing up front: a count the data does not hold runs out of data.
 *
 * @throws {@link StoreError} `KV_CORRUPT` on an unknown tag, a collection inside a
 *   collection, malformed or invalid JSON, invalid UTF-8, a non-finite number, a length
 *   over `limits`, or data cut short (then `r.needed` is set).
 */
export function decodeValue(r: ByteReader, limits: ValueLimits = {}): unknown {
  return decode(r, true, limits.maxValueBytes ?? Infinity, limits.maxFieldBytes ?? Infinity)
}

/**
 * Read a u32 byte length and that many bytes of strictly valid UTF-8 as a string.
 *
 * The length is checked against `maxBytes` before the bytes are asked for.
 *
 * @throws {@link StoreError} `KV_CORRUPT` when the length exceeds `maxBytes`, the bytes
 *   are not well-formed UTF-8 (which also rules out encoded lone surrogates), or the data
 *   is cut short (then `r.needed` is set).
 */
export function decodeString(r: ByteReader, maxBytes = Infinity, what = 'string'): string {
  const at = r.pos
  const n = r.u32()
  if (n > maxBytes) throw new StoreError('KV_CORRUPT', `${what} length ${n} at offset ${at} exceeds the limit of ${maxBytes} bytes`)
  const b = r.bytes(n)
  if (n <= SHORT_STRING) {
    let or = 0
    for (let i = 0; i < n; i++) or |= b[i] as number
    if (or < 0x80) return (b as Buffer).toString('latin1', 0, n)
  }
  try {
    return UTF8.decode(b)
  } catch (err) {
    throw new StoreError('KV_CORRUPT', `${what} at offset ${at} is not valid UTF-8`, { cause: err })
  }
}

function decode(r: ByteReader, allowCollections: boolean, maxBytes: number, maxField: number): unknown {
  const at = r.pos
  const tag = r.u8()
  switch (tag) {
    case ValueTag.STRING:
      return decodeString(r, maxBytes)
    case ValueTag.NUMBER: {
      const n = r.f64()
      // set() refuses NaN and ±Infinity: they cannot round-trip through JSON.
      if (!Number.isFinite(n)) throw new StoreError('KV_CORRUPT', `non-finite number ${n} at offset ${at}`)
      return n
    }
    case ValueTag.JSON: {
      const text = decodeString(r, maxBytes, 'JSON text')
      return parseJsonValue(text, at)
    }
    case ValueTag.BYTES: {
      const lenAt = r.pos
      const n = r.u32()
      if (n > maxBytes) throw new StoreError('KV_CORRUPT', `byte array length ${n} at offset ${lenAt} exceeds the limit of ${maxBytes} bytes`)
      return new Uint8Array(r.bytes(n))
    }
    case ValueTag.TRUE:
      return true
    case ValueTag.FALSE:
      return false
    case ValueTag.NULL:
      return null
    case ValueTag.LIST: {
      if (!allowCollections) throw nested(at)
      const n = r.u32()
      // Grown as elements decode, never sized by the count: a forged count runs out of data.
      const items: unknown[] = []
      for (let i = 0; i < n; i++) items.push(decode(r, false, maxBytes, maxField))
      return new KvList(items)
    }
    case ValueTag.HASH: {
      if (!allowCollections) throw nested(at)
      const n = r.u32()
      const hash = new KvHash()
      for (let i = 0; i < n; i++) {
        const field = decodeString(r, maxField, 'hash field')
        hash.set(field, decode(r, false, maxBytes, maxField))
      }
      return hash
    }
    default:
      throw new StoreError('KV_CORRUPT', `unknown value tag ${tag} at offset ${at}`)
  }
}

function nested(at: number): StoreError {
  return new StoreError('KV_CORRUPT', `collection nested in a collection at offset ${at}`)
}

function parseJsonValue(text: string, at: number): unknown {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new StoreError('KV_CORRUPT', `malformed JSON value at offset ${at}`, { cause: err })
  }
  try {
    return freezeJson(parsed)
  } catch (err) {
    throw new StoreError('KV_CORRUPT', `JSON value at offset ${at}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * Check and deep-freeze freshly parsed JSON data, rebuilding objects with a null prototype.
 *
 * The result has the shape the store keeps (see `prepareValue`): `__proto__` stays an
 * ordinary own key and nothing can be changed through a value read back. Data `set()`
 * would refuse is refused here too: nesting deeper than `MAX_DEPTH` (counted as
 * `prepareValue` counts it, so exactly what `set()` accepts loads), non-finite numbers
 * (`JSON.parse` reads `1e400` as Infinity) and strings or keys with lone surrogates
 * (`\ud800` escapes). Recursion is bounded by `MAX_DEPTH`, so hostile nesting cannot
 * overflow the stack. O(size).
 *
 * @throws {@link StoreError} `KV_CORRUPT` for such data (the message names no location:
 *   callers add it).
 */
export function freezeJson(value: unknown): unknown {
  return freezeAt(value, 0)
}

function freezeAt(value: unknown, depth: number): unknown {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new StoreError('KV_CORRUPT', 'a JSON string with a lone surrogate')
    return value
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StoreError('KV_CORRUPT', `a non-finite number (${value}) in JSON data`)
    return value
  }
  if (typeof value !== 'object' || value === null) return value
  if (depth > MAX_DEPTH) throw new StoreError('KV_CORRUPT', `JSON data nested deeper than ${MAX_DEPTH}`)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = freezeAt(value[i], depth + 1)
    return Object.freeze(value)
  }
  const out = Object.create(null) as Record<string, unknown>
  for (const k of Object.keys(value)) {
    if (!k.isWellFormed()) throw new StoreError('KV_CORRUPT', 'a JSON object key with a lone surrogate')
    out[k] = freezeAt((value as Record<string, unknown>)[k], depth + 1)
  }
  return Object.freeze(out)
}
