// Typed value encoding shared by the WAL op codec and binary snapshots:
// tag u8, then the tag's data (see ValueTag).

import { KvHash, KvList } from '../collections.js'
import { StoreError } from '../errors.js'
import type { ByteReader, ByteWriter } from './bytes.js'

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
      w.string(JSON.stringify(value))
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

/**
 * Read one value (tag + data) from `r`.
 *
 * JSON values come back deep-frozen with null-prototype objects (as the store keeps
 * them); bytes come back as a fresh plain `Uint8Array` (never a view of `r`'s buffer);
 * collections come back with epoch 0.
 *
 * @throws {@link StoreError} `KV_CORRUPT` on an unknown tag, a collection inside a
 *   collection, malformed JSON, or data cut short.
 */
export function decodeValue(r: ByteReader): unknown {
  return decode(r, true)
}

function decode(r: ByteReader, allowCollections: boolean): unknown {
  const at = r.pos
  const tag = r.u8()
  switch (tag) {
    case ValueTag.STRING:
      return r.string()
    case ValueTag.NUMBER:
      return r.f64()
    case ValueTag.JSON: {
      const text = r.string()
      return parseJsonValue(text, at)
    }
    case ValueTag.BYTES: {
      const n = r.u32()
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
      // Each element takes at least one byte: a count beyond the remaining bytes is damage,
      // caught before it can size an allocation.
      if (n > r.remaining) r.bytes(n)
      const items = new Array<unknown>(n)
      for (let i = 0; i < n; i++) items[i] = decode(r, false)
      return new KvList(items)
    }
    case ValueTag.HASH: {
      if (!allowCollections) throw nested(at)
      const n = r.u32()
      if (n > r.remaining) r.bytes(n)
      const hash = new KvHash()
      for (let i = 0; i < n; i++) {
        const field = r.string()
        hash.set(field, decode(r, false))
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
  return freezeJson(parsed)
}

/**
 * Deep-freeze freshly parsed JSON data, rebuilding objects with a null prototype.
 *
 * The result has the shape the store keeps (see `prepareValue`): `__proto__` stays an
 * ordinary own key and nothing can be changed through a value read back. O(size).
 */
export function freezeJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = freezeJson(value[i])
    return Object.freeze(value)
  }
  const out = Object.create(null) as Record<string, unknown>
  for (const k of Object.keys(value)) out[k] = freezeJson((value as Record<string, unknown>)[k])
  return Object.freeze(out)
}
