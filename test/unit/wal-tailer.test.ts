// SegmentTail: following one segment while it is appended to, byte by byte if need be.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isStoreError } from '../../src/errors.js'
import { encodeRecord, encodeSegmentHeader, recordFrameSize, SEGMENT_HEADER_SIZE } from '../../src/wal/format.js'
import { READ_CHUNK_BYTES } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { SegmentTail } from '../../src/wal/tailer.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'

const DIR = '/db'
const SALT = 0x5eed5a17

function newFs(): MemFs {
  const fs = new MemFs()
  fs.mkdir(DIR)
  return fs
}

/** The bytes of a segment holding `payloads` as seqs base+1, base+2, … */
function segmentBytes(segment: number, base: number, payloads: readonly Uint8Array[]): Buffer {
  const size = SEGMENT_HEADER_SIZE + payloads.reduce((n, p) => n + recordFrameSize(p.length), 0)
  const out = Buffer.alloc(size)
  encodeSegmentHeader(segment, SALT, base).copy(out, 0)
  let off = SEGMENT_HEADER_SIZE
  payloads.forEach((p, i) => {
    off = encodeRecord(out, off, SALT, base + i + 1, 1, p)
  })
  return out
}

/** Make the file at `path` hold `bytes`, in place (an open descriptor sees the change, as an append or a cut would show). */
function setFile(fs: MemFs, path: string, bytes: Uint8Array): void {
  const fd = fs.open(path, fs.stat(path) === undefined ? 'w' : 'r+')
  fs.ftruncate(fd, bytes.length)
  fs.write(fd, bytes, 0, bytes.length, 0)
  fs.close(fd)
}

function collect(tail: SegmentTail): { seqs: number[]; payloads: string[]; state: ReturnType<SegmentTail['poll']> } {
  const seqs: number[] = []
  const payloads: string[] = []
  const state = tail.poll((rec) => {
    seqs.push(rec.seq)
    payloads.push(Buffer.from(rec.payload).toString())
  })
  return { seqs, payloads, state }
}

describe('SegmentTail', () => {
  it('delivers every record exactly once however the file grows (any split of the bytes into appends)', () => {
    const payloads = Array.from({ length: 12 }, (_, i) => Buffer.from(`payload ${i} `.repeat(i % 4)))
    const whole = segmentBytes(1, 7, payloads)
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: whole.length - 1 }), { maxLength: 20 }), (cuts) => {
        const fs = newFs()
        const path = segmentPath(DIR, 1)
        const points = [...cuts.sort((a, b) => a - b), whole.length]
        // A header not yet complete is "pending", never damage.
        setFile(fs, path, whole.subarray(0, Math.min(points[0] as number, SEGMENT_HEADER_SIZE - 1)))
        expect(SegmentTail.open(fs, DIR, 1)).toBe('pending')
        let tail: SegmentTail | undefined
        const got: number[] = []
        const texts: string[] = []
        for (const end of points) {
          setFile(fs, path, whole.subarray(0, end))
          if (tail === undefined) {
            const t = SegmentTail.open(fs, DIR, 1)
            if (t === 'pending') continue
            if (t === 'missing') throw new Error('missing')
            tail = t
          }
          const r = collect(tail)
          expect(r.state.kind).toBe('caught-up')
          got.push(...r.seqs)
          texts.push(...r.payloads)
        }
        expect(got).toEqual(payloads.map((_, i) => 8 + i))
        expect(texts).toEqual(payloads.map((p) => p.toString()))
        expect(tail?.lastSeq).toBe(7 + payloads.length)
        tail?.close()
      }),
      { numRuns: 200 },
    )
  })

  it('reads a record larger than its read chunk, and records after it', () => {
    const fs = newFs()
    const big = Buffer.alloc(READ_CHUNK_BYTES * 2 + 5, 7)
    fs.putFile(segmentPath(DIR, 1), segmentBytes(1, 0, [Buffer.from('a'), big, Buffer.from('b')]))
    const tail = SegmentTail.open(fs, DIR, 1) as SegmentTail
    const seen: number[] = []
    const st = tail.poll((rec) => seen.push(rec.payload.length))
    expect(st).toEqual({ kind: 'caught-up', pendingBytes: 0, reason: undefined })
    expect(seen).toEqual([1, big.length, 1])
  })

  it('stops after maxRecords and goes on from there', () => {
    const fs = newFs()
    fs.putFile(segmentPath(DIR, 1), segmentBytes(1, 0, Array.from({ length: 5 }, (_, i) => Buffer.from(`${i}`))))
    const tail = SegmentTail.open(fs, DIR, 1) as SegmentTail
    const seen: number[] = []
    tail.poll((rec) => seen.push(rec.seq), 2)
    expect(seen).toEqual([1, 2])
    tail.poll((rec) => seen.push(rec.seq), 2)
    tail.poll((rec) => seen.push(rec.seq), 2)
    expect(seen).toEqual([1, 2, 3, 4, 5])
  })

  it('reports a file cut below what it read, and a record that does not continue the sequence', () => {
    const fs = newFs()
    const path = segmentPath(DIR, 1)
    const bytes = segmentBytes(1, 0, [Buffer.from('one'), Buffer.from('two')])
    setFile(fs, path, bytes)
    const tail = SegmentTail.open(fs, DIR, 1) as SegmentTail
    expect(collect(tail).seqs).toEqual([1, 2])
    setFile(fs, path, bytes.subarray(0, SEGMENT_HEADER_SIZE + recordFrameSize(3)))
    expect(tail.poll(() => undefined)).toEqual({ kind: 'shrunk', size: SEGMENT_HEADER_SIZE + recordFrameSize(3) })

    // The file rewritten with other records: seq 2 again where seq 3 belongs.
    const other = segmentBytes(1, 0, [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')])
    const tail2 = SegmentTail.open(fs, DIR, 1) as SegmentTail
    setFile(fs, path, segmentBytes(1, 0, [Buffer.from('one')]))
    expect(collect(tail2).seqs).toEqual([1])
    const replaced = Buffer.concat([other.subarray(0, SEGMENT_HEADER_SIZE + recordFrameSize(3)), segmentBytes(1, 0, [Buffer.from('x'), Buffer.from('y')]).subarray(SEGMENT_HEADER_SIZE)])
    setFile(fs, path, replaced)
    expect(tail2.poll(() => undefined)).toMatchObject({ kind: 'diverged', expected: 2, found: 1 })
  })

  it('calls unverified bytes "not yet" with their reason, and refuses a damaged or misplaced header', () => {
    const fs = newFs()
    const path = segmentPath(DIR, 1)
    const bytes = segmentBytes(1, 0, [Buffer.from('one'), Buffer.from('two')])
    const damaged = Buffer.from(bytes)
    damaged[SEGMENT_HEADER_SIZE + recordFrameSize(3) + 24] = (damaged[SEGMENT_HEADER_SIZE + recordFrameSize(3) + 24] as number) ^ 0xff
    setFile(fs, path, damaged)
    const tail = SegmentTail.open(fs, DIR, 1) as SegmentTail
    const r = collect(tail)
    expect(r.seqs).toEqual([1])
    expect(r.state).toEqual({ kind: 'caught-up', pendingBytes: recordFrameSize(3), reason: 'payload checksum mismatch' })

    expect(SegmentTail.open(fs, DIR, 2)).toBe('missing')
    fs.putFile(segmentPath(DIR, 2), bytes)
    expect(catchCode(() => SegmentTail.open(fs, DIR, 2))).toBe('KV_CORRUPT')
    const badHeader = Buffer.from(bytes)
    badHeader[3] = (badHeader[3] as number) ^ 1
    fs.putFile(segmentPath(DIR, 3), badHeader)
    expect(catchCode(() => SegmentTail.open(fs, DIR, 3))).toBe('KV_CORRUPT')
    fs.putFile(segmentPath(DIR, 4), Buffer.alloc(SEGMENT_HEADER_SIZE))
    expect(SegmentTail.open(fs, DIR, 4)).toBe('pending')
  })

  it('follows what a WalWriter appends, and a segment deleted while open can still be read to its end', async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => SALT })
    const tail = SegmentTail.open(fs, DIR, 1) as SegmentTail
    await w.append(1, 1, Buffer.from('a'))
    expect(collect(tail).seqs).toEqual([1])
    await Promise.all([w.append(2, 1, Buffer.from('b')), w.append(3, 1, Buffer.from('c'))])
    fs.unlink(segmentPath(DIR, 1))
    expect(collect(tail).seqs).toEqual([2, 3])
    await w.close()
    tail.close()
    expect(catchCode(() => tail.poll(() => undefined))).toBe('KV_CLOSED')
  })
})

function catchCode(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return isStoreError(err) ? err.code : String(err)
  }
  return 'no error'
}
