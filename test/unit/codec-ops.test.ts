import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { ByteWriter } from '../../src/codec/bytes.js'
import { OpCode, decodeOps, encodeOps, type Op } from '../../src/codec/ops.js'
import { canon, elementArb, numRuns, textArb } from '../helpers/values.js'

// Keys as the store writes them: non-empty (the decoder refuses "" as damage).
const keyArb = textArb.filter((k) => k !== '')
const idx = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER))
const time = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('set' as const), key: keyArb, value: elementArb, expiresAt: time }),
  fc.record({ t: fc.constant('del' as const), key: keyArb }),
  fc.record({ t: fc.constant('expire' as const), key: keyArb, expiresAt: time }),
  fc.constant({ t: 'clear' as const }),
  fc.record({ t: fc.constant('push' as const), key: keyArb, left: fc.boolean(), values: fc.array(elementArb, { minLength: 1, maxLength: 5 }) }),
  fc.record({ t: fc.constant('pop' as const), key: keyArb, left: fc.boolean(), count: fc.nat() }),
  fc
    .uniqueArray(fc.tuple(textArb, elementArb), { selector: ([f]) => f, minLength: 1, maxLength: 5 })
    .chain((pairs) => fc.record({ t: fc.constant('hset' as const), key: keyArb, fields: fc.constant(pairs.map(([f]) => f)), values: fc.constant(pairs.map(([, v]) => v)) })),
  fc.record({ t: fc.constant('hdel' as const), key: keyArb, fields: fc.array(textArb, { maxLength: 5 }) }),
  fc.record({ t: fc.constant('lset' as const), key: keyArb, index: idx, value: elementArb }),
  fc.record({ t: fc.constant('ltrim' as const), key: keyArb, start: idx, stop: idx }),
)

/** Ops with values in canon form, -0 made visible. */
function canonOps(ops: readonly Op[]): unknown[] {
  return ops.map((op) => {
    const o: Record<string, unknown> = { ...op }
    if ('value' in op) o.value = canon(op.value)
    if ('values' in op) o.values = op.values.map(canon)
    for (const k of ['index', 'start', 'stop', 'count', 'expiresAt']) if (k in o) o[k] = canon(o[k])
    return o
  })
}

describe('op codec', () => {
  it('round-trips any batch of ops', () => {
    const w = new ByteWriter(16)
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 8 }), (ops) => {
        w.reset()
        encodeOps(ops, w)
        expect(canonOps(decodeOps(w.finish()))).toEqual(canonOps(ops))
      }),
      { numRuns: numRuns(300) },
    )
  })

  it('appends after what the writer already holds', () => {
    const w = new ByteWriter()
    w.u32(0xdeadbeef)
    encodeOps([{ t: 'del', key: 'k' }], w)
    expect(decodeOps(w.finish().subarray(4))).toEqual([{ t: 'del', key: 'k' }])
  })

  it('encodes an empty batch as a zero count', () => {
    const w = new ByteWriter()
    encodeOps([], w)
    expect([...w.finish()]).toEqual([0, 0, 0, 0])
    expect(decodeOps(w.finish())).toEqual([])
  })

  it('rejects an unknown opcode, trailing bytes and a truncated payload as corrupt', () => {
    const w = new ByteWriter()
    encodeOps([{ t: 'set', key: 'k', value: 'v', expiresAt: 0 }], w)
    const good = new Uint8Array(w.finish())
    const badCode = good.slice()
    badCode[4] = 77
    expect(() => decodeOps(badCode)).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
    expect(() => decodeOps(new Uint8Array([...good, 0]))).toThrow(/trailing/)
    for (let n = 0; n < good.length; n++) {
      expect(() => decodeOps(good.subarray(0, n))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
    }
  })

  it('rejects an op count larger than the payload', () => {
    expect(() => decodeOps(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 4]))).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  it('refuses an hset whose fields and values differ in number', () => {
    expect(() => encodeOps([{ t: 'hset', key: 'h', fields: ['a'], values: [] }], new ByteWriter())).toThrow(RangeError)
  })

  it('refuses to encode an empty push or hset, which the decoder would refuse', () => {
    expect(() => encodeOps([{ t: 'push', key: 'l', left: true, values: [] }], new ByteWriter())).toThrow(RangeError)
    expect(() => encodeOps([{ t: 'hset', key: 'h', fields: [], values: [] }], new ByteWriter())).toThrow(RangeError)
  })
})

/** The payload of one op, hand-built: opcode, then `parts` (numbers are u32 unless wrapped with f64()). */
type Part = number | string | Uint8Array | { f64: number }
function payload(code: number, ...parts: Part[]): Uint8Array {
  const w = new ByteWriter()
  w.u32(1)
  w.u8(code)
  for (const p of parts) {
    if (typeof p === 'number') w.u32(p)
    else if (typeof p === 'string') w.string(p)
    else if (p instanceof Uint8Array) w.bytes(p)
    else w.f64(p.f64)
  }
  return new Uint8Array(w.finish())
}
const f64 = (v: number): { f64: number } => ({ f64: v })
/** Tagged value bytes: the string 'v'. */
const V = new Uint8Array([0, 1, 0, 0, 0, 0x76])
const LEFT = new Uint8Array([1])
const corrupt = expect.objectContaining({ code: 'KV_CORRUPT' })

describe('op decoder validation (hostile but checksummed payloads)', () => {
  it('accepts the hand-built payloads when every field is in range', () => {
    expect(decodeOps(payload(OpCode.SET, 'k', V, f64(0)))).toEqual([{ t: 'set', key: 'k', value: 'v', expiresAt: 0 }])
    expect(decodeOps(payload(OpCode.POP, 'k', LEFT, f64(0)))).toEqual([{ t: 'pop', key: 'k', left: true, count: 0 }])
    expect(decodeOps(payload(OpCode.LTRIM, 'k', f64(-5), f64(Number.MAX_SAFE_INTEGER)))).toMatchObject([{ start: -5 }])
    expect(decodeOps(payload(OpCode.HDEL, 'k', 1, ''))).toEqual([{ t: 'hdel', key: 'k', fields: [''] }])
  })

  it('refuses an empty key in every op that has one', () => {
    for (const bytes of [
      payload(OpCode.SET, '', V, f64(0)),
      payload(OpCode.DEL, ''),
      payload(OpCode.EXPIRE, '', f64(0)),
      payload(OpCode.PUSH, '', LEFT, 1, V),
      payload(OpCode.POP, '', LEFT, f64(1)),
      payload(OpCode.HSET, '', 1, 'f', V),
      payload(OpCode.HDEL, '', 1, 'f'),
      payload(OpCode.LSET, '', f64(0), V),
      payload(OpCode.LTRIM, '', f64(0), f64(1)),
    ]) {
      expect(() => decodeOps(bytes)).toThrow(corrupt)
      expect(() => decodeOps(bytes)).toThrow(/empty key/)
    }
  })

  it('refuses keys and hash fields that are not valid UTF-8 (they would not round-trip)', () => {
    // 0xED 0xA0 0x80 is a UTF-8-encoded lone surrogate; 0xFF never occurs in UTF-8.
    for (const bad of [[0xff], [0x61, 0xed, 0xa0, 0x80], [0xc3]]) {
      const raw = new Uint8Array([bad.length, 0, 0, 0, ...bad])
      expect(() => decodeOps(payload(OpCode.DEL, raw))).toThrow(/not valid UTF-8/)
      expect(() => decodeOps(payload(OpCode.HDEL, 'k', 1, raw))).toThrow(/not valid UTF-8/)
    }
    expect(decodeOps(payload(OpCode.DEL, 'ключ\u{1F600}'))).toEqual([{ t: 'del', key: 'ключ\u{1F600}' }])
  })

  it('refuses expiry times that are not safe non-negative integers', () => {
    for (const t of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 60)]) {
      expect(() => decodeOps(payload(OpCode.SET, 'k', V, f64(t)))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.EXPIRE, 'k', f64(t)))).toThrow(corrupt)
    }
  })

  it('refuses list indices and pop counts that are not safe integers, and negative pop counts', () => {
    for (const v of [0.5, Number.NaN, Number.POSITIVE_INFINITY, -Number.POSITIVE_INFINITY, 2 ** 53, -(2 ** 53)]) {
      expect(() => decodeOps(payload(OpCode.LSET, 'k', f64(v), V))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.LTRIM, 'k', f64(v), f64(0)))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.LTRIM, 'k', f64(0), f64(v)))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.POP, 'k', LEFT, f64(v)))).toThrow(corrupt)
    }
    expect(() => decodeOps(payload(OpCode.POP, 'k', LEFT, f64(-1)))).toThrow(corrupt)
  })

  it('refuses empty pushes and hsets, and counts beyond the bytes left, before allocating', () => {
    expect(() => decodeOps(payload(OpCode.PUSH, 'k', LEFT, 0))).toThrow(corrupt)
    expect(() => decodeOps(payload(OpCode.HSET, 'k', 0))).toThrow(corrupt)
    for (const n of [2, 0xffff_ffff]) {
      expect(() => decodeOps(payload(OpCode.PUSH, 'k', LEFT, n, V))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.HSET, 'k', n, 'f', V))).toThrow(corrupt)
      expect(() => decodeOps(payload(OpCode.HDEL, 'k', n, 'f'))).toThrow(corrupt)
    }
    // A key length of 4 GiB - 1 in a 20-byte payload.
    expect(() => decodeOps(payload(OpCode.DEL, 0xffff_ffff))).toThrow(/runs past the payload/)
  })

  it('turns any other error raised while decoding into KV_CORRUPT, keeping it as the cause', async () => {
    // A fresh module graph whose value decoder fails the way a bug would (not with a StoreError).
    vi.resetModules()
    vi.doMock('../../src/codec/value.js', async (original) => ({
      ...(await original<typeof import('../../src/codec/value.js')>()),
      decodeValue: () => {
        throw new TypeError('decoder bug')
      },
    }))
    try {
      const fresh = await import('../../src/codec/ops.js')
      let caught: unknown
      try {
        fresh.decodeOps(payload(OpCode.SET, 'k', V, f64(0)))
      } catch (err) {
        caught = err
      }
      expect(caught).toMatchObject({ name: 'StoreError', code: 'KV_CORRUPT' })
      expect((caught as Error).cause).toBeInstanceOf(TypeError)
    } finally {
      vi.doUnmock('../../src/codec/value.js')
      vi.resetModules()
    }
  })
})
