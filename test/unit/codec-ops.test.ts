import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/codec/bytes.js'
import { decodeOps, encodeOps, type Op } from '../../src/codec/ops.js'
import { canon, elementArb, numRuns, textArb } from '../helpers/values.js'

const idx = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER))
const time = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('set' as const), key: textArb, value: elementArb, expiresAt: time }),
  fc.record({ t: fc.constant('del' as const), key: textArb }),
  fc.record({ t: fc.constant('expire' as const), key: textArb, expiresAt: time }),
  fc.constant({ t: 'clear' as const }),
  fc.record({ t: fc.constant('push' as const), key: textArb, left: fc.boolean(), values: fc.array(elementArb, { maxLength: 5 }) }),
  fc.record({ t: fc.constant('pop' as const), key: textArb, left: fc.boolean(), count: fc.nat() }),
  fc
    .uniqueArray(fc.tuple(textArb, elementArb), { selector: ([f]) => f, maxLength: 5 })
    .chain((pairs) => fc.record({ t: fc.constant('hset' as const), key: textArb, fields: fc.constant(pairs.map(([f]) => f)), values: fc.constant(pairs.map(([, v]) => v)) })),
  fc.record({ t: fc.constant('hdel' as const), key: textArb, fields: fc.array(textArb, { maxLength: 5 }) }),
  fc.record({ t: fc.constant('lset' as const), key: textArb, index: idx, value: elementArb }),
  fc.record({ t: fc.constant('ltrim' as const), key: textArb, start: idx, stop: idx }),
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
})
