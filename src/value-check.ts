import { jsonText } from './codec/json-text.js'
import { StoreError } from './errors.js'

/**
 * A value kvstore can store exactly: JSON data (strings, finite numbers, booleans,
 * null, arrays and plain objects of those) and `Uint8Array`.
 */
export type Value = string | number | boolean | null | Uint8Array | readonly Value[] | { readonly [k: string]: Value }

/** Deepest nesting accepted in a JSON value; deeper data is rejected, not truncated. */
export const MAX_DEPTH = 256

/**
 * Validates `value` and returns the form the store keeps.
 *
 * Primitives are kept as they are. Objects and arrays are deep-copied and deep-frozen:
 * freezing (not copy-on-read) was chosen because reads far outnumber writes; a frozen
 * value is handed to every `get` with no copy, and nobody can change it behind the
 * WAL. `Uint8Array`s cannot be frozen, so they are copied in and copied out.
 *
 * @throws {@link StoreError} `KV_INVALID_VALUE` for undefined, functions, symbols,
 *   bigints, non-finite numbers, strings with lone surrogates, cycles, class
 *   instances other than `Uint8Array` (Date, Map, Set …), and nesting over {@link MAX_DEPTH}.
 */
export function prepareValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw invalid('a string with a lone surrogate (it cannot round-trip through UTF-8)')
      return value
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`${value} (only finite numbers round-trip)`)
      return value
    case 'boolean':
      return value
    case 'object':
      if (value === null) return null
      if (value instanceof Uint8Array) return copyBytes(value)
      return freezeClone(value, 0, [])
    default:
      throw invalid(typeof value)
  }
}

/** Copy bytes into a plain `Uint8Array` (never a `Buffer` pool slice). */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length)
  out.set(bytes)
  return out
}

function invalid(what: string): StoreError {
  return new StoreError('KV_INVALID_VALUE', `cannot store ${what}`)
}

function freezeClone(value: object, depth: number, stack: object[]): unknown {
  if (depth > MAX_DEPTH) throw invalid(`a value nested deeper than ${MAX_DEPTH}`)
  if (stack.includes(value)) throw invalid('a circular structure')
  stack.push(value)
  let out: unknown
  if (Array.isArray(value)) {
    const arr = new Array<unknown>(value.length)
    for (let i = 0; i < value.length; i++) arr[i] = prepareNested(value[i], depth, stack)
    out = Object.freeze(arr)
  } else {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name
      throw invalid(`an instance of ${typeof name === 'string' ? name : 'a class'} (only plain objects, arrays and Uint8Array)`)
    }
    // Null prototype: '__proto__' stays an ordinary own key, as JSON.parse makes it.
    const obj: Record<string, unknown> = Object.create(null) as Record<string, unknown>
    for (const k of Object.keys(value)) {
      if (!k.isWellFormed()) throw invalid('an object key with a lone surrogate')
      obj[k] = prepareNested((value as Record<string, unknown>)[k], depth, stack)
    }
    out = Object.freeze(obj)
  }
  stack.pop()
  return out
}

function prepareNested(v: unknown, depth: number, stack: object[]): unknown {
  if (typeof v === 'object' && v !== null) {
    if (v instanceof Uint8Array) throw invalid('a Uint8Array nested inside JSON data')
    return freezeClone(v, depth + 1, stack)
  }
  return prepareValue(v)
}

/**
 * Bytes `value` takes once encoded, or a cheap upper bound when that bound is at
 * most `limitBytes` (so the common small value never pays for an exact count).
 * Used for `maxValueBytes` before anything is logged.
 */
export function encodedSize(value: unknown, limitBytes: number): number {
  switch (typeof value) {
    case 'string':
      return value.length * 3 <= limitBytes ? value.length * 3 : Buffer.byteLength(value, 'utf8')
    case 'number':
      return 8
    case 'boolean':
      return 1
    case 'object':
      if (value === null) return 1
      if (value instanceof Uint8Array) return value.length
      return Buffer.byteLength(jsonText(value), 'utf8')
    default:
      return 0
  }
}

/**
 * Estimated encoded size of a write of `stored` (or of a delete, without it) under `key`:
 * what batch, transaction and atomic limits (`maxBatchBytes`) count. A UTF-16 code unit is
 * at most 3 UTF-8 bytes, so the key never counts for less than it takes.
 */
export function writeBytes(key: string, stored?: unknown, limitBytes = Infinity): number {
  return key.length * 3 + (arguments.length > 1 ? encodedSize(stored, limitBytes) : 0)
}
