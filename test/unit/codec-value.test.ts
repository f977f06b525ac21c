import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteReader, ByteWriter } from '../../src/codec/bytes.js'
import { decodeString, decodeValue, encodeValue, freezeJson, ValueTag, valueTag } from '../../src/codec/value.js'
import { KvHash, KvList } from '../../src/collections.js'
import { MAX_DEPTH, prepareValue } from '../../src/value-check.js'
import { canon, numRuns, valueArb } from '../helpers/values.js'

function roundTrip(v: unknown): unknown {
  const w = new ByteWriter(8)
  encodeValue(w, v)
  const r = new ByteReader(w.finish())
  const out = decodeValue(r)
  expect(r.remaining).toBe(0)
  return out
}

function encoded(v: unknown): number[] {
  const w = new ByteWriter()
  encodeValue(w, v)
  return [...w.finish()]
}

describe('value codec', () => {
  it('round-trips every value kind exactly', () => {
    fc.assert(
      fc.property(valueArb, (v) => {
        expect(canon(roundTrip(v))).toEqual(canon(v))
      }),
      { numRuns: numRuns(300) },
    )
  })

  it('uses the documented tags and layouts', () => {
    expect(encoded('ab')).toEqual([0, 2, 0, 0, 0, 0x61, 0x62])
    expect(encoded(1)).toEqual([1, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f])
    expect(encoded([1])).toEqual([2, 3, 0, 0, 0, 0x5b, 0x31, 0x5d])
    expect(encoded(new Uint8Array([9]))).toEqual([3, 1, 0, 0, 0, 9])
    expect(encoded(true)).toEqual([4])
    expect(encoded(false)).toEqual([5])
    expect(encoded(null)).toEqual([6])
    expect(encoded(new KvList(['a']))).toEqual([7, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0x61])
    expect(encoded(new KvHash([['f', null]]))).toEqual([8, 1, 0, 0, 0, 1, 0, 0, 0, 0x66, 6])
  })

  it('keeps -0', () => {
    expect(Object.is(roundTrip(-0), -0)).toBe(true)
  })

  it('decodes JSON deep-frozen with __proto__ as an ordinary key', () => {
    const v = roundTrip(JSON.parse('{"__proto__":{"a":[1,{"b":2}]},"x":1}')) as Record<string, unknown>
    expect(Object.isFrozen(v)).toBe(true)
    expect(Object.getPrototypeOf(v)).toBe(null)
    expect(Object.keys(v)).toEqual(['__proto__', 'x'])
    const inner = v['__proto__'] as { a: unknown[] }
    expect(Object.isFrozen(inner.a)).toBe(true)
    expect(Object.isFrozen(inner.a[1])).toBe(true)
  })

  it('decodes bytes as a copy, not a view of the input', () => {
    const w = new ByteWriter()
    encodeValue(w, new Uint8Array([1, 2, 3]))
    const input = new Uint8Array(w.finish())
    const out = decodeValue(new ByteReader(input)) as Uint8Array
    input[5] = 99
    expect([...out]).toEqual([1, 2, 3])
    expect(Object.getPrototypeOf(out)).toBe(Uint8Array.prototype)
  })

  it('rejects an unknown tag as corrupt', () => {
    expect(() => decodeValue(new ByteReader(new Uint8Array([9])))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  it('rejects malformed JSON text as corrupt', () => {
    expect(() => decodeValue(new ByteReader(new Uint8Array([2, 1, 0, 0, 0, 0x7b])))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  it('rejects a collection nested in a collection on both sides', () => {
    expect(() => encoded(new KvList([new KvList()]))).toThrow(expect.objectContaining({ code: 'KV_INVALID_VALUE' }))
    expect(() => decodeValue(new ByteReader(new Uint8Array([7, 1, 0, 0, 0, 8, 0, 0, 0, 0])))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  it('rejects a huge element count without allocating for it', () => {
    expect(() => decodeValue(new ByteReader(new Uint8Array([7, 0xff, 0xff, 0xff, 0xff, 6])))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  const corrupt = expect.objectContaining({ code: 'KV_CORRUPT' })
  const jsonTag = (text: string): Uint8Array => {
    const w = new ByteWriter()
    w.u8(ValueTag.JSON)
    w.string(text)
    return new Uint8Array(w.finish())
  }

  it('refuses JSON nested deeper than set() accepts with KV_CORRUPT, not a stack overflow', () => {
    const nest = (d: number): string => '['.repeat(d) + ']'.repeat(d)
    // MAX_DEPTH + 1 arrays: the outermost is depth 0, as prepareValue counts.
    expect(() => prepareValue(JSON.parse(nest(MAX_DEPTH + 1)))).not.toThrow()
    expect(() => prepareValue(JSON.parse(nest(MAX_DEPTH + 2)))).toThrow()
    expect(JSON.stringify(decodeValue(new ByteReader(jsonTag(nest(MAX_DEPTH + 1)))))).toBe(nest(MAX_DEPTH + 1))
    expect(() => decodeValue(new ByteReader(jsonTag(nest(MAX_DEPTH + 2))))).toThrow(corrupt)
    expect(() => decodeValue(new ByteReader(jsonTag(nest(100_000))))).toThrow(corrupt)
    expect(() => freezeJson(JSON.parse(`{"a":${nest(100_000)}}`))).toThrow(corrupt)
  })

  it('refuses what set() refuses: non-finite numbers, lone surrogates in JSON', () => {
    const nan = new ByteWriter()
    nan.u8(ValueTag.NUMBER)
    nan.f64(Number.NaN)
    expect(() => decodeValue(new ByteReader(nan.finish()))).toThrow(corrupt)
    expect(() => decodeValue(new ByteReader(jsonTag('1e400')))).toThrow(corrupt)
    expect(() => decodeValue(new ByteReader(jsonTag('{"a":[-1e999]}')))).toThrow(corrupt)
    // An escaped backslash followed by text is fine; an escaped lone surrogate is not.
    expect(() => decodeValue(new ByteReader(jsonTag('["\\\\ud800"]')))).not.toThrow()
    expect(() => decodeValue(new ByteReader(jsonTag('["\\ud800"]')))).toThrow(corrupt)
    expect(() => decodeValue(new ByteReader(jsonTag('{"\\udfff":1}')))).toThrow(corrupt)
  })

  it('decodes strings strictly: invalid UTF-8 is corrupt, a leading U+FEFF is kept', () => {
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xe2]]) {
      const w = new ByteWriter()
      w.u8(ValueTag.STRING)
      w.u32(bad.length)
      w.bytes(new Uint8Array(bad))
      expect(() => decodeValue(new ByteReader(w.finish()))).toThrow(corrupt)
    }
    for (const s of ['\ufeff', '\ufeffabc', `${'x'.repeat(100)}\ufeff`, 'é', '\u{1F600}']) expect(roundTrip(s)).toBe(s)
  })

  it('checks each length against its limit before asking for the bytes', () => {
    const w = new ByteWriter()
    w.u8(ValueTag.STRING)
    w.u32(11)
    const r = new ByteReader(w.finish())
    // Only the length is present: over the limit is damage (no overrun, so no buffering for it) …
    expect(() => decodeValue(r, { maxValueBytes: 10 })).toThrow(/exceeds the limit of 10/)
    expect(r.needed).toBe(0)
    // … within the limit it is an overrun the caller may fill.
    const r2 = new ByteReader(w.finish())
    expect(() => decodeValue(r2, { maxValueBytes: 11 })).toThrow(corrupt)
    expect(r2.needed).toBe(16)
    const h = new ByteWriter()
    encodeValue(h, new KvHash([['field', 1]]))
    expect(() => decodeValue(new ByteReader(h.finish()), { maxFieldBytes: 4 })).toThrow(/hash field length 5/)
    expect(() => decodeString(new ByteReader(new Uint8Array([5, 0, 0, 0])), 4, 'key')).toThrow(/key length 5/)
  })

  it('refuses values it cannot encode', () => {

    expect(() => valueTag(undefined)).toThrow(expect.objectContaining({ code: 'KV_INVALID_VALUE' }))
    expect(() => encoded(() => 1)).toThrow(expect.objectContaining({ code: 'KV_INVALID_VALUE' }))
    expect(valueTag({})).toBe(ValueTag.JSON)
  })
})
