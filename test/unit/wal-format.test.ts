import { describe, it, expect } from 'vitest'
import * as zlib from 'node:zlib'
import { randomBytes } from 'node:crypto'
import {
  FORMAT_VERSION,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  SEGMENT_MAGIC,
  checkRecordBody,
  checkRecordHeader,
  isZero,
  crc32,
  crc32Range,
  decodeSegmentHeader,
  encodeRecord,
  encodeSegmentHeader,
  readRecordSeq,
  recordFrameSize,
} from '../../src/wal/format.js'
import { listSegments, parseSegmentFileName, segmentFileName, segmentPath } from '../../src/wal/segments.js'
import { MemFs } from '../helpers/mem-fs.js'

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex')
}

// The worked example of docs/FORMAT.md, byte for byte.
const WORKED_EXAMPLE = hex(`
  4b 56 57 4c 01 00 00 00 01 00 00 00 17 5a ed 5e 00 00 00 00 00 00 00 00 de 68 e4 72 00 00 00 00
  43 df 73 1d 05 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 fb 31 62 c5 68 65 6c 6c 6f 00 00 00
  44 a8 53 92 00 00 00 00 02 00 00 00 00 00 00 00 02 00 00 00 17 5a ed 5e
  af 4e c7 0d 08 00 00 00 03 00 00 00 00 00 00 00 01 00 00 00 1f 9c 0e 5a 6b 76 73 74 6f 72 65 21
`)

describe('crc32', () => {
  it('matches zlib.crc32 for any data and seed', () => {
    for (let i = 1; i < 200; i++) {
      const data = randomBytes(i * 3)
      const seed = randomBytes(4).readUInt32LE(0)
      expect(crc32Range(data, 0, data.length, seed)).toBe(zlib.crc32(data, seed))
      expect(crc32(data, seed)).toBe(zlib.crc32(data, seed))
    }
  })

  it('returns the seed for empty input, even for a view without backing memory', () => {
    expect(crc32(randomBytes(0), 123)).toBe(123)
    expect(crc32(new Uint8Array(0), 123)).toBe(123)
    expect(crc32Range(Buffer.alloc(4), 2, 2, 123)).toBe(123)
  })

  it('computes the CRC of any sub-range without a copy', () => {
    const data = randomBytes(300)
    for (let start = 0; start < 9; start++) {
      for (let end = start; end < 300; end += 7) expect(crc32Range(data, start, end, 7)).toBe(crc32(data.subarray(start, end), 7))
    }
  })

  it('uses the standard CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789'), 0)).toBe(0xcbf43926)
  })
})

describe('segment header', () => {
  it('round-trips segment number, salt and base sequence', () => {
    const h = encodeSegmentHeader(0xffff_ffff, 0xdead_beef, Number.MAX_SAFE_INTEGER)
    expect(h.length).toBe(SEGMENT_HEADER_SIZE)
    expect(decodeSegmentHeader(h)).toEqual({ segment: 0xffff_ffff, salt: 0xdead_beef, baseSeq: Number.MAX_SAFE_INTEGER })
  })

  it('starts with the magic and the version', () => {
    const h = encodeSegmentHeader(1, 2, 3)
    expect(h.readUInt32LE(0)).toBe(SEGMENT_MAGIC)
    expect(h.subarray(0, 4).toString('latin1')).toBe('KVWL')
    expect(h.readUInt32LE(4)).toBe(FORMAT_VERSION)
  })

  it('rejects a zeroed header, a bad magic, a bad checksum, another version and a non-zero reserved field', () => {
    expect(decodeSegmentHeader(Buffer.alloc(32))).toBe('zeroed')
    const magic = encodeSegmentHeader(1, 2, 3)
    magic[0] = 0x4a
    expect(decodeSegmentHeader(magic)).toBe('bad segment magic')
    const crc = encodeSegmentHeader(1, 2, 3)
    crc[9] = 0xff
    expect(decodeSegmentHeader(crc)).toBe('segment header checksum mismatch')
    const version = encodeSegmentHeader(1, 2, 3)
    version.writeUInt32LE(2, 4)
    version.writeUInt32LE(crc32Range(version, 0, 24, 0), 24)
    expect(decodeSegmentHeader(version)).toBe('unsupported WAL format version 2')
    const reserved = encodeSegmentHeader(1, 2, 3)
    reserved[31] = 1
    expect(decodeSegmentHeader(reserved)).toBe('segment header reserved field is not zero')
  })
})

describe('record framing', () => {
  it('aligns every frame to 8 bytes', () => {
    expect([0, 1, 7, 8, 9, 16].map(recordFrameSize)).toEqual([24, 32, 32, 32, 40, 40])
  })

  it('encodes the worked example of docs/FORMAT.md exactly', () => {
    const out = Buffer.alloc(120, 0xff)
    encodeSegmentHeader(1, 0x5eed5a17, 0).copy(out)
    let off = SEGMENT_HEADER_SIZE
    off = encodeRecord(out, off, 0x5eed5a17, 1, 1, Buffer.from('hello'))
    off = encodeRecord(out, off, 0x5eed5a17, 2, 2, new Uint8Array(0))
    off = encodeRecord(out, off, 0x5eed5a17, 3, 1, Buffer.from('kvstore!'))
    expect(off).toBe(120)
    expect(out.toString('hex')).toBe(WORKED_EXAMPLE.toString('hex'))
  })

  it('writes zero padding even over dirty buffer space', () => {
    const out = Buffer.alloc(64, 0xaa)
    const end = encodeRecord(out, 0, 1, 1, 1, Buffer.from('abc'))
    expect(end).toBe(32)
    expect([...out.subarray(27, 32)]).toEqual([0, 0, 0, 0, 0])
  })

  it('verifies a record and keeps sequence numbers up to 2^53 - 1 exact', () => {
    const out = Buffer.alloc(40)
    const seq = Number.MAX_SAFE_INTEGER
    encodeRecord(out, 0, 99, seq, 255, Buffer.from('payload!'))
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    const len = checkRecordHeader(out, view, 0, 99)
    expect(len).toBe(8)
    expect(checkRecordBody(out, view, 0, len, 99)).toBe(RECORD_HEADER_SIZE + 8)
    expect(readRecordSeq(view, 0)).toBe(seq)
  })

  it('fails verification under another salt', () => {
    const out = Buffer.alloc(32)
    encodeRecord(out, 0, 1, 1, 1, Buffer.from('x'))
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    expect(checkRecordHeader(out, view, 0, 2)).toBeLessThan(0)
  })
})

describe('isZero', () => {
  it('finds a single non-zero byte anywhere in short and long ranges (JS loop and block compare)', () => {
    for (const size of [0, 1, 255, 256, 257, 65_536, 65_537, 200_003]) {
      const bytes = new Uint8Array(size + 16)
      expect(isZero(bytes, 8, 8 + size)).toBe(true)
      for (const at of [0, 1, size >> 1, size - 1].filter((a) => a >= 0 && a < size)) {
        bytes[8 + at] = 1
        expect(isZero(bytes, 8, 8 + size)).toBe(false)
        // Bytes outside the range do not count.
        expect(isZero(bytes, 8 + at + 1, 8 + size)).toBe(true)
        bytes[8 + at] = 0
      }
      bytes[7] = 9
      bytes[8 + size] = 9
      expect(isZero(bytes, 8, 8 + size)).toBe(true)
      // A view with an offset into a larger buffer.
      expect(isZero(bytes.subarray(8), 0, size)).toBe(true)
    }
  })
})

describe('segment files', () => {
  it('names segments with ten zero-padded digits', () => {
    expect(segmentFileName(42)).toBe('wal-0000000042.log')
    expect(segmentFileName(0xffff_ffff)).toBe('wal-4294967295.log')
    expect(segmentPath('/db', 7)).toBe('/db/wal-0000000007.log')
  })

  it('rejects segment numbers outside u32', () => {
    expect(() => segmentFileName(-1)).toThrow(RangeError)
    expect(() => segmentFileName(1.5)).toThrow(RangeError)
    expect(() => segmentFileName(2 ** 32)).toThrow(RangeError)
  })

  it('parses only exact segment file names', () => {
    expect(parseSegmentFileName('wal-0000000042.log')).toBe(42)
    for (const bad of ['wal-42.log', 'wal-0000000042.log.broken', 'wal-0000000042.tmp', 'xwal-0000000042.log', 'wal-9999999999.log']) {
      expect(parseSegmentFileName(bad)).toBeUndefined()
    }
  })

  it('lists segment numbers in ascending order, ignoring other files', () => {
    const fs = new MemFs()
    fs.mkdir('/db')
    for (const name of ['wal-0000000010.log', 'snap-5', 'wal-0000000002.log', 'wal-0000000009.log.broken', 'wal-0000000001.log']) {
      fs.putFile(`/db/${name}`, new Uint8Array(0))
    }
    expect(listSegments(fs, '/db')).toEqual([1, 2, 10])
  })

  it('reports an unreadable directory as KV_IO', () => {
    expect(() => listSegments(new MemFs(), '/missing')).toThrow(expect.objectContaining({ code: 'KV_IO' }))
  })
})
