// Targeted tests for src/wal/reader.ts: error paths of the file window, the read buffer's
// reuse and bounds, the chain checks of scanWal, damaged segment headers and the look-ahead
// that tells mid-file corruption from a torn tail.
import { describe, it, expect } from 'vitest'
import { SEGMENT_HEADER_SIZE, encodeRecord, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { SegmentFile, readSegment, scanSegment, scanWal } from '../../src/wal/reader.js'
import type { SegmentScan, WalRecord } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { StoreError } from '../../src/errors.js'
import { MemFs } from '../helpers/mem-fs.js'

const SALT = 0x1234abcd
const P = '/seg.log'

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7 + 1) & 0xff
  return b
}

/** A segment with header (segment, salt, baseSeq) and records with the given seqs and payload sizes. */
function seg(sizes: number[], opts: { baseSeq?: number; segment?: number; seqs?: number[]; salt?: number } = {}): { bytes: Buffer; offsets: number[] } {
  const baseSeq = opts.baseSeq ?? 0
  const salt = opts.salt ?? SALT
  const total = SEGMENT_HEADER_SIZE + sizes.reduce((n, s) => n + recordFrameSize(s), 0)
  const bytes = Buffer.alloc(total)
  encodeSegmentHeader(opts.segment ?? 1, salt, baseSeq).copy(bytes)
  const offsets: number[] = []
  let off = SEGMENT_HEADER_SIZE
  sizes.forEach((s, i) => {
    offsets.push(off)
    off = encodeRecord(bytes, off, salt, opts.seqs?.[i] ?? baseSeq + 1 + i, 1, payload(s, i))
  })
  return { bytes, offsets }
}

/** One record frame on its own (for appending after damage). */
function frame(seq: number, size: number, salt = SALT): Buffer {
  const b = Buffer.alloc(recordFrameSize(size))
  encodeRecord(b, 0, salt, seq, 1, payload(size, seq))
  return b
}

function collect(bytes: Uint8Array, opts?: Parameters<typeof scanSegment>[2]): { scan: SegmentScan; seqs: number[] } {
  const seqs: number[] = []
  const scan = scanSegment(bytes, (r) => seqs.push(r.seq), opts)
  return { scan, seqs }
}

function fileScan(bytes: Uint8Array, opts?: Parameters<typeof readSegment>[3]): { scan: SegmentScan; seqs: number[]; recs: WalRecord[] } {
  const fs = new MemFs()
  fs.putFile(P, bytes)
  const seqs: number[] = []
  const recs: WalRecord[] = []
  const scan = readSegment(fs, P, (r) => {
    seqs.push(r.seq)
    recs.push(r)
  }, opts)
  return { scan, seqs, recs }
}

function storeError(fn: () => unknown): StoreError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError)
    return err as StoreError
  }
  throw new Error('expected a StoreError')
}

describe('file window I/O errors', () => {
  it('reports a read failure as KV_IO naming the path, with the fs error as cause', () => {
    const boom = new Error('EIO boom')
    class Failing extends MemFs {
      override read(): number {
        throw boom
      }
    }
    const fs = new Failing()
    fs.putFile(P, seg([10]).bytes)
    const err = storeError(() => readSegment(fs, P, () => {}))
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`cannot read WAL segment ${P}`)
    expect(err.cause).toBe(boom)
    expect(fs.openFileCount).toBe(0)
  })

  it('reports a file shorter than its stat size as KV_IO with the offset where it ended', () => {
    const bytes = seg([10, 20]).bytes
    let zeros = 0
    class Shrunk extends MemFs {
      override fstat(fd: number) {
        return { ...super.fstat(fd), size: bytes.length + 40 }
      }
      override read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
        const n = super.read(fd, buf, offset, length, position)
        if (n === 0 && ++zeros > 100) throw new Error('read loops on EOF')
        return n
      }
    }
    const fs = new Shrunk()
    fs.putFile(P, bytes)
    const err = storeError(() => readSegment(fs, P, () => {}))
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`WAL segment ${P} ended at ${bytes.length} while being read (expected ${bytes.length + 40} bytes)`)
  })

  it('assembles a window from short reads at the right file positions', () => {
    const { bytes } = seg([5, 0, 64, 17, 120, 8, 200])
    class Short extends MemFs {
      override read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
        // Like fs.readSync: the range must fit the buffer.
        if (offset + length > buf.length) throw new RangeError(`read of ${length} at ${offset} overflows ${buf.length}`)
        return super.read(fd, buf, offset, Math.min(length, 7), position)
      }
    }
    const fs = new Short()
    fs.putFile(P, bytes)
    const seen: string[] = []
    const scan = readSegment(fs, P, (r) => seen.push(`${r.seq}:${Buffer.from(r.payload).toString('hex')}`), { chunkBytes: 64 })
    expect(seen).toEqual(collectHex(bytes))
    expect(scan.tail).toBe('clean')
    expect(scan.corruption).toBeUndefined()
  })

  it('open: KV_IO naming the path when the file cannot be opened', () => {
    const fs = new MemFs()
    const err = storeError(() => SegmentFile.open(fs, '/missing.log'))
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe('cannot read WAL segment /missing.log')
    expect(err.cause).toBeInstanceOf(Error)
  })

  it('open: KV_IO when fstat fails, and the descriptor is closed (even if close fails too)', () => {
    const boom = new Error('fstat boom')
    for (const closeFails of [false, true]) {
      class NoStat extends MemFs {
        override fstat(): never {
          throw boom
        }
        override close(fd: number): void {
          super.close(fd)
          if (closeFails) throw new Error('close boom')
        }
      }
      const fs = new NoStat()
      fs.putFile(P, seg([]).bytes)
      const err = storeError(() => SegmentFile.open(fs, P))
      expect(err.code).toBe('KV_IO')
      expect(err.message).toBe(`cannot stat WAL segment ${P}`)
      expect(err.cause).toBe(boom)
      expect(fs.openFileCount).toBe(0)
    }
  })

  it('open: rejects chunk sizes that are not positive integers', () => {
    const fs = new MemFs()
    fs.putFile(P, seg([]).bytes)
    for (const c of [0, -1, 1.5, Number.NaN]) {
      expect(() => SegmentFile.open(fs, P, { chunkBytes: c })).toThrow(new RangeError(`chunkBytes must be a positive integer, got ${c}`))
    }
    expect(fs.openFileCount).toBe(0)
  })

  it('close: KV_IO naming the path, with the fs error as cause', () => {
    const boom = new Error('close boom')
    class NoClose extends MemFs {
      override close(fd: number): void {
        super.close(fd)
        throw boom
      }
    }
    const fs = new NoClose()
    fs.putFile(P, seg([]).bytes)
    const f = SegmentFile.open(fs, P)
    const err = storeError(() => f.close())
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`cannot close WAL segment ${P}`)
    expect(err.cause).toBe(boom)
  })

  it('readSegment closes the file when visit throws, and keeps the visit error when close fails too', () => {
    for (const closeFails of [false, true]) {
      let closes = 0
      class Fs2 extends MemFs {
        override close(fd: number): void {
          super.close(fd)
          closes++
          if (closeFails) throw new Error('close boom')
        }
      }
      const fs = new Fs2()
      fs.putFile(P, seg([4]).bytes)
      const visitErr = new Error('visit boom')
      expect(() => readSegment(fs, P, () => {
        throw visitErr
      })).toThrow(visitErr)
      expect(closes).toBe(1)
      expect(fs.openFileCount).toBe(0)
    }
  })
})

function collectHex(bytes: Uint8Array): string[] {
  const out: string[] = []
  scanSegment(bytes, (r) => out.push(`${r.seq}:${Buffer.from(r.payload).toString('hex')}`))
  return out
}

describe('read buffer reuse and bounds', () => {
  it('a segment smaller than a chunk is read into a buffer of its own size', () => {
    const { bytes } = seg([5, 40])
    const { recs } = fileScan(bytes)
    expect(recs.length).toBe(2)
    for (const r of recs) expect(r.payload.buffer.byteLength).toBe(bytes.length)
  })

  it('small records streamed through many chunks share one chunk-sized buffer', () => {
    const { bytes } = seg(Array.from({ length: 40 }, (_, i) => (i * 13) % 41))
    const { recs, scan } = fileScan(bytes, { chunkBytes: 64 })
    expect(scan.records).toBe(40)
    const buffers = new Set(recs.map((r) => r.payload.buffer))
    expect(buffers.size).toBe(1)
    expect(recs[0]!.payload.buffer.byteLength).toBe(64)
  })

  it('a run of records larger than a chunk reuses one grown buffer, then drops back to a chunk', () => {
    // 10 records with 200-byte payloads (frame 224 > chunk 64), then records whose frame is exactly a chunk (40 bytes).
    const sizes = [...Array.from({ length: 10 }, () => 200), ...Array.from({ length: 30 }, () => 40)]
    const { bytes } = seg(sizes)
    const { recs, scan } = fileScan(bytes, { chunkBytes: 64 })
    expect(scan.records).toBe(40)
    expect(scan.tail).toBe('clean')
    const big = new Set(recs.slice(0, 10).map((r) => r.payload.buffer))
    expect(big.size).toBe(1)
    expect(recs[0]!.payload.buffer.byteLength).toBe(recordFrameSize(200))
    // Memory is not pinned by the large run: the last records sit in a chunk-sized buffer.
    for (const r of recs.slice(-5)) expect(r.payload.buffer.byteLength).toBe(64)
  })

  it('after a large run, a refill near the end allocates only what remains of the file', () => {
    // 3 records of frame 224 (> chunk 64), then 8 of frame 32: the refill for the last one shrinks the buffer to 32 bytes.
    const sizes = [200, 200, 200, ...Array.from({ length: 8 }, () => 8)]
    const { bytes } = seg(sizes)
    const { recs, scan } = fileScan(bytes, { chunkBytes: 64 })
    expect(scan.records).toBe(sizes.length)
    expect(recs.at(-1)!.payload.buffer.byteLength).toBe(32)
  })
})

describe('SegmentFile accessors', () => {
  function open(bytes: Uint8Array, chunkBytes = 64): SegmentFile {
    const fs = new MemFs()
    fs.putFile(P, bytes)
    return SegmentFile.open(fs, P, { chunkBytes })
  }

  it('header(): short below 32 bytes, decoded at exactly 32, and re-read after a scan moved the window', () => {
    expect(open(Buffer.alloc(31, 1)).header()).toBe('short')
    expect(open(encodeSegmentHeader(3, SALT, 9)).header()).toEqual({ segment: 3, salt: SALT, baseSeq: 9 })
    const { bytes } = seg([100, 100, 100], { segment: 4, baseSeq: 2 })
    const f = open(bytes)
    expect(f.scan(() => {}).records).toBe(3)
    expect(f.header()).toEqual({ segment: 4, salt: SALT, baseSeq: 2 })
    expect(f.isZero(0, 8)).toBe(false)
    f.close()
  })

  it('isZero and forEachChunk clamp the range to the file', () => {
    const bytes = Buffer.concat([seg([30]).bytes, Buffer.alloc(200)])
    const f = open(bytes)
    expect(f.isZero(bytes.length - 200)).toBe(true)
    expect(f.isZero(bytes.length - 200, bytes.length + 500)).toBe(true)
    expect(f.isZero(8, bytes.length + 500)).toBe(false)
    const parts: Buffer[] = []
    f.forEachChunk(0, bytes.length + 1000, (c) => parts.push(Buffer.from(c)))
    expect(Buffer.concat(parts).equals(bytes)).toBe(true)
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(64)
    f.close()
  })

  it('isZero clamps to the file even when the read buffer still holds earlier bytes', () => {
    const bytes = Buffer.concat([seg([30]).bytes, Buffer.alloc(8)])
    const f = open(bytes)
    f.forEachChunk(0, 64, () => {})
    expect(f.isZero(bytes.length - 8, bytes.length + 500)).toBe(true)
    f.close()
  })
})

describe('damaged segment headers', () => {
  it('a torn header (garbage, nothing after it) is a torn creation: no header, lastSeq -1, no corruption', () => {
    const bytes = Buffer.concat([Buffer.alloc(32, 0xaa), Buffer.alloc(16)])
    const { scan } = collect(bytes)
    expect(scan).toEqual({ header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: 48, tail: 'torn' })
  })

  it('strict: a header with bad magic followed by data is corruption at offset 0 with the decode reason', () => {
    const { bytes } = seg([10, 10])
    bytes[0] = (bytes[0] as number) ^ 1
    const { scan, seqs } = collect(bytes)
    expect(seqs).toEqual([])
    expect(scan).toEqual({ header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: bytes.length, tail: 'torn', corruption: { offset: 0, reason: 'bad segment magic' } })
  })

  it('a zeroed header followed by data is named as such', () => {
    const { bytes } = seg([10])
    bytes.fill(0, 0, 32)
    expect(collect(bytes).scan.corruption).toEqual({ offset: 0, reason: 'zeroed segment header followed by data' })
    expect(collect(bytes, { mode: 'salvage' }).scan.corruption).toEqual({ offset: 0, reason: 'zeroed segment header followed by data' })
  })

  it('a verified header naming another segment is corruption at offset 8', () => {
    const { bytes } = seg([10], { segment: 1 })
    const { scan, seqs } = collect(bytes, { segment: 2 })
    expect(seqs).toEqual([])
    expect(scan.corruption).toEqual({ offset: 8, reason: 'segment header names segment 1, not 2' })
  })

  it('salvage: records after a damaged header are read with the stored salt, whatever their first seq', () => {
    const { bytes } = seg([10, 20, 30], { baseSeq: 4 })
    bytes[0] = (bytes[0] as number) ^ 1
    const { scan, seqs } = collect(bytes, { mode: 'salvage' })
    expect(seqs).toEqual([5, 6, 7])
    expect(scan.header).toBeUndefined()
    expect(scan.lastSeq).toBe(7)
    expect(scan.validEnd).toBe(bytes.length)
    expect(scan.corruption).toEqual({ offset: 0, reason: 'bad segment magic' })
  })

  it('salvage: a damaged header followed only by garbage gives lastSeq -1 and validEnd 0', () => {
    const bytes = Buffer.concat([seg([]).bytes, Buffer.alloc(40, 0x5c)])
    bytes[0] = (bytes[0] as number) ^ 1
    const { scan, seqs } = collect(bytes, { mode: 'salvage' })
    expect(seqs).toEqual([])
    expect(scan).toEqual({ header: undefined, lastSeq: -1, records: 0, validEnd: 0, fileSize: bytes.length, tail: 'torn', corruption: { offset: 0, reason: 'bad segment magic' } })
  })
})

describe('record checks in a scan', () => {
  it('the first record must follow the header baseSeq', () => {
    const { bytes } = seg([10], { baseSeq: 0, seqs: [5] })
    const { scan, seqs } = collect(bytes)
    expect(seqs).toEqual([])
    expect(scan.lastSeq).toBe(0)
    expect(scan.tail).toBe('torn')
  })

  it('describes a wrong sequence number with the expected one', () => {
    const { bytes } = seg([10, 10, 10], { seqs: [1, 5, 6] })
    const { scan, seqs } = collect(bytes, { mode: 'salvage' })
    expect(seqs).toEqual([1, 6])
    expect(scan.corruption).toEqual({ offset: SEGMENT_HEADER_SIZE + recordFrameSize(10), reason: 'sequence 5 where 2 was expected' })
  })

  it('describes a header checksum mismatch as such, even when the seq field is right', () => {
    const { bytes, offsets } = seg([10, 10, 10])
    bytes[offsets[1]!] = (bytes[offsets[1]!] as number) ^ 0x40
    const { scan, seqs } = collect(bytes)
    expect(seqs).toEqual([1])
    expect(scan.corruption).toEqual({ offset: offsets[1], reason: 'record header checksum mismatch' })
    expect(scan.validEnd).toBe(offsets[1])
  })
})

describe('look-ahead after damage (findValidRecord)', () => {
  /** Records 1..3, then `tail` after a damaged 24-byte record header. */
  function damaged(tail: Buffer): { bytes: Buffer; at: number } {
    const { bytes } = seg([16, 16, 16])
    return { bytes: Buffer.concat([bytes, Buffer.alloc(24, 0x77), tail]), at: bytes.length }
  }

  it('finds an empty-payload record that ends exactly at end of file', () => {
    const { bytes, at } = damaged(frame(4, 0))
    const { scan, seqs } = collect(bytes, { mode: 'salvage' })
    expect(seqs).toEqual([1, 2, 3, 4])
    expect(scan.corruption).toEqual({ offset: at, reason: 'record header checksum mismatch' })
    expect(scan.tail).toBe('clean')
  })

  it('ignores a record whose frame runs past end of file (torn), without reading beyond it', () => {
    const { bytes } = damaged(frame(4, 40).subarray(0, 50))
    for (const opts of [undefined, { chunkBytes: 16 }]) {
      const { scan, seqs } = opts === undefined ? collect(bytes, { mode: 'salvage' }) : fileScan(bytes, { mode: 'salvage', ...opts })
      expect(seqs).toEqual([1, 2, 3])
      expect(scan.corruption).toBeUndefined()
      expect(scan.tail).toBe('torn')
    }
  })

  it('ignores stale copies of records already read (seq not above the last one)', () => {
    for (const stale of [3, 2]) {
      const { bytes } = damaged(frame(stale, 16))
      const { scan, seqs } = collect(bytes)
      expect(seqs).toEqual([1, 2, 3])
      expect(scan.corruption).toBeUndefined()
      expect(scan.tail).toBe('torn')
    }
    const { bytes, at } = damaged(Buffer.concat([frame(3, 16), frame(4, 16)]))
    const { scan, seqs } = collect(bytes, { mode: 'salvage' })
    expect(seqs).toEqual([1, 2, 3, 4])
    expect(scan.corruption?.offset).toBe(at)
  })

  it('ignores a candidate with a bad header checksum or a bad payload', () => {
    const badHeader = frame(4, 16)
    badHeader[1] = (badHeader[1] as number) ^ 1
    const badPayload = frame(4, 16)
    badPayload[30] = (badPayload[30] as number) ^ 1
    for (const t of [badHeader, badPayload]) {
      const { scan, seqs } = collect(damaged(t).bytes)
      expect(seqs).toEqual([1, 2, 3])
      expect(scan.corruption).toBeUndefined()
      expect(scan.tail).toBe('torn')
    }
  })

  it('finds a valid record beyond the current read window', () => {
    const { bytes, at } = damaged(Buffer.concat([Buffer.alloc(296, 0x3c), frame(4, 16)]))
    const { scan, seqs } = fileScan(bytes, { mode: 'salvage', chunkBytes: 64 })
    expect(seqs).toEqual([1, 2, 3, 4])
    expect(scan.corruption).toEqual({ offset: at, reason: 'record header checksum mismatch' })
  })

  it('starts looking after the damaged offset, not inside the previous record', () => {
    // A record header planted at (damage - 8): its first 8 bytes end the previous payload, the
    // rest start the damaged bytes. Only offsets after the damage may be considered.
    const fake = frame(2, 16)
    const p1 = payload(16, 0)
    fake.copy(p1, 8, 0, 8)
    const bytes = Buffer.alloc(SEGMENT_HEADER_SIZE + recordFrameSize(16) + fake.length - 8)
    encodeSegmentHeader(1, SALT, 0).copy(bytes)
    const at = encodeRecord(bytes, SEGMENT_HEADER_SIZE, SALT, 1, 1, p1)
    fake.copy(bytes, at, 8)
    expect(collect(bytes).seqs).toEqual([1])
    const { scan, seqs } = collect(bytes)
    expect(seqs).toEqual([1])
    expect(scan.corruption).toBeUndefined()
    expect(scan.tail).toBe('torn')
  })
})

describe('scanWal chain checks', () => {
  function dir(files: Record<number, Uint8Array>): MemFs {
    const fs = new MemFs()
    fs.mkdir('/w')
    for (const [n, b] of Object.entries(files)) fs.putFile(segmentPath('/w', Number(n)), b)
    return fs
  }

  it('names a baseSeq that does not continue the previous segment', () => {
    const fs = dir({ 1: seg([8, 8], { segment: 1 }).bytes, 2: seg([8], { segment: 2, baseSeq: 7 }).bytes })
    const out = scanWal(fs, '/w', () => {})
    expect(out.corruption).toEqual({ segment: 2, path: segmentPath('/w', 2), offset: 16, reason: 'segment starts after seq 7 but the previous one ends at 2' })
  })

  it('a misnamed segment header is reported by the segment scan (offset 8), not as a chain break', () => {
    const fs = dir({ 1: seg([8, 8], { segment: 1 }).bytes, 2: seg([8], { segment: 5, baseSeq: 7 }).bytes })
    const out = scanWal(fs, '/w', () => {})
    expect(out.corruption).toEqual({ segment: 2, path: segmentPath('/w', 2), offset: 8, reason: 'segment header names segment 5, not 2' })
  })

  it('only the newest segment may lack a header or have a torn tail', () => {
    const one = seg([8, 8], { segment: 1 }).bytes
    const torn = Buffer.concat([one, Buffer.alloc(10, 9)])
    expect(scanWal(dir({ 1: one, 2: Buffer.alloc(10, 1) }), '/w', () => {}).corruption).toBeUndefined()
    expect(scanWal(dir({ 1: torn }), '/w', () => {}).corruption).toBeUndefined()
    expect(scanWal(dir({ 1: Buffer.alloc(10, 1), 2: seg([8], { segment: 2, baseSeq: 2 }).bytes }), '/w', () => {}).corruption).toEqual({
      segment: 1,
      path: segmentPath('/w', 1),
      offset: 0,
      reason: 'segment without a valid header before the newest segment',
    })
    expect(scanWal(dir({ 1: torn, 2: seg([8], { segment: 2, baseSeq: 2 }).bytes }), '/w', () => {}).corruption).toEqual({
      segment: 1,
      path: segmentPath('/w', 1),
      offset: one.length,
      reason: 'torn tail before the newest segment',
    })
  })

  it('lastSeq: a header-only segment gives its baseSeq; a salvaged headerless segment its last record', () => {
    expect(scanWal(dir({ 1: seg([], { segment: 1, baseSeq: 7 }).bytes }), '/w', () => {}).lastSeq).toBe(7)
    const b = seg([8, 8, 8], { segment: 1, baseSeq: 4 }).bytes
    b[0] = (b[0] as number) ^ 1
    const out = scanWal(dir({ 1: b }), '/w', () => {}, { mode: 'salvage' })
    expect(out.lastSeq).toBe(7)
    expect(out.corruption).toEqual({ segment: 1, path: segmentPath('/w', 1), offset: 0, reason: 'bad segment magic' })
  })
})
