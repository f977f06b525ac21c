// Edge cases of src/wal/format.ts that the mutation run of wal/ showed untested: defect codes
// and their descriptions, segment and record header field limits, short input, padding writes.
import { describe, it, expect } from 'vitest'
import {
  DEFECT_BAD_FIELD,
  DEFECT_HEADER_CRC,
  DEFECT_PADDING,
  DEFECT_PAYLOAD_CRC,
  DEFECT_SHORT_FRAME,
  DEFECT_SHORT_HEADER,
  DEFECT_TOO_LARGE,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_SIZE,
  checkRecordBody,
  checkRecordHeader,
  crc32Range,
  decodeSegmentHeader,
  defectReason,
  encodeRecord,
  encodeSegmentHeader,
  readRecordSeq,
  recordFrameSize,
} from '../../src/wal/format.js'

const SALT = 0x5eed1234
const TWO_32 = 2 ** 32

/** One record encoded at `offset` in a buffer of `offset + frame + extra` bytes. */
function record(payload: Uint8Array, opts: { offset?: number; seq?: number; type?: number; extra?: number } = {}) {
  const offset = opts.offset ?? 0
  const frame = recordFrameSize(payload.length)
  const bytes = new Uint8Array(offset + frame + (opts.extra ?? 0))
  const end = encodeRecord(bytes, offset, SALT, opts.seq ?? 1, opts.type ?? 1, payload)
  expect(end).toBe(offset + frame)
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset, frame }
}

/** Recompute the header CRC of the record at `offset` after its header fields were edited. */
function resealHeader(bytes: Uint8Array, offset: number): void {
  const crc = crc32Range(bytes, offset + 4, offset + RECORD_HEADER_SIZE, SALT)
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset, crc, true)
}

describe('defect codes', () => {
  it('have fixed negative values, so no result can be mistaken for a length or frame size', () => {
    expect(DEFECT_SHORT_HEADER).toBe(-1)
    expect(DEFECT_SHORT_FRAME).toBe(-2)
    expect(DEFECT_HEADER_CRC).toBe(-3)
    expect(DEFECT_BAD_FIELD).toBe(-4)
    expect(DEFECT_PAYLOAD_CRC).toBe(-5)
    expect(DEFECT_PADDING).toBe(-6)
    expect(DEFECT_TOO_LARGE).toBe(-7)
  })

  it('come back negative from the checks', () => {
    const short = new Uint8Array(RECORD_HEADER_SIZE - 1)
    expect(checkRecordHeader(short, new DataView(short.buffer), 0, SALT)).toBeLessThan(0)
    const { bytes, view } = record(new Uint8Array(3))
    bytes[RECORD_HEADER_SIZE + 3] = 1
    expect(checkRecordBody(bytes, view, 0, 3, SALT)).toBeLessThan(0)
  })

  it('each have their own description', () => {
    expect(defectReason(DEFECT_SHORT_HEADER)).toBe('record header cut short')
    expect(defectReason(DEFECT_SHORT_FRAME)).toBe('record cut short')
    expect(defectReason(DEFECT_HEADER_CRC)).toBe('record header checksum mismatch')
    expect(defectReason(DEFECT_BAD_FIELD)).toBe('invalid record header field')
    expect(defectReason(DEFECT_PAYLOAD_CRC)).toBe('payload checksum mismatch')
    expect(defectReason(DEFECT_PADDING)).toBe('non-zero record padding')
    expect(defectReason(DEFECT_TOO_LARGE)).toBe('record length exceeds 1073741824 bytes')
    expect(defectReason(DEFECT_TOO_LARGE)).toBe(`record length exceeds ${MAX_PAYLOAD_BYTES} bytes`)
  })

  it('an unknown code is described with its value', () => {
    expect(defectReason(-99)).toBe('unknown defect -99')
    expect(defectReason(0)).toBe('unknown defect 0')
  })
})

describe('segment header base sequence', () => {
  it('accepts the largest base sequence below 2^53', () => {
    const baseSeq = Number.MAX_SAFE_INTEGER
    const h = decodeSegmentHeader(encodeSegmentHeader(7, SALT, baseSeq))
    expect(h).toEqual({ segment: 7, salt: SALT, baseSeq })
  })

  it('refuses a base sequence of 2^53 (high word 2^21) even with a matching checksum', () => {
    const b = encodeSegmentHeader(7, SALT, 2 ** 53)
    expect(b.readUInt32LE(20)).toBe(0x20_0000)
    expect(decodeSegmentHeader(b)).toBe('segment base sequence out of range')
  })

  it('refuses a high word above 2^21', () => {
    expect(decodeSegmentHeader(encodeSegmentHeader(7, SALT, 0x20_0001 * TWO_32))).toBe('segment base sequence out of range')
  })
})

describe('encodeRecord', () => {
  it('writes nothing after the frame', () => {
    for (const len of [0, 1, 5, 8, 13, 200]) {
      const frame = recordFrameSize(len)
      const bytes = new Uint8Array(frame + 8).fill(0xee)
      const end = encodeRecord(bytes, 0, SALT, 3, 2, new Uint8Array(len).fill(0x41))
      expect(end).toBe(frame)
      expect([...bytes.subarray(frame)]).toEqual(new Array(8).fill(0xee))
      // and the padding inside the frame was zeroed
      expect([...bytes.subarray(RECORD_HEADER_SIZE + len, frame)].every((x) => x === 0)).toBe(true)
    }
  })

  it('writes nothing after the frame at a non-zero offset', () => {
    const frame = recordFrameSize(3)
    const bytes = new Uint8Array(16 + frame + 1).fill(0x77)
    expect(encodeRecord(bytes, 16, SALT, 9, 1, new Uint8Array([1, 2, 3]))).toBe(16 + frame)
    expect(bytes[16 + frame]).toBe(0x77)
    expect(bytes[15]).toBe(0x77)
  })
})

describe('checkRecordHeader', () => {
  it('reports a header cut short, by one byte, at offset 0', () => {
    const { bytes } = record(new Uint8Array([1, 2, 3]))
    const cut = bytes.slice(0, RECORD_HEADER_SIZE - 1)
    expect(checkRecordHeader(cut, new DataView(cut.buffer), 0, SALT)).toBe(DEFECT_SHORT_HEADER)
  })

  it('reports a header cut short at a non-zero offset', () => {
    const { bytes } = record(new Uint8Array([1, 2, 3]), { offset: 16 })
    for (const keep of [0, 1, 4, 20, RECORD_HEADER_SIZE - 1]) {
      const cut = bytes.slice(0, 16 + keep)
      expect(checkRecordHeader(cut, new DataView(cut.buffer), 16, SALT)).toBe(DEFECT_SHORT_HEADER)
    }
  })

  it('accepts a header that ends exactly at the end of the bytes', () => {
    const { bytes } = record(new Uint8Array([1, 2, 3]), { offset: 16 })
    const cut = bytes.slice(0, 16 + RECORD_HEADER_SIZE)
    expect(checkRecordHeader(cut, new DataView(cut.buffer), 16, SALT)).toBe(3)
  })

  it('accepts every type from 1 to 255 with flags and reserved zero', () => {
    for (const type of [1, 2, 0x80, 255]) {
      const { bytes, view } = record(new Uint8Array(5), { type, offset: 8 })
      expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(5)
    }
  })

  it('refuses type 0 with a matching checksum', () => {
    const { bytes, view } = record(new Uint8Array(5), { offset: 8 })
    bytes[8 + 16] = 0
    resealHeader(bytes, 8)
    expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(DEFECT_BAD_FIELD)
  })

  it('refuses non-zero flags with a matching checksum', () => {
    for (const flags of [1, 0x80, 0xff]) {
      const { bytes, view } = record(new Uint8Array(5), { offset: 8 })
      bytes[8 + 17] = flags
      resealHeader(bytes, 8)
      expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(DEFECT_BAD_FIELD)
    }
  })

  it('refuses a non-zero reserved field (either byte) with a matching checksum', () => {
    for (const [lo, hi] of [
      [1, 0],
      [0, 1],
      [0xff, 0xff],
    ] as const) {
      const { bytes, view } = record(new Uint8Array(5), { offset: 8 })
      bytes[8 + 18] = lo
      bytes[8 + 19] = hi
      resealHeader(bytes, 8)
      expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(DEFECT_BAD_FIELD)
    }
  })

  it('accepts the largest safe sequence number', () => {
    const seq = Number.MAX_SAFE_INTEGER
    const { bytes, view } = record(new Uint8Array(5), { seq, offset: 8 })
    expect(view.getUint32(8 + 12, true)).toBe(0x1f_ffff)
    expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(5)
    expect(readRecordSeq(view, 8)).toBe(seq)
  })

  it('refuses sequence 2^53 (high word 2^21) with a matching checksum', () => {
    const { bytes, view } = record(new Uint8Array(5), { seq: 2 ** 53, offset: 8 })
    expect(view.getUint32(8 + 12, true)).toBe(0x20_0000)
    expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(DEFECT_BAD_FIELD)
  })

  it('refuses a sequence high word above 2^21 with a matching checksum', () => {
    const { bytes, view } = record(new Uint8Array(5), { offset: 8 })
    view.setUint32(8 + 12, 0x20_0001, true)
    resealHeader(bytes, 8)
    expect(checkRecordHeader(bytes, view, 8, SALT)).toBe(DEFECT_BAD_FIELD)
  })
})

describe('checkRecordBody', () => {
  it('reports a frame that runs one byte past the end (at offset 0)', () => {
    for (const len of [3, 8, 200]) {
      const { bytes } = record(new Uint8Array(len).fill(7))
      const cut = bytes.slice(0, recordFrameSize(len) - 1)
      const view = new DataView(cut.buffer)
      expect(checkRecordHeader(cut, view, 0, SALT)).toBe(len)
      expect(checkRecordBody(cut, view, 0, len, SALT)).toBe(DEFECT_SHORT_FRAME)
    }
  })

  it('reports a frame that runs past the end at a non-zero offset', () => {
    const { bytes, frame } = record(new Uint8Array(3).fill(7), { offset: 40 })
    const cut = bytes.slice(0, 40 + frame - 1)
    expect(checkRecordBody(cut, new DataView(cut.buffer), 40, 3, SALT)).toBe(DEFECT_SHORT_FRAME)
  })

  it('accepts a frame that ends exactly at the end of the bytes', () => {
    const { bytes, view, frame } = record(new Uint8Array(3).fill(7), { offset: 40 })
    expect(bytes.length).toBe(40 + frame)
    expect(checkRecordBody(bytes, view, 40, 3, SALT)).toBe(frame)
  })
})
