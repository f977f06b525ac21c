import { describe, it, expect } from 'vitest'
import { SEGMENT_HEADER_SIZE, encodeRecord, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { readSegment, scanSegment, scanWal } from '../../src/wal/reader.js'
import type { SegmentScan, WalRecord } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'

const SALT = 0x5eed5a17

interface Rec {
  seq: number
  type: number
  payload: Buffer
}

function random(seed: number): (n: number) => number {
  let a = seed >>> 0
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n)
  }
}

function randomBytesSeeded(n: number, seed: number): Buffer {
  const r = random(seed)
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = r(256)
  return b
}

/** Records with seqs baseSeq+1.. and payload sizes from `sizes`. */
function makeRecords(sizes: number[], baseSeq = 0): Rec[] {
  return sizes.map((size, i) => ({ seq: baseSeq + 1 + i, type: 1 + (i % 3), payload: randomBytesSeeded(size, 1000 + i) }))
}

/** Encode a segment; `offsets[i]` is where record i starts. */
function buildSegment(recs: Rec[], salt = SALT, baseSeq = recs.length > 0 ? (recs[0] as Rec).seq - 1 : 0): { bytes: Buffer; offsets: number[] } {
  const size = SEGMENT_HEADER_SIZE + recs.reduce((n, r) => n + recordFrameSize(r.payload.length), 0)
  const bytes = Buffer.alloc(size)
  encodeSegmentHeader(1, salt, baseSeq).copy(bytes)
  const offsets: number[] = []
  let off = SEGMENT_HEADER_SIZE
  for (const r of recs) {
    offsets.push(off)
    off = encodeRecord(bytes, off, salt, r.seq, r.type, r.payload)
  }
  return { bytes, offsets }
}

function scan(bytes: Uint8Array, mode: 'strict' | 'salvage' = 'strict'): { scan: SegmentScan; recs: Rec[]; offsets: number[] } {
  const recs: Rec[] = []
  const offsets: number[] = []
  const s = scanSegment(
    bytes,
    (r: WalRecord) => {
      recs.push({ seq: r.seq, type: r.type, payload: Buffer.from(r.payload) })
      offsets.push(r.offset)
    },
    { mode },
  )
  return { scan: s, recs, offsets }
}

/** One comparable string for a record list (vitest's deep equality is slow in tight loops). */
function digest(recs: readonly Rec[]): string {
  return recs.map((r) => `${r.seq}/${r.type}/${r.payload.toString('hex')}`).join(' ')
}

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes)
  copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7))
  return copy
}

// ~1 KiB: ten records of assorted sizes, including an empty payload and aligned/unaligned ends.
const SIZES = [5, 0, 64, 17, 120, 8, 200, 33, 90, 41]
const RECS = makeRecords(SIZES)
const GOLDEN = buildSegment(RECS)

describe('scanSegment on intact segments', () => {
  it('yields every record with its seq, type, payload and offset', () => {
    const { scan: s, recs, offsets } = scan(GOLDEN.bytes)
    expect(recs).toEqual(RECS)
    expect(offsets).toEqual(GOLDEN.offsets)
    expect(s).toEqual({
      header: { segment: 1, salt: SALT, baseSeq: 0 },
      lastSeq: 10,
      records: 10,
      validEnd: GOLDEN.bytes.length,
      fileSize: GOLDEN.bytes.length,
      tail: 'clean',
    })
  })

  it('hands out payloads as views of the scanned bytes', () => {
    const views: Uint8Array[] = []
    scanSegment(GOLDEN.bytes, (r) => views.push(r.payload))
    expect(views.every((v) => v.buffer === GOLDEN.bytes.buffer)).toBe(true)
  })

  it('reports a header-only segment as clean with lastSeq = baseSeq', () => {
    const { scan: s } = scan(encodeSegmentHeader(3, SALT, 41))
    expect(s).toMatchObject({ header: { segment: 3, baseSeq: 41 }, lastSeq: 41, records: 0, validEnd: 32, tail: 'clean' })
  })

  it('continues sequence numbers from a non-zero base', () => {
    const recs = makeRecords([3, 4], 2 ** 40)
    expect(scan(buildSegment(recs).bytes).recs).toEqual(recs)
  })

  it('reads a segment file through the Fs', () => {
    const fs = new MemFs()
    fs.mkdir('/db')
    fs.putFile(segmentPath('/db', 1), GOLDEN.bytes)
    let n = 0
    expect(readSegment(fs, segmentPath('/db', 1), () => n++).tail).toBe('clean')
    expect(n).toBe(10)
    expect(() => readSegment(fs, segmentPath('/db', 2), () => {})).toThrow(expect.objectContaining({ code: 'KV_IO' }))
  })
})

describe('torn tails', () => {
  it('ignores a truncated trailing record at every cut inside the last three records, and appends after it', async () => {
    const ends = [...GOLDEN.offsets.slice(1), GOLDEN.bytes.length]
    for (let cut = GOLDEN.offsets[7] as number; cut <= GOLDEN.bytes.length; cut++) {
      const bytes = GOLDEN.bytes.subarray(0, cut)
      const { scan: s, recs } = scan(bytes)
      const complete = ends.filter((e) => e <= cut).length
      expect(digest(recs)).toBe(digest(RECS.slice(0, complete)))
      expect(s.corruption).toBeUndefined()
      expect(s.validEnd).toBe(complete === 0 ? SEGMENT_HEADER_SIZE : ends[complete - 1])
      const rest = bytes.subarray(s.validEnd)
      expect(s.tail).toBe(rest.length === 0 ? 'clean' : rest.every((b) => b === 0) ? 'zeros' : 'torn')

      // Writable after recovery (etcd testRepair): append 10 more at validEnd, rescan.
      const fs = new MemFs()
      fs.mkdir('/db')
      fs.putFile(segmentPath('/db', 1), bytes)
      const w = WalWriter.openForAppend(fs, '/db', 1, { salt: SALT, baseSeq: 0, lastSeq: s.lastSeq, validEnd: s.validEnd }, { sync: 'always' })
      const more = makeRecords([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], s.lastSeq)
      await Promise.all(more.map((r) => w.append(r.seq, r.type, r.payload)))
      await w.close()
      const again = scan(fs.readFile(segmentPath('/db', 1)))
      expect(digest(again.recs)).toBe(digest([...RECS.slice(0, complete), ...more]))
      expect(again.scan.tail).toBe('clean')
    }
  })

  it('treats a file shorter than the segment header as torn, zeros or clean', () => {
    expect(scan(new Uint8Array(0)).scan).toMatchObject({ header: undefined, lastSeq: -1, validEnd: 0, tail: 'clean' })
    expect(scan(new Uint8Array(20)).scan).toMatchObject({ header: undefined, tail: 'zeros' })
    expect(scan(GOLDEN.bytes.subarray(0, 31)).scan).toMatchObject({ header: undefined, tail: 'torn' })
    expect(scan(GOLDEN.bytes.subarray(0, 31)).scan.corruption).toBeUndefined()
  })

  it('treats a damaged header with nothing after it as a torn creation, not corruption', () => {
    const h = flipBit(encodeSegmentHeader(1, SALT, 0), 100)
    const s = scan(Buffer.concat([h, Buffer.alloc(100)])).scan
    expect(s).toMatchObject({ header: undefined, validEnd: 0, tail: 'torn' })
    expect(s.corruption).toBeUndefined()
    expect(scan(Buffer.alloc(4096)).scan).toMatchObject({ header: undefined, tail: 'zeros' })
  })

  it('ignores zero-filled tails of 1 B to 64 KiB after the last record', () => {
    for (const n of [1, 7, 8, 23, 24, 25, 512, 4096, 65536]) {
      const { scan: s, recs } = scan(Buffer.concat([GOLDEN.bytes, Buffer.alloc(n)]))
      expect(recs).toEqual(RECS)
      expect(s).toMatchObject({ validEnd: GOLDEN.bytes.length, tail: 'zeros' })
      expect(s.corruption).toBeUndefined()
    }
  })

  it('treats random tails of 1 B to 64 KiB as torn, never as corruption', () => {
    for (const n of [1, 7, 8, 23, 24, 25, 100, 512, 4096, 65536]) {
      for (let seed = 0; seed < 3; seed++) {
        const { scan: s, recs } = scan(Buffer.concat([GOLDEN.bytes, randomBytesSeeded(n, seed * 7919 + n)]))
        expect(recs).toEqual(RECS)
        expect(s).toMatchObject({ validEnd: GOLDEN.bytes.length, tail: 'torn' })
        expect(s.corruption).toBeUndefined()
      }
    }
  })

  it('never replays a record from a segment with another salt', () => {
    // The next records, correctly framed and sequenced, but from another segment (stale data).
    const stale = buildSegment(makeRecords([10, 20], 10), SALT ^ 1).bytes.subarray(SEGMENT_HEADER_SIZE)
    const { scan: s, recs } = scan(Buffer.concat([GOLDEN.bytes, stale]))
    expect(recs).toEqual(RECS)
    expect(s.tail).toBe('torn')
    expect(s.corruption).toBeUndefined()
  })
})

describe('single-bit flips', () => {
  it('never accepts a wrong record and reports every flip outside the last record as corruption', () => {
    // ~9 000 flips x 2 modes: collect violations and assert once (per-flip expects are too slow).
    const bytes = GOLDEN.bytes
    const last = GOLDEN.offsets[GOLDEN.offsets.length - 1] as number
    const problems: string[] = []
    const seqs = (recs: Rec[]): string => recs.map((r) => r.seq).join(',')
    const range = (from: number, to: number): string => RECS.slice(from, to).map((r) => r.seq).join(',')
    let corrupt = 0
    let torn = 0
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const byte = bit >> 3
      const damaged = flipBit(bytes, bit)
      for (const mode of ['strict', 'salvage'] as const) {
        const { scan: s, recs } = scan(damaged, mode)
        const where = `bit ${bit} (${mode})`
        for (const r of recs) {
          const want = RECS[r.seq - 1]
          if (want === undefined || want.type !== r.type || !want.payload.equals(r.payload)) problems.push(`${where}: wrong record ${r.seq}`)
        }
        if (byte < SEGMENT_HEADER_SIZE) {
          if (s.header !== undefined || s.corruption?.offset !== 0) problems.push(`${where}: header damage not reported`)
        } else if (byte < last) {
          const hit = GOLDEN.offsets.findLastIndex((o) => o <= byte)
          if (s.corruption?.offset !== GOLDEN.offsets[hit]) problems.push(`${where}: corruption at ${s.corruption?.offset}`)
          else if (mode === 'strict') corrupt++
          // Strict stops in front of the damaged record; salvage recovers everything else.
          const want = mode === 'strict' ? range(0, hit) : RECS.filter((_, i) => i !== hit).map((r) => r.seq).join(',')
          if (seqs(recs) !== want) problems.push(`${where}: recovered ${seqs(recs)}`)
        } else {
          // Inside the last record: indistinguishable from a torn append.
          if (s.corruption !== undefined || s.tail !== 'torn' || seqs(recs) !== range(0, 9)) problems.push(`${where}: not a torn tail`)
          else if (mode === 'strict') torn++
        }
      }
    }
    expect(problems).toEqual([])
    expect(corrupt).toBe((last - SEGMENT_HEADER_SIZE) * 8)
    expect(torn).toBe((bytes.length - last) * 8)
  })

  it('reads records after a damaged header in salvage mode only', () => {
    // Bit 130 is in base_seq: the salt survives, so every record still verifies.
    const damaged = flipBit(GOLDEN.bytes, 130)
    expect(scan(damaged).recs).toEqual([])
    const { scan: s, recs } = scan(damaged, 'salvage')
    expect(recs).toEqual(RECS)
    expect(s).toMatchObject({ header: undefined, lastSeq: 10, validEnd: GOLDEN.bytes.length, corruption: { offset: 0 } })
  })

  it('reports a zeroed header in front of records as corruption', () => {
    const damaged = Buffer.from(GOLDEN.bytes)
    damaged.fill(0, 0, SEGMENT_HEADER_SIZE)
    expect(scan(damaged).scan).toMatchObject({ header: undefined, corruption: { offset: 0 }, tail: 'torn' })
  })

  it('classifies the length flip of the FORMAT.md example as corruption at the damaged record', () => {
    const bytes = Buffer.alloc(120)
    encodeSegmentHeader(1, SALT, 0).copy(bytes)
    encodeRecord(bytes, encodeRecord(bytes, encodeRecord(bytes, 32, SALT, 1, 1, Buffer.from('hello')), SALT, 2, 2, Buffer.alloc(0)), SALT, 3, 1, Buffer.from('kvstore!'))
    bytes[0x44] = 1 // bit 0 of the length
    expect(scan(bytes).scan.corruption?.offset).toBe(0x40)
    expect(scan(bytes).recs.map((r) => r.seq)).toEqual([1])
    expect(scan(bytes, 'salvage').recs.map((r) => r.seq)).toEqual([1, 3])
  })
})

describe('mid-file corruption', () => {
  it('reports a garbage burst at the damaged record, and salvage recovers every untouched record', () => {
    const ends = [...GOLDEN.offsets.slice(1), GOLDEN.bytes.length]
    for (const [start, len] of [
      [GOLDEN.offsets[2] as number, 8],
      [(GOLDEN.offsets[4] as number) + 3, 40],
      [(GOLDEN.offsets[3] as number) + 30, 300],
      [(GOLDEN.offsets[1] as number) + 24, 1],
    ] as const) {
      const damaged = Buffer.from(GOLDEN.bytes)
      randomBytesSeeded(len, start).copy(damaged, start)
      const first = GOLDEN.offsets.findLastIndex((o) => o <= start)
      const strict = scan(damaged)
      expect(strict.scan.corruption?.offset).toBe(GOLDEN.offsets[first])
      expect(strict.recs).toEqual(RECS.slice(0, first))
      expect(strict.scan.validEnd).toBe(GOLDEN.offsets[first])
      const salvage = scan(damaged, 'salvage')
      const untouched = RECS.filter((_, i) => (ends[i] as number) <= start || (GOLDEN.offsets[i] as number) >= start + len)
      expect(salvage.recs).toEqual(untouched)
      expect(salvage.scan.corruption?.offset).toBe(GOLDEN.offsets[first])
      expect(salvage.scan.tail).toBe('clean')
    }
  })

  it('reports a zeroed sector in the middle as corruption, not as a zero tail', () => {
    const damaged = Buffer.from(GOLDEN.bytes)
    damaged.fill(0, GOLDEN.offsets[3], GOLDEN.offsets[5])
    const { scan: s, recs } = scan(damaged)
    expect(s.corruption?.offset).toBe(GOLDEN.offsets[3])
    expect(recs).toEqual(RECS.slice(0, 3))
  })

  it('detects a duplicated, a deleted and a reordered record by sequence number', () => {
    const frame = (i: number): Buffer => GOLDEN.bytes.subarray(GOLDEN.offsets[i], GOLDEN.offsets[i + 1])
    const head = GOLDEN.bytes.subarray(0, GOLDEN.offsets[3])
    const tailFrom = (i: number): Buffer => GOLDEN.bytes.subarray(GOLDEN.offsets[i])
    const duplicated = Buffer.concat([head, frame(3), tailFrom(3)])
    const deleted = Buffer.concat([head, tailFrom(4)])
    const reordered = Buffer.concat([head, frame(4), frame(3), tailFrom(5)])
    const dupAt = (GOLDEN.offsets[3] as number) + frame(3).length
    for (const [bytes, at, good] of [
      [duplicated, dupAt, 4],
      [deleted, GOLDEN.offsets[3], 3],
      [reordered, GOLDEN.offsets[3], 3],
    ] as const) {
      const { scan: s, recs } = scan(bytes)
      expect(s.corruption?.offset).toBe(at)
      expect(s.corruption?.reason).toMatch(/sequence/)
      expect(recs).toEqual(RECS.slice(0, good))
    }
  })

  it('cannot see a whole last record that is missing (the manifest has to catch that)', () => {
    const { scan: s, recs } = scan(GOLDEN.bytes.subarray(0, GOLDEN.offsets[9]))
    expect(recs).toEqual(RECS.slice(0, 9))
    expect(s.tail).toBe('clean')
  })

  it('propagates exceptions thrown by visit', () => {
    expect(() =>
      scanSegment(GOLDEN.bytes, () => {
        throw new Error('stop')
      }),
    ).toThrow('stop')
  })
})

describe('scanWal across segments', () => {
  function dirWith(segments: Array<[number, Buffer]>): MemFs {
    const fs = new MemFs()
    fs.mkdir('/db')
    for (const [n, bytes] of segments) fs.putFile(segmentPath('/db', n), bytes)
    return fs
  }

  function numbered(segment: number, bytes: Buffer): Buffer {
    const copy = Buffer.from(bytes)
    encodeSegmentHeader(segment, SALT, bytes.readUInt32LE(16)).copy(copy)
    return copy
  }

  const seg1 = numbered(1, buildSegment(makeRecords([3, 4, 5])).bytes)
  const seg2 = numbered(2, buildSegment(makeRecords([6, 7], 3)).bytes)
  const seg3 = numbered(3, buildSegment(makeRecords([8], 5)).bytes)

  function seqsOf(fs: MemFs, mode: 'strict' | 'salvage' = 'strict'): { seqs: number[]; wal: ReturnType<typeof scanWal> } {
    const seqs: number[] = []
    const wal = scanWal(fs, '/db', (r) => seqs.push(r.seq), { mode })
    return { seqs, wal }
  }

  it('visits the segments in order and reports the last seq', () => {
    const { seqs, wal } = seqsOf(dirWith([[3, seg3], [1, seg1], [2, seg2]]))
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6])
    expect(wal.lastSeq).toBe(6)
    expect(wal.corruption).toBeUndefined()
    expect(wal.segments.map((s) => s.segment)).toEqual([1, 2, 3])
  })

  it('accepts a torn tail or a torn creation in the newest segment only', () => {
    const tornTail = Buffer.concat([seg3, Buffer.from('partial')])
    expect(seqsOf(dirWith([[1, seg1], [2, seg2], [3, tornTail]])).wal.corruption).toBeUndefined()
    const tornCreation = seg3.subarray(0, 20)
    const newest = seqsOf(dirWith([[1, seg1], [2, seg2], [3, tornCreation]]))
    expect(newest.wal.corruption).toBeUndefined()
    expect(newest.wal.lastSeq).toBe(5)
    const older = seqsOf(dirWith([[1, Buffer.concat([seg1, Buffer.from('partial')])], [2, seg2]]))
    expect(older.wal.corruption).toMatchObject({ segment: 1, offset: seg1.length })
    expect(older.seqs).toEqual([1, 2, 3])
  })

  it('reports a missing segment as a sequence gap and stops there in strict mode', () => {
    const { seqs, wal } = seqsOf(dirWith([[1, seg1], [3, seg3]]))
    expect(wal.corruption).toMatchObject({ segment: 3, path: segmentPath('/db', 3), offset: 16 })
    expect(seqs).toEqual([1, 2, 3])
    const salvaged = seqsOf(dirWith([[1, seg1], [3, seg3]]), 'salvage')
    expect(salvaged.seqs).toEqual([1, 2, 3, 6])
    expect(salvaged.wal.corruption?.segment).toBe(3)
  })

  it('reports a segment whose header names another segment', () => {
    expect(seqsOf(dirWith([[1, seg1], [2, numbered(7, seg2)]])).wal.corruption).toMatchObject({ segment: 2, offset: 8 })
  })

  it('reports mid-file corruption with the segment file and offset', () => {
    const damaged = Buffer.from(seg1)
    damaged[40] = (damaged[40] as number) ^ 0xff
    const { seqs, wal } = seqsOf(dirWith([[1, damaged], [2, seg2]]))
    expect(wal.corruption).toMatchObject({ segment: 1, offset: 32 })
    expect(seqs).toEqual([])
    expect(wal.segments.length).toBe(1)
  })

  it('treats an empty directory as an empty log', () => {
    expect(seqsOf(dirWith([])).wal).toEqual({ segments: [], lastSeq: -1 })
  })
})
