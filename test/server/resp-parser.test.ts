import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { MAX_INLINE_BYTES, NOT_TEXT, RespParser, RespProtocolError, type RespLimits, type RespRequest } from '../../src/server/resp-parser.js'
import { numRuns } from '../helpers/values.js'

const LIMITS: RespLimits = { maxBulkBytes: 1024 * 1024, maxArrayLength: 1000, maxQueryBufferBytes: 4 * 1024 * 1024 }

function frame(words: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${words.length}\r\n`)]
  for (const w of words) {
    const b = typeof w === 'string' ? Buffer.from(w) : w
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/** Every request `bytes` holds, fed in the given chunk sizes. */
function parseAll(bytes: Buffer, chunks: readonly number[] = [bytes.length], limits = LIMITS): RespRequest[] {
  const p = new RespParser(limits)
  const out: RespRequest[] = []
  let at = 0
  let i = 0
  while (at < bytes.length) {
    const n = Math.max(1, chunks[i++ % chunks.length] as number)
    p.push(bytes.subarray(at, at + n))
    at += n
    for (let r = p.next(); r !== undefined; r = p.next()) out.push(r)
  }
  return out
}

function protocolError(bytes: Buffer, limits = LIMITS): string {
  try {
    parseAll(bytes, [bytes.length], limits)
  } catch (err) {
    expect(err).toBeInstanceOf(RespProtocolError)
    return (err as Error).message
  }
  throw new Error('no protocol error')
}

describe('RespParser', () => {
  it('parses multibulk and inline requests, pipelined, skipping empty lines and empty arrays', () => {
    const bytes = Buffer.concat([frame(['SET', 'k', 'v w']), Buffer.from('GET k\r\n\r\n*0\r\n*-1\r\nPING "a b" \'c\'\n'), frame(['ECHO', ''])])
    expect(parseAll(bytes)).toEqual([{ args: ['SET', 'k', 'v w'] }, { args: ['GET', 'k'] }, { args: ['PING', 'a b', 'c'] }, { args: ['ECHO', ''] }])
  })

  it('gives the same requests however the bytes are split into chunks', async () => {
    const word = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 5 }))
    const requests = fc.array(fc.array(word, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 })
    await fc.assert(
      fc.property(requests, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), (reqs, chunks) => {
        const bytes = Buffer.concat(reqs.map((r) => frame(r)))
        expect(parseAll(bytes, chunks)).toEqual(reqs.map((args) => ({ args })))
      }),
      { numRuns: numRuns(300) },
    )
  })

  it('keeps words that are not UTF-8 as bytes (Latin-1 in args), so ECHO can send them back', () => {
    const raw = Buffer.from([0xff, 0x00, 0xc3])
    const [req] = parseAll(frame(['ECHO', raw]))
    if (req?.args === undefined) throw new Error('no request')
    expect(req.args).toEqual(['ECHO', raw.toString('latin1')])
    expect(req.binary?.[1]).toEqual(raw)
    expect(req.binary?.[0]).toBeUndefined()
    expect(parseAll(Buffer.from([0x47, 0x45, 0x54, 0x20, 0xff, 0x0d, 0x0a]))).toEqual([{ invalid: NOT_TEXT }])
  })

  it('merges the chunks of a large bulk once, not once per chunk', () => {
    const value = Buffer.alloc(512 * 1024, 'x')
    const bytes = frame(['SET', 'k', value])
    const p = new RespParser(LIMITS)
    const concat = vi.spyOn(Buffer, 'concat')
    let results = 0
    try {
      for (let at = 0; at < bytes.length; at += 1000) {
        p.push(bytes.subarray(at, at + 1000))
        if (p.next() !== undefined) results++
      }
      // 525 chunks: merged for the headers, then once when the bulk is complete.
      expect(concat.mock.calls.length).toBeLessThanOrEqual(3)
    } finally {
      concat.mockRestore()
    }
    expect(results).toBe(1)
    expect(p.bufferedBytes).toBe(0)
  })

  it('refuses malformed headers with Redis protocol errors', () => {
    expect(protocolError(Buffer.from('*x\r\n'))).toBe('Protocol error: invalid multibulk length')
    expect(protocolError(Buffer.from('*1\r\n+GET\r\n'))).toBe("Protocol error: expected '$', got '+'")
    expect(protocolError(Buffer.from('*1\r\n$-5\r\n'))).toBe('Protocol error: invalid bulk length')
    expect(protocolError(Buffer.from('*1\r\n$12a\r\n'))).toBe('Protocol error: invalid bulk length')
    expect(protocolError(Buffer.from('PING "open\r\n'))).toBe('Protocol error: unbalanced quotes in request')
  })

  it('checks declared lengths against the limits before waiting for (or allocating) the bytes', () => {
    expect(protocolError(Buffer.from('*1001\r\n'))).toBe('Protocol error: invalid multibulk length')
    expect(protocolError(Buffer.from(`*1\r\n$${1024 * 1024 + 1}\r\n`))).toBe('Protocol error: invalid bulk length')
    expect(protocolError(Buffer.from('*1\r\n$999999999999999999\r\n'))).toBe('Protocol error: invalid bulk length')
    expect(protocolError(Buffer.from('*99999999999999999\r\n'))).toBe('Protocol error: invalid multibulk length')
    // A declared length within the limits costs only the bytes that actually arrive.
    const p = new RespParser(LIMITS)
    p.push(Buffer.from(`*2\r\n$${1024 * 1024}\r\nabc`))
    expect(p.next()).toBeUndefined()
    expect(p.bufferedBytes).toBeLessThan(64)
  })

  it('applies Redis limits to unauthenticated clients: 10 elements, 16 KiB bulks', () => {
    const pre = { ...LIMITS, unauthenticated: true }
    expect(protocolError(frame(Array.from({ length: 11 }, () => 'a')), pre)).toBe('Protocol error: unauthenticated multibulk length')
    expect(protocolError(frame(['AUTH', 'x'.repeat(16_385)]), pre)).toBe('Protocol error: unauthenticated bulk length')
    expect(parseAll(frame(['AUTH', 'x'.repeat(16_384)]), [100_000], pre)).toHaveLength(1)
    // Lifted once authenticated.
    const p = new RespParser(pre)
    p.setLimits(LIMITS)
    p.push(frame(Array.from({ length: 11 }, () => 'a')))
    expect(p.next()?.args).toHaveLength(11)
  })

  it('bounds lines without a newline and requests over the query buffer limit', () => {
    expect(protocolError(Buffer.alloc(MAX_INLINE_BYTES + 2, 'a'))).toBe('Protocol error: too big inline request')
    expect(protocolError(Buffer.concat([Buffer.from('*1\r\n$'), Buffer.alloc(MAX_INLINE_BYTES + 2, '1')]))).toBe('Protocol error: too big bulk count string')
    const small = { maxBulkBytes: 1000, maxArrayLength: 1000, maxQueryBufferBytes: 5000 }
    const many = frame(Array.from({ length: 10 }, () => 'x'.repeat(900)))
    expect(protocolError(many.subarray(0, many.length - 1), small)).toMatch(/^max query buffer length reached/)
  })
})
