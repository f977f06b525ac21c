// The etcd key layout: byte order equals kvstore's key order, keys round-trip, and
// records kvstore never wrote are refused with KV_CORRUPT.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Kind, Layout, bytesPrefixEnd, decodeElement, decodeRecord, encodeElement, encodeRecord, keyBytes, keyFromBytes } from '../../src/etcd/layout.js'
import { codeOf } from '../helpers/codes.js'

const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
const anyKey = fc.oneof(key, fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => s.isWellFormed()))
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

describe('etcd layout', () => {
  it('orders key bytes exactly as JavaScript orders strings (UTF-16 code units), astral characters included', () => {
    // U+E000 sorts after a surrogate pair in UTF-16 order but before it in UTF-8 order.
    expect(cmp('\u{1F600}', '\uE000')).toBe(-1)
    expect(Buffer.compare(keyBytes('\u{1F600}'), keyBytes('\uE000'))).toBe(-1)
    fc.assert(
      fc.property(anyKey, anyKey, (a, b) => {
        expect(Math.sign(Buffer.compare(keyBytes(a), keyBytes(b)))).toBe(cmp(a, b))
      }),
      { numRuns: 2000 },
    )
  })

  it('round-trips every well-formed key, and is plain UTF-8 without astral characters', () => {
    fc.assert(fc.property(anyKey, (k) => {
      expect(keyFromBytes(keyBytes(k))).toBe(k)
    }), { numRuns: 2000 })
    expect(keyBytes('user:1 é').equals(Buffer.from('user:1 é', 'utf8'))).toBe(true)
  })

  it('refuses key bytes that are not valid UTF-8', async () => {
    expect(await codeOf(Promise.resolve().then(() => keyFromBytes(Buffer.from([0x61, 0xff]))))).toBe('KV_CORRUPT')
  })

  it('keeps one key’s elements apart from every other key’s, even when one key is a prefix of another', () => {
    const L = new Layout('ns/')
    const a = L.elements('a', 7)
    const ab = L.elements('a\u0000b', 7)
    expect(ab.subarray(0, a.length).equals(a)).toBe(false)
    expect(L.elements('a', 8).equals(a)).toBe(false)
    // List element keys sort by index, negative indices (after lpush) first.
    const idx = [-3, -1, 0, 1, 2 ** 40]
    const keys = idx.map((i) => L.listElement('l', 1, i))
    expect([...keys].sort(Buffer.compare)).toEqual(keys)
  })

  it('record ranges take the tighter bound and cover exactly the keys in it', () => {
    const L = new Layout('')
    const [start, end] = L.recordRange({ gt: 'a', gte: 'b', lt: 'y', lte: 'x' })
    expect(start.equals(L.record('b'))).toBe(true)
    expect(end.equals(L.recordAfter('x'))).toBe(true)
    expect(bytesPrefixEnd(Buffer.from([0x61, 0xff])).equals(Buffer.from([0x62]))).toBe(true)
  })

  it('round-trips records and elements, and refuses bytes it never writes with KV_CORRUPT', async () => {
    for (const rec of [
      { kind: Kind.VALUE, expiresAt: 0, value: { a: [1, 'x'] } },
      { kind: Kind.LIST, expiresAt: 1_700_000_000_123, gen: 42, head: -2, tail: 5 },
      { kind: Kind.HASH, expiresAt: 0, gen: 9, size: 3 },
    ] as const) {
      expect(decodeRecord(encodeRecord(rec))).toEqual(rec)
    }
    expect(decodeElement(encodeElement(new Uint8Array([1, 2])))).toEqual(new Uint8Array([1, 2]))
    for (const bad of [Buffer.alloc(0), Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0, 1, 2]), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 99])]) {
      expect(await codeOf(Promise.resolve().then(() => decodeRecord(bad)))).toBe('KV_CORRUPT')
    }
    expect(await codeOf(Promise.resolve().then(() => decodeElement(Buffer.from([0, 0xff, 0xff, 0xff, 0xff]))))).toBe('KV_CORRUPT')
  })
})
