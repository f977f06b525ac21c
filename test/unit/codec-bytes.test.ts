import { describe, expect, it } from 'vitest'
import { ByteReader, ByteWriter } from '../../src/codec/bytes.js'
import { isStoreError } from '../../src/errors.js'

describe('ByteWriter', () => {
  it('writes integers little-endian', () => {
    const w = new ByteWriter(16)
    w.u8(0xab)
    w.u16(0x0102)
    w.u32(0x04030201)
    w.u64(2 ** 40 + 5)
    expect([...w.finish()]).toEqual([0xab, 0x02, 0x01, 0x01, 0x02, 0x03, 0x04, 5, 0, 0, 0, 0, 1, 0, 0])
  })

  it('writes strings with a u32 UTF-8 length prefix, ASCII and not', () => {
    const w = new ByteWriter(4)
    w.string('abc')
    w.string('é\u{1F600}')
    w.string('x'.repeat(100))
    const b = Buffer.from(w.finish())
    expect(b.readUInt32LE(0)).toBe(3)
    expect(b.toString('utf8', 4, 7)).toBe('abc')
    expect(b.readUInt32LE(7)).toBe(6)
    expect(b.toString('utf8', 11, 17)).toBe('é\u{1F600}')
    expect(b.readUInt32LE(17)).toBe(100)
    expect(b.length).toBe(121)
  })

  it('grows from a tiny capacity and keeps earlier bytes', () => {
    const w = new ByteWriter(1)
    for (let i = 0; i < 10_000; i++) w.u8(i & 0xff)
    const out = w.finish()
    expect(out.length).toBe(10_000)
    expect(out[9_999]).toBe(9_999 & 0xff)
    expect(out[255]).toBe(255)
  })

  it('reuses its buffer after reset', () => {
    const w = new ByteWriter(64)
    w.string('first')
    const a = w.finish()
    w.reset()
    w.string('other')
    const b = w.finish()
    expect(b.buffer).toBe(a.buffer)
    expect(w.length).toBe(9)
  })

  it('gives back capacity above 1 MiB on reset and sizes long strings exactly', () => {
    const w = new ByteWriter(64)
    const long = 'é'.repeat(1_000_000)
    w.string(long)
    expect(w.length).toBe(4 + 2_000_000)
    expect(new ByteReader(w.finish()).string()).toBe(long)
    const big = w.finish().buffer
    w.reset()
    w.u8(1)
    expect(w.finish().buffer).not.toBe(big)
  })

  it('back-patches a reserved u32', () => {
    const w = new ByteWriter()
    const at = w.reserve(4)
    w.string('hi')
    w.setU32(at, w.length)
    expect(new ByteReader(w.finish()).u32()).toBe(10)
    expect(() => w.setU32(8, 1)).toThrow(RangeError)
  })

  it('rejects a u64 that is negative or unsafe', () => {
    const w = new ByteWriter()
    expect(() => w.u64(-1)).toThrow(RangeError)
    expect(() => w.u64(2 ** 53)).toThrow(RangeError)
    expect(() => w.u64(1.5)).toThrow(RangeError)
  })
})

describe('ByteReader', () => {
  it('round-trips every field type', () => {
    const w = new ByteWriter()
    w.u8(7)
    w.u16(65535)
    w.u32(0xffffffff)
    w.u64(Number.MAX_SAFE_INTEGER)
    w.f64(-0)
    w.f64(Math.PI)
    w.string('')
    w.string('k\u{10FFFF}\uffff')
    w.bytes(new Uint8Array([1, 2]))
    w.text('tail')
    const r = new ByteReader(w.finish())
    expect(r.u8()).toBe(7)
    expect(r.u16()).toBe(65535)
    expect(r.u32()).toBe(0xffffffff)
    expect(r.u64()).toBe(Number.MAX_SAFE_INTEGER)
    expect(Object.is(r.f64(), -0)).toBe(true)
    expect(r.f64()).toBe(Math.PI)
    expect(r.string()).toBe('')
    expect(r.string()).toBe('k\u{10FFFF}\uffff')
    expect([...r.bytes(2)]).toEqual([1, 2])
    expect(r.text(4)).toBe('tail')
    expect(r.remaining).toBe(0)
  })

  it('reads big-endian when told to', () => {
    const r = new ByteReader(new Uint8Array([0, 0x4b, 0x56, 0xdb, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]), false)
    expect(r.u32()).toBe(0x4b56db)
    expect(r.u32()).toBe(1)
    expect(r.u64()).toBe(256)
  })

  it('throws KV_CORRUPT past the end and reports the bytes needed', () => {
    const w = new ByteWriter()
    w.string('hello')
    const bytes = w.finish().subarray(0, 6)
    const r = new ByteReader(bytes)
    let err: unknown
    try {
      r.string()
    } catch (e) {
      err = e
    }
    expect(isStoreError(err, 'KV_CORRUPT')).toBe(true)
    expect(r.needed).toBe(9)
    expect(r.pos).toBe(0)
    expect(() => new ByteReader(new Uint8Array(3)).u32()).toThrow(/unexpected end/)
  })

  it('rejects a u64 of 2^53 or more as corrupt', () => {
    const r = new ByteReader(new Uint8Array([0, 0, 0, 0, 0, 0, 0x20, 0]))
    expect(() => r.u64()).toThrow(expect.objectContaining({ code: 'KV_CORRUPT' }))
  })

  it('checks UTF-8 well-formedness without moving', () => {
    const r = new ByteReader(new Uint8Array([0xc3, 0xa9, 0xff]))
    expect(r.utf8Valid(2)).toBe(true)
    expect(r.utf8Valid(3)).toBe(false)
    expect(r.pos).toBe(0)
  })
})
