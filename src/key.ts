import { StoreError } from './errors.js'

/**
 * Checks that `key` is a storable key: a non-empty, well-formed string of at most
 * `maxKeyBytes` UTF-8 bytes.
 *
 * Keys are ordered by UTF-16 code units (JavaScript `<`). Lone surrogates are
 * rejected because they cannot round-trip through UTF-8 on disk.
 *
 * @throws {@link StoreError} `KV_INVALID_KEY`.
 */
export function validateKey(key: unknown, maxKeyBytes: number): asserts key is string {
  if (typeof key !== 'string') {
    throw new StoreError('KV_INVALID_KEY', `key must be a string, got ${key === null ? 'null' : typeof key}`)
  }
  if (key.length === 0) throw new StoreError('KV_INVALID_KEY', 'key must not be empty')
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short keys skip the exact count.
  if (key.length * 3 > maxKeyBytes && Buffer.byteLength(key, 'utf8') > maxKeyBytes) {
    throw new StoreError('KV_INVALID_KEY', `key is longer than ${maxKeyBytes} UTF-8 bytes`)
  }
  if (!key.isWellFormed()) throw new StoreError('KV_INVALID_KEY', 'key contains a lone surrogate')
}

/**
 * The smallest string greater than every string starting with `prefix`, or
 * `undefined` when there is none (prefix of only U+FFFF code units).
 */
export function prefixEnd(prefix: string): string | undefined {
  let end = prefix.length
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xffff) end--
  if (end === 0) return undefined
  return prefix.slice(0, end - 1) + String.fromCharCode(prefix.charCodeAt(end - 1) + 1)
}

/** Bounds of every key starting with `prefix` (no bounds for the empty prefix). */
export function prefixBounds(prefix: string): { gte?: string; lt?: string } {
  if (prefix === '') return {}
  const end = prefixEnd(prefix)
  return end === undefined ? { gte: prefix } : { gte: prefix, lt: end }
}
