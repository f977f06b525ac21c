import { describe, it, expect, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { nodeFs } from '../../src/fs/node-fs.js'
import { isStoreError } from '../../src/errors.js'
import { SEGMENT_HEADER_SIZE, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { scanSegment, scanWal } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import type { SyncPolicy } from '../../src/wal/writer.js'
import { MemFs, POWER_LOSS_MODELS } from '../helpers/mem-fs.js'
import type { CrashModel, FaultCode } from '../helpers/mem-fs.js'
import { memDir } from '../helpers/wal-fixtures.js'

const DIR = '/db'
const SALT = 0x5eed5a17

const newFs = (): MemFs => memDir(DIR)

function payloadFor(seq: number): Buffer {
  return Buffer.from(`record ${seq} `.repeat(1 + (seq % 5)))
}

function create(fs: MemFs, sync: SyncPolicy = 'always', segment = 1, baseSeq = 0): Promise<WalWriter> {
  return WalWriter.create(fs, DIR, segment, baseSeq, { sync, newSalt: () => SALT })
}

/** Seqs recovered from every segment in DIR; also checks their payloads and the chain. */
function recoveredSeqs(fs: MemFs): number[] {
  const seqs: number[] = []
  const wal = scanWal(fs, DIR, (r) => {
    expect(Buffer.from(r.payload).equals(payloadFor(r.seq))).toBe(true)
    seqs.push(r.seq)
  })
  expect(wal.corruption).toBeUndefined()
  return seqs
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('WalWriter.create', () => {
  it('writes the header, datasyncs it and fsyncs the directory before resolving', async () => {
    const fs = newFs()
    const w = await create(fs, 'always', 7, 41)
    expect(fs.log.map((r) => r.op)).toEqual(['open', 'write', 'datasync', 'fsyncDir'])
    // Durable even if every unsynced directory operation is forgotten.
    const after = fs.crash('forget-dir-ops')
    expect(scanSegment(after.readFile(segmentPath(DIR, 7)), () => {})).toMatchObject({
      header: { segment: 7, salt: SALT, baseSeq: 41 },
      lastSeq: 41,
      tail: 'clean',
    })
    expect([w.segment, w.lastSeq, w.sizeBytes]).toEqual([7, 41, SEGMENT_HEADER_SIZE])
    await w.close()
  })

  it('refuses to overwrite an existing segment (KV_IO, cause EEXIST)', async () => {
    const fs = newFs()
    await (await create(fs)).close()
    await expect(create(fs)).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO') && (e.cause as { code: string }).code === 'EEXIST')
  })

  it('rejects invalid options and base sequences', async () => {
    const fs = newFs()
    await expect(WalWriter.create(fs, DIR, 1, 0, { sync: 'sometimes' as SyncPolicy })).rejects.toThrow(TypeError)
    await expect(WalWriter.create(fs, DIR, 1, 0, { sync: 'interval', syncIntervalMs: 0 })).rejects.toThrow(RangeError)
    await expect(WalWriter.create(fs, DIR, 1, -1, { sync: 'always' })).rejects.toThrow(RangeError)
    await expect(WalWriter.create(fs, DIR, 2 ** 32, 0, { sync: 'always' })).rejects.toThrow(RangeError)
    expect(fs.log).toEqual([])
  })
})

describe('WalWriter.append', () => {
  it('throws synchronously on an out-of-order seq, an invalid type or an oversized payload', async () => {
    const w = await create(newFs())
    expect(() => w.append(2, 1, payloadFor(2))).toThrow(RangeError)
    for (const type of [0, 256, 1.5, -1, Number.NaN]) expect(() => w.append(1, type, payloadFor(1))).toThrow(RangeError)
    expect(() => w.append(1, 1, { length: 2 ** 31 } as Uint8Array)).toThrow(RangeError)
    await w.append(1, 255, payloadFor(1))
    expect(w.lastSeq).toBe(1)
    await w.close()
  })

  it('copies the payload before returning, so the caller may reuse its buffer', async () => {
    const fs = newFs()
    const w = await create(fs)
    const buf = payloadFor(1)
    const p = w.append(1, 1, buf)
    buf.fill(0)
    await p
    await w.close()
    expect(recoveredSeqs(fs)).toEqual([1])
  })

  it('grows its batch buffer for large payloads and batches', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    const big = Buffer.alloc(5 * 1024 * 1024, 7)
    const small = Array.from({ length: 1000 }, (_, i) => w.append(i + 1, 1, payloadFor(i + 1)))
    await Promise.all([...small, w.append(1001, 2, big)])
    await w.append(1002, 1, payloadFor(1002))
    await w.close()
    const seen: number[] = []
    scanSegment(fs.readFile(segmentPath(DIR, 1)), (r) => {
      seen.push(r.seq)
      if (r.seq === 1001) expect(Buffer.from(r.payload).equals(big)).toBe(true)
    })
    expect(seen).toEqual(range(1, 1002))
  })

  it('tracks sizeBytes as the segment size including queued records', async () => {
    const w = await create(newFs())
    const p = w.append(1, 1, Buffer.alloc(5))
    expect(w.sizeBytes).toBe(SEGMENT_HEADER_SIZE + recordFrameSize(5))
    await p
    expect(w.sizeBytes).toBe(SEGMENT_HEADER_SIZE + recordFrameSize(5))
    await w.close()
  })
})

describe('group commit', () => {
  it('writes 100 appends made in one tick with one write and one datasync', async () => {
    const fs = newFs()
    const w = await create(fs)
    const before = fs.log.length
    const promises = range(1, 100).map((seq) => w.append(seq, 1, payloadFor(seq)))
    expect(new Set(promises).size).toBe(1)
    await Promise.all(promises)
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write', 'datasync'])
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual(range(1, 100))
    await w.close()
  })

  it('joins appends made in promise continuations of the same tick', async () => {
    const fs = newFs()
    const w = await create(fs)
    const before = fs.log.length
    await Promise.all(range(1, 20).map(async (seq) => {
      await Promise.resolve()
      await Promise.resolve()
      return w.append(seq, 1, payloadFor(seq))
    }))
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write', 'datasync'])
    await w.close()
  })

  it('gathers appends made during an in-flight datasync into one following batch', async () => {
    const fs = newFs()
    const w = await create(fs)
    const before = fs.log.length
    let release!: () => void
    fs.syncGate = () => {
      fs.syncGate = undefined
      return new Promise((resolve) => (release = resolve))
    }
    let firstDone = false
    const first = w.append(1, 1, payloadFor(1)).then(() => (firstDone = true))
    await tick()
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write', 'datasync'])
    const rest: Promise<void>[] = []
    for (let seq = 2; seq <= 60; seq++) {
      rest.push(w.append(seq, 1, payloadFor(seq)))
      if (seq % 20 === 0) await tick()
    }
    expect(firstDone).toBe(false)
    // Nothing of the second batch is durable while the first datasync is in flight.
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual([])
    release()
    await Promise.all([first, ...rest])
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write', 'datasync', 'write', 'datasync'])
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual(range(1, 60))
    await w.close()
  })
})

describe('sync policies', () => {
  it("'always' makes every resolved append survive power loss", async () => {
    const fs = newFs()
    const w = await create(fs, 'always')
    for (let seq = 1; seq <= 5; seq++) await w.append(seq, 1, payloadFor(seq))
    for (const model of POWER_LOSS_MODELS) expect(recoveredSeqs(fs.crash(model, 3))).toEqual(range(1, 5))
    await w.close()
  })

  it("'never' resolves after write() without datasync; flush() makes it durable", async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    const before = fs.log.length
    await Promise.all(range(1, 10).map((seq) => w.append(seq, 1, payloadFor(seq))))
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write'])
    expect(recoveredSeqs(fs.crash('keep-all'))).toEqual(range(1, 10))
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual([])
    await w.flush()
    expect(fs.log.slice(before).map((r) => r.op)).toEqual(['write', 'datasync'])
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual(range(1, 10))
    await w.flush()
    expect(fs.count('datasync')).toBe(2)
    await w.close()
  })

  it("'interval' datasyncs within syncIntervalMs after a write", async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'interval', syncIntervalMs: 5 })
    const before = fs.count('datasync')
    await w.append(1, 1, payloadFor(1))
    expect(fs.count('datasync')).toBe(before)
    await vi.waitFor(() => expect(fs.count('datasync')).toBe(before + 1), { timeout: 2000, interval: 5 })
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual([1])
    await w.close()
  })
})

describe('rotation', () => {
  it('sends appends made before rotate() to the old segment and later ones to the new one', async () => {
    const fs = newFs()
    const w = await create(fs)
    const early = range(1, 3).map((seq) => w.append(seq, 1, payloadFor(seq)))
    const rotated = w.rotate()
    expect(w.segment).toBe(2)
    const late = range(4, 5).map((seq) => w.append(seq, 1, payloadFor(seq)))
    expect(await rotated).toBe(2)
    await Promise.all([...early, ...late])
    const wal = scanWal(fs, DIR, () => {})
    expect(wal.segments.map((s) => [s.segment, s.scan.header?.baseSeq, s.scan.lastSeq])).toEqual([
      [1, 0, 3],
      [2, 3, 5],
    ])
    expect(recoveredSeqs(fs.crash('forget-dir-ops'))).toEqual(range(1, 5))
    expect(fs.openFileCount).toBe(1)
    await w.close()
    expect(fs.openFileCount).toBe(0)
  })

  it('gives each segment its own salt', async () => {
    const fs = newFs()
    let salt = 100
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => salt++ })
    await w.rotate()
    await w.close()
    expect(scanWal(fs, DIR, () => {}).segments.map((s) => s.scan.header?.salt)).toEqual([100, 101])
  })

  it('starts the new segment after a larger base seq when given one', async () => {
    const fs = newFs()
    const w = await create(fs)
    await w.append(1, 1, payloadFor(1))
    await expect(w.rotate(-1)).rejects.toThrow(RangeError)
    expect(await w.rotate(10)).toBe(2)
    expect(w.lastSeq).toBe(10)
    expect(() => w.append(2, 1, payloadFor(2))).toThrow(RangeError)
    await w.append(11, 1, payloadFor(11))
    // A smaller one is ignored: seqs never go back.
    await w.rotate(3)
    await w.close()
    const wal = scanWal(fs, DIR, () => {}, { mode: 'salvage' })
    expect(wal.segments.map((s) => [s.scan.header?.baseSeq, s.scan.lastSeq])).toEqual([
      [0, 1],
      [10, 11],
      [11, 11],
    ])
    expect(wal.corruption).toMatchObject({ segment: 2, offset: 16 })
  })

  it('serialises concurrent rotations, each sealed when it is called', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    const a = w.rotate()
    void w.append(1, 1, payloadFor(1))
    const b = w.rotate()
    // Appended after b was called, while a is still in progress: b's segment, not a's.
    void w.append(2, 1, payloadFor(2))
    expect(w.segment).toBe(3)
    expect(await Promise.all([a, b])).toEqual([2, 3])
    await w.close()
    expect(scanWal(fs, DIR, () => {}).segments.map((s) => [s.segment, s.scan.records])).toEqual([
      [1, 0],
      [2, 1],
      [3, 1],
    ])
  })
})

describe('automatic rotation (maxSegmentBytes)', () => {
  const FRAME = recordFrameSize(payloadFor(1).length)

  function segmentsOf(fs: MemFs): Array<[number, number[]]> {
    const out = new Map<number, number[]>()
    const wal = scanWal(fs, DIR, (r, segment) => {
      const list = out.get(segment) ?? []
      list.push(r.seq)
      out.set(segment, list)
    })
    expect(wal.corruption).toBeUndefined()
    return wal.segments.map((s) => [s.segment, out.get(s.segment) ?? []])
  }

  it('rotates by itself once a segment passes maxSegmentBytes, keeping the chain intact', async () => {
    const fs = newFs()
    const max = SEGMENT_HEADER_SIZE + 3 * FRAME
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', maxSegmentBytes: max, newSalt: () => SALT })
    for (let seq = 1; seq <= 10; seq++) await w.append(seq, 1, payloadFor(1))
    await w.close()
    const segs = segmentsOf(fs)
    expect(segs.map(([, s]) => s)).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]])
    // Each full segment ends with the record that reached the limit.
    for (const [n] of segs.slice(0, -1)) expect(fs.readFile(segmentPath(DIR, n)).length).toBe(max)
  })

  it('sends a record larger than the limit to a segment of its own and goes on', async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'always', maxSegmentBytes: 64 })
    await Promise.all(range(1, 4).map((s) => w.append(s, 1, payloadFor(s))))
    await w.append(5, 1, payloadFor(5))
    await w.close()
    const segs = segmentsOf(fs)
    expect(segs.map(([, s]) => s)).toEqual([[1], [2], [3], [4], [5], []])
    expect(recoveredSeqs(fs.crash('forget-dir-ops'))).toEqual(range(1, 5))
  })

  it('never rotates below the default limit', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    await Promise.all(range(1, 200).map((s) => w.append(s, 1, payloadFor(s))))
    await w.close()
    expect(segmentsOf(fs).length).toBe(1)
  })

  it('keeps an explicit rotation exact while automatic ones run: segments before it hold only earlier records', async () => {
    // What compaction relies on: rotate(), snapshot the seqs before it, delete the segments
    // below the number rotate() resolved to. No later record may sit below that number.
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', maxSegmentBytes: SEGMENT_HEADER_SIZE + 2 * FRAME })
    const all: Promise<unknown>[] = []
    let seq = 0
    const burst = (n: number): void => {
      for (let i = 0; i < n; i++) {
        seq++
        all.push(w.append(seq, 1, payloadFor(1)))
      }
    }
    burst(5) // rotations to 2, 3 (and maybe more) now pending
    const snapshotSeq = seq
    const rotated = w.rotate()
    burst(7) // more automatic rotations after the explicit one
    const target = await rotated
    await Promise.all(all)
    expect(w.segment).toBeGreaterThan(target)
    await w.close()
    for (const [n, seqs] of segmentsOf(fs)) {
      if (n < target) for (const s of seqs) expect(s).toBeLessThanOrEqual(snapshotSeq)
      else for (const s of seqs) expect(s).toBeGreaterThan(snapshotSeq)
    }
  })

  it('counts bytesSinceRotate across automatic rotations; an explicit rotate() resets it', async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', maxSegmentBytes: SEGMENT_HEADER_SIZE + 2 * FRAME })
    expect(w.bytesSinceRotate).toBe(SEGMENT_HEADER_SIZE)
    for (let s = 1; s <= 6; s++) void w.append(s, 1, payloadFor(1))
    expect(w.bytesSinceRotate).toBe(SEGMENT_HEADER_SIZE + 6 * FRAME)
    expect(w.sizeBytes).toBeLessThan(SEGMENT_HEADER_SIZE + 2 * FRAME)
    void w.rotate()
    expect(w.bytesSinceRotate).toBe(SEGMENT_HEADER_SIZE)
    await w.close()
  })

  it('rejects a maxSegmentBytes that is not a positive integer', async () => {
    const fs = newFs()
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(WalWriter.create(fs, DIR, 1, 0, { sync: 'never', maxSegmentBytes: bad })).rejects.toThrow(RangeError)
    }
    expect(fs.log).toEqual([])
  })
})

describe('close', () => {
  it('flushes, datasyncs and closes; later operations reject with KV_CLOSED', async () => {
    const fs = newFs()
    const w = await create(fs, 'never')
    void w.append(1, 1, payloadFor(1))
    const closing = w.close()
    expect(w.close()).toBe(closing)
    await closing
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual([1])
    expect(fs.openFileCount).toBe(0)
    await expect(w.append(2, 1, payloadFor(2))).rejects.toSatisfy((e) => isStoreError(e, 'KV_CLOSED'))
    await expect(w.flush()).rejects.toSatisfy((e) => isStoreError(e, 'KV_CLOSED'))
    await expect(w.rotate()).rejects.toSatisfy((e) => isStoreError(e, 'KV_CLOSED'))
  })
})

describe('openForAppend', () => {
  it('cuts the torn tail before appending', async () => {
    const fs = newFs()
    const w = await create(fs)
    await Promise.all(range(1, 3).map((seq) => w.append(seq, 1, payloadFor(seq))))
    await w.close()
    const path = segmentPath(DIR, 1)
    fs.putFile(path, Buffer.concat([fs.readFile(path), Buffer.from('torn record bytes')]))
    const scan = scanSegment(fs.readFile(path), () => {})
    expect(scan.tail).toBe('torn')
    const v = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: scan.lastSeq, validEnd: scan.validEnd }, { sync: 'always' })
    expect([v.segment, v.lastSeq, v.sizeBytes]).toEqual([1, 3, scan.validEnd])
    await v.append(4, 1, payloadFor(4))
    await v.close()
    expect(scanSegment(fs.readFile(path), () => {}).tail).toBe('clean')
    expect(recoveredSeqs(fs.crash('drop-unsynced'))).toEqual(range(1, 4))
  })

  it('makes the truncation durable on flush even without appends', async () => {
    const fs = newFs()
    fs.putFile(segmentPath(DIR, 1), Buffer.concat([encodeSegmentHeader(1, SALT, 0), Buffer.from('garbage')]))
    const v = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 0, validEnd: 32 }, { sync: 'never' })
    await v.flush()
    expect(fs.crash('drop-unsynced').readFile(segmentPath(DIR, 1)).length).toBe(32)
    await v.close()
  })

  it('rejects bad positions and missing files', () => {
    const fs = newFs()
    const pos = { salt: SALT, baseSeq: 0, lastSeq: 0, validEnd: 32 }
    expect(() => WalWriter.openForAppend(fs, DIR, 1, { ...pos, validEnd: 36 }, { sync: 'always' })).toThrow(RangeError)
    expect(() => WalWriter.openForAppend(fs, DIR, 1, { ...pos, validEnd: 24 }, { sync: 'always' })).toThrow(RangeError)
    expect(() => WalWriter.openForAppend(fs, DIR, 1, { ...pos, lastSeq: -1 }, { sync: 'always' })).toThrow(RangeError)
    expect(() => WalWriter.openForAppend(fs, DIR, 1, pos, { sync: 'always' })).toThrow(expect.objectContaining({ code: 'KV_IO' }))
  })
})

describe('poisoning', () => {
  it('rejects the failing batch and every later append with KV_IO carrying the original error', async () => {
    const fs = newFs()
    const w = await create(fs)
    await w.append(1, 1, payloadFor(1))
    fs.failAt(fs.opCount, 'ENOSPC')
    const failed = w.append(2, 1, payloadFor(2))
    await expect(failed).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO') && (e.cause as { code: string }).code === 'ENOSPC')
    expect(w.failure).toBeDefined()
    const ops = fs.opCount
    await expect(w.append(3, 1, payloadFor(3))).rejects.toBe(w.failure)
    await expect(w.flush()).rejects.toBe(w.failure)
    await expect(w.rotate()).rejects.toBe(w.failure)
    // Nothing more reaches the disk except the truncation of the failed batch (none left here).
    expect(fs.log.slice(ops).map((r) => r.op)).toEqual([])
    await w.close()
    expect(fs.openFileCount).toBe(0)
    expect(recoveredSeqs(fs.crash('keep-all'))).toEqual([1])
  })

  it('never retries a failed datasync', async () => {
    const fs = newFs()
    const w = await create(fs)
    fs.failAt(fs.opCount + 1, 'EIO') // the datasync after the write
    await expect(w.append(1, 1, payloadFor(1))).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    const syncs = fs.count('datasync')
    await expect(w.append(2, 1, payloadFor(2))).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    await w.close()
    expect(fs.count('datasync')).toBe(syncs)
  })

  it('truncates a short write back to the last complete record', async () => {
    const fs = newFs()
    const w = await create(fs)
    await w.append(1, 1, payloadFor(1))
    const size = fs.readFile(segmentPath(DIR, 1)).length
    fs.failAt(fs.opCount, 'EFBIG', { shortWrite: true })
    const batch = range(2, 10).map((seq) => w.append(seq, 1, payloadFor(seq)))
    await expect(batch[0]).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO') && (e.cause as { code: string }).code === 'EFBIG')
    expect(fs.log.slice(-3).map((r) => r.op)).toEqual(['write', 'write', 'ftruncate'])
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(size)
    await w.close()
  })

  it('rejects a pending rotation and the appends queued behind it', async () => {
    const fs = newFs()
    const w = await create(fs)
    fs.failAt(fs.opCount, 'EIO', { persistent: true })
    const rotated = w.rotate()
    const late = w.append(1, 1, payloadFor(1))
    await expect(rotated).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    await expect(late).rejects.toSatisfy((e) => isStoreError(e, 'KV_IO'))
    await w.close()
  })
})

describe('on the real file system', () => {
  it('appends, rotates, reopens for append and reads back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kv-wal-'))
    try {
      const w = await WalWriter.create(nodeFs, dir, 1, 0, { sync: 'always' })
      await Promise.all(range(1, 50).map((seq) => w.append(seq, 1, payloadFor(seq))))
      await w.rotate()
      await Promise.all(range(51, 60).map((seq) => w.append(seq, 2, payloadFor(seq))))
      await w.close()
      const first = scanWal(nodeFs, dir, () => {})
      const last = first.segments[1]?.scan
      expect(last?.header?.baseSeq).toBe(50)
      const v = WalWriter.openForAppend(nodeFs, dir, 2, { salt: last?.header?.salt ?? 0, baseSeq: 50, lastSeq: 60, validEnd: last?.validEnd ?? 0 }, { sync: 'never' })
      await v.append(61, 1, payloadFor(61))
      await v.close()
      const seqs: number[] = []
      const wal = scanWal(nodeFs, dir, (r) => {
        expect(Buffer.from(r.payload).equals(payloadFor(r.seq))).toBe(true)
        seqs.push(r.seq)
      })
      expect(wal.corruption).toBeUndefined()
      expect(seqs).toEqual(range(1, 61))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('fault injection at every op of a workload', () => {
  interface Outcome {
    issued: number[]
    resolved: Set<number>
    rejected: Map<number, unknown>
    failure: Error | undefined
    errors: unknown[]
  }

  // create, two batches, a rotation with appends queued behind it, a batch, flush, close.
  async function workload(fs: MemFs, out: Outcome): Promise<void> {
    let w: WalWriter
    try {
      w = await create(fs)
    } catch (err) {
      out.errors.push(err)
      return
    }
    let seq = 0
    const batch = (n: number): Promise<unknown> =>
      Promise.allSettled(
        Array.from({ length: n }, () => {
          const s = ++seq
          out.issued.push(s)
          return w.append(s, 1, payloadFor(s)).then(
            () => void out.resolved.add(s),
            (err: unknown) => void out.rejected.set(s, err),
          )
        }),
      )
    await batch(3)
    await batch(1)
    const rotated = w.rotate().catch((err: unknown) => void out.errors.push(err))
    await batch(2)
    await rotated
    await batch(4)
    await w.flush().catch((err: unknown) => out.errors.push(err))
    await w.close().catch((err: unknown) => out.errors.push(err))
    out.failure = w.failure
  }

  const run = async (setup: (fs: MemFs) => void): Promise<{ fs: MemFs; out: Outcome }> => {
    const fs = newFs()
    setup(fs)
    const out: Outcome = { issued: [], resolved: new Set(), rejected: new Map(), failure: undefined, errors: [] }
    await workload(fs, out)
    return { fs, out }
  }

  it('keeps every resolved append and only a prefix, and rejects everything after the first failure', async () => {
    const clean = await run(() => {})
    expect(clean.out.rejected.size).toBe(0)
    expect(clean.out.errors).toEqual([])
    const opCount = clean.fs.opCount
    expect(opCount).toBeGreaterThan(12)

    const variants: Array<[FaultCode, { persistent?: boolean; shortWrite?: boolean }]> = [
      ['ENOSPC', {}],
      ['EIO', { persistent: true }],
      ['ENOSPC', { shortWrite: true }],
      ['EFBIG', { shortWrite: true, persistent: true }],
    ]
    const models: CrashModel[] = [...POWER_LOSS_MODELS, 'keep-all']
    let injected = 0
    for (let k = 0; k < opCount; k++) {
      for (const [code, opts] of variants) {
        const { fs, out } = await run((f) => f.failAt(k, code, opts))
        const where = `op ${k} ${code} ${JSON.stringify(opts)}`
        const causeCode = (e: unknown): unknown => (isStoreError(e, 'KV_IO') ? (e.cause as { code?: unknown }).code : e)
        // Every error is KV_IO caused by the injected fault.
        for (const e of [...out.rejected.values(), ...out.errors]) expect(causeCode(e), where).toBe(code)
        if (out.failure !== undefined) expect(causeCode(out.failure), where).toBe(code)
        if (out.rejected.size > 0 || out.errors.length > 0) injected++
        // After the first rejected append, all later ones reject.
        const firstRejected = Math.min(...out.rejected.keys())
        for (const s of out.issued) if (s > firstRejected) expect(out.rejected.has(s), `${where}: seq ${s}`).toBe(true)
        for (const model of models) {
          for (const seed of [1, 2]) {
            const seqs = recoveredSeqs(fs.crash(model, seed))
            expect(seqs, `${where} ${model}`).toEqual(range(1, seqs.length))
            for (const s of out.resolved) expect(s, `${where} ${model}: lost ${s}`).toBeLessThanOrEqual(seqs.length)
          }
        }
      }
    }
    expect(injected).toBeGreaterThan(opCount * 3)
  })
})
