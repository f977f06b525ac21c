// How many bytes an entry counts for against `maxMemoryBytes`: the encoded sizes of its key
// and value plus fixed overheads. The formula is the contract `stats().memoryBytes` keeps
// exactly (README "Memory and eviction"); it is an estimate of the heap, not a measure of it.
import { jsonText } from '../codec/json-text.js'

/**
 * Fixed bytes counted for every key besides its key and value bytes: the memtable's four
 * array slots, the hash-index entry and the string and value headers V8 keeps. The memory
 * bench measures 92 bytes per entry beyond the raw key and value at 1M entries (Node 20,
 * x64); an LRU or LFU policy's stamp adds a Map entry more, so under those policies the heap
 * runs ~10 % above the account (the eviction bench: 1.21x the budget after GC at 1 KiB values).
 */
export const ENTRY_OVERHEAD_BYTES = 96

/** Fixed bytes counted for every list element or hash field besides its own bytes (ring-buffer slot or Map entry, headers). */
export const ELEMENT_OVERHEAD_BYTES = 24

// Frozen JSON values never change, so their size is measured once (a write measures the
// value when it is admitted under the budget and again when it is applied).
const jsonBytes = new WeakMap<object, number>()

/**
 * Encoded bytes of a stored plain value: UTF-8 bytes of a string, 8 for a number, 1 for a
 * boolean or null, the length of a `Uint8Array`, the UTF-8 bytes of a JSON object's text.
 */
export function valueBytes(v: unknown): number {
  switch (typeof v) {
    case 'string':
      return Buffer.byteLength(v, 'utf8')
    case 'number':
      return 8
    case 'boolean':
      return 1
    case 'object': {
      if (v === null) return 1
      if (v instanceof Uint8Array) return v.length
      let n = jsonBytes.get(v)
      if (n === undefined) {
        n = Buffer.byteLength(jsonText(v), 'utf8')
        if (Object.isFrozen(v)) jsonBytes.set(v, n)
      }
      return n
    }
    default:
      return 0
  }
}

/** Bytes a key counts for before its value: UTF-8 bytes of the key plus {@link ENTRY_OVERHEAD_BYTES}. */
export function keyBytes(key: string): number {
  return Buffer.byteLength(key, 'utf8') + ENTRY_OVERHEAD_BYTES
}

/** Bytes one list element counts for. */
export function elementBytes(v: unknown): number {
  return valueBytes(v) + ELEMENT_OVERHEAD_BYTES
}

/** Bytes one hash field counts for: its name, its value and the overhead. */
export function fieldBytes(field: string, v: unknown): number {
  return Buffer.byteLength(field, 'utf8') + valueBytes(v) + ELEMENT_OVERHEAD_BYTES
}
