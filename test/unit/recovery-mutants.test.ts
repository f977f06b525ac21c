// recoverDirectory: what mutation testing found unpinned by wal-recovery.test.ts (see
// docs/mutation/recovery-survivors.txt). First the two data-loss guards of the base
// snapshot: a damaged newest snapshot may fall back to an older one only while the WAL
// still covers everything after it, and a WAL that starts after the usable snapshot is
// corruption (salvage excepted).
import { describe, expect, it } from 'vitest'
import { RECORD_OPS, type Op } from '../../src/codec/ops.js'
import { StoreError } from '../../src/errors.js'
import type { Memtable } from '../../src/memtable.js'
import type { RecoveryMode } from '../../src/options.js'
import { recoverDirectory, type RecoveryParams } from '../../src/recovery.js'
import { SnapshotCatalog, snapshotName } from '../../src/snapshot/catalog.js'
import { SEGMENT_HEADER_SIZE } from '../../src/wal/format.js'
import { scanWal } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'
import { memDir, opsPayload } from '../helpers/wal-fixtures.js'

const DIR = '/db'
const SALT = 0x5eed5a17

const newFs = (): MemFs => memDir(DIR)

const payload = opsPayload

const set = (key: string, value: unknown): Op => ({ t: 'set', key, value, expiresAt: 0 })

/** Segment `segment` holding records baseSeq+1 .. baseSeq+values.length, one set each. */
async function writeSegment(fs: MemFs, segment: number, baseSeq: number, values: string[]): Promise<void> {
  const w = await WalWriter.create(fs, DIR, segment, baseSeq, { sync: 'never', newSalt: () => SALT })
  for (let i = 0; i < values.length; i++) await w.append(baseSeq + i + 1, RECORD_OPS, payload([set(values[i] as string, i)]))
  await w.close()
}

/** A binary snapshot at `seq` holding `keys` (value = key). */
async function writeSnapshot(fs: MemFs, seq: number, keys: string[]): Promise<string> {
  const entries = [...keys].sort().map((key) => ({ key, value: key, expiresAt: 0, version: seq }))
  const { path } = await new SnapshotCatalog(fs, DIR).write('binary', { seq, timestamp: 0, count: entries.length }, entries)
  return path
}

function damage(fs: MemFs, path: string): void {
  const bytes = fs.readFile(path)
  bytes[bytes.length - 6] = (bytes[bytes.length - 6] as number) ^ 0xff
  fs.putFile(path, bytes)
}

function params(fs: MemFs, mode: RecoveryMode, state: Map<string, unknown>): RecoveryParams {
  return {
    fs,
    dir: DIR,
    mode,
    sync: 'never',
    onProgress: () => {},
    loadSnapshot: (mt: Memtable) => {
      state.clear()
      mt.forEach({}, (k, v) => void state.set(k, v))
    },
    applyOps: (ops: Op[]) => {
      for (const op of ops) if (op.t === 'set') state.set(op.key, op.value)
    },
  }
}

async function open(fs: MemFs, mode: RecoveryMode = 'strict'): Promise<{ state: Map<string, unknown>; snapshotSeq: number; skipped: string[]; lastSeq: number }> {
  const state = new Map<string, unknown>()
  const rec = await recoverDirectory(params(fs, mode, state))
  await rec.writer.close()
  return { state, snapshotSeq: rec.stats.snapshotSeq, skipped: rec.stats.skippedSnapshots, lastSeq: rec.lastSeq }
}

async function refusal(fs: MemFs, mode: RecoveryMode = 'strict'): Promise<StoreError> {
  try {
    await recoverDirectory(params(fs, mode, new Map()))
  } catch (err) {
    if (err instanceof StoreError) return err
    throw err
  }
  throw new Error('recovery succeeded')
}

describe('a damaged newest snapshot', () => {
  it('falls back to the older snapshot when the WAL still covers everything after it', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a', 'b'])
    await writeSegment(fs, 1, 2, ['c', 'd']) // records 3 and 4: the WAL starts at the older base
    damage(fs, await writeSnapshot(fs, 4, ['a', 'b', 'c', 'd']))
    for (const mode of ['strict', 'point-in-time', 'salvage'] as const) {
      const got = await open(fs, mode)
      expect(got.snapshotSeq).toBe(2)
      expect(got.skipped).toEqual([snapshotName(4, 'binary')])
      expect(Object.fromEntries(got.state)).toEqual({ a: 'a', b: 'b', c: 0, d: 1 })
      expect(got.lastSeq).toBe(4)
    }
  })

  it('refuses to open when the WAL starts after the older snapshot (records 3..4 would be lost)', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a', 'b'])
    await writeSegment(fs, 2, 4, ['e']) // compacted: only record 5 is left
    const damaged = await writeSnapshot(fs, 4, ['a', 'b', 'c', 'd'])
    damage(fs, damaged)
    for (const mode of ['strict', 'point-in-time', 'salvage'] as const) {
      const err = await refusal(fs, mode)
      expect(err.code).toBe('KV_CORRUPT')
      expect(err.message).toBe(`snapshot ${snapshotName(4, 'binary')} is damaged and the WAL no longer covers an older state (opening would lose data)`)
    }
  })

  it('refuses to open when it is the only snapshot and no WAL is left at all', async () => {
    const fs = newFs()
    damage(fs, await writeSnapshot(fs, 4, ['a', 'b']))
    const err = await refusal(fs)
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toContain(`snapshot ${snapshotName(4, 'binary')} is damaged`)
  })

  it('opens on the snapshot when the WAL starts exactly at its seq', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a', 'b'])
    await writeSegment(fs, 2, 2, ['c'])
    const got = await open(fs)
    expect(got.snapshotSeq).toBe(2)
    expect(got.skipped).toEqual([])
    expect(Object.fromEntries(got.state)).toEqual({ a: 'a', b: 'b', c: 0 })
  })
})

describe('a WAL that starts after the usable snapshot', () => {
  it('is corruption naming the first segment, offset 0 and the seqs, in strict and point-in-time modes', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a'])
    await writeSegment(fs, 3, 5, ['f']) // records 3..5 are gone
    for (const mode of ['strict', 'point-in-time'] as const) {
      const err = await refusal(fs, mode)
      expect(err.code).toBe('KV_CORRUPT')
      expect(err.message).toBe(`${segmentPath(DIR, 3)} at offset 0: WAL starts after seq 5 but the newest usable snapshot covers only up to 2 (last good seq 2)`)
    }
  })

  it('is corruption with no snapshot at all (covers up to 0)', async () => {
    const fs = newFs()
    await writeSegment(fs, 2, 1, ['b'])
    const err = await refusal(fs)
    expect(err.message).toBe(`${segmentPath(DIR, 2)} at offset 0: WAL starts after seq 1 but the newest usable snapshot covers only up to 0 (last good seq 0)`)
  })

  it('salvage opens anyway with what is there', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a'])
    await writeSegment(fs, 3, 5, ['f'])
    const got = await open(fs, 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 'a', f: 0 })
    expect(got.lastSeq).toBe(6)
  })
})

/** Recovery stats and the writer's segment after opening `fs` (the writer is closed). */
async function openStats(fs: MemFs, mode: RecoveryMode = 'strict'): Promise<{ state: Map<string, unknown>; stats: Awaited<ReturnType<typeof recoverDirectory>>['stats']; segment: number }> {
  const state = new Map<string, unknown>()
  const rec = await recoverDirectory(params(fs, mode, state))
  const segment = rec.writer.segment
  await rec.writer.close()
  return { state, stats: rec.stats, segment }
}

describe('the last segment torn while it was created (no valid header)', () => {
  const base = async (tail: Uint8Array): Promise<MemFs> => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b'])
    fs.putFile(segmentPath(DIR, 2), tail)
    return fs
  }

  it('a short, non-zero header: the segment is dropped, its bytes kept in a copy, counted as cut', async () => {
    const fs = await base(new Uint8Array(10).fill(0x5a))
    const got = await openStats(fs)
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.brokenFiles).toEqual(['wal-0000000002.log.broken-0'])
    expect(got.stats.truncatedTailBytes).toBe(10)
    expect(got.stats.corruption).toBeUndefined()
    expect([...fs.readFile(`${DIR}/wal-0000000002.log.broken-0`)]).toEqual(new Array(10).fill(0x5a))
    expect(got.stats.lastSeq).toBe(2)
  })

  it('an all-zero header: dropped without a copy', async () => {
    const fs = await base(new Uint8Array(SEGMENT_HEADER_SIZE + 8))
    const got = await openStats(fs)
    expect(got.stats.brokenFiles).toEqual([])
    expect(got.stats.truncatedTailBytes).toBe(SEGMENT_HEADER_SIZE + 8)
    expect(fs.readdir(DIR).filter((n) => n.includes('broken'))).toEqual([])
  })

  it('an empty file: dropped without a copy, nothing counted', async () => {
    const fs = await base(new Uint8Array(0))
    const got = await openStats(fs)
    expect(got.stats.brokenFiles).toEqual([])
    expect(got.stats.truncatedTailBytes).toBe(0)
    expect(got.stats.lastSeq).toBe(2)
  })

  it('a whole header of garbage is a torn creation too: dropped, its bytes kept', async () => {
    const fs = await base(new Uint8Array(SEGMENT_HEADER_SIZE).fill(0x5a))
    const got = await openStats(fs)
    expect(got.stats.brokenFiles).toEqual(['wal-0000000002.log.broken-0'])
    expect(got.stats.truncatedTailBytes).toBe(SEGMENT_HEADER_SIZE)
    expect(got.stats.corruption).toBeUndefined()
  })
})

describe('an empty last segment', () => {
  it('started past the last record (a load that crashed before its snapshot) is dropped, no copy kept', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b'])
    await writeSegment(fs, 2, 10, [])
    const got = await openStats(fs)
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.brokenFiles).toEqual([])
    expect(got.stats.corruption).toBeUndefined()
    expect(got.stats.lastSeq).toBe(2)
    expect(got.segment).toBe(3)
    expect(fs.readdir(DIR).filter((n) => n.startsWith('wal-2') || n === 'wal-0000000002.log')).toEqual([])
  })

  it('started right at the last record (a fresh rotation) is kept and appended to', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b'])
    await writeSegment(fs, 2, 2, [])
    const got = await openStats(fs)
    expect(got.segment).toBe(2)
    expect(got.stats.lastSeq).toBe(2)
    expect(fs.readdir(DIR)).toContain('wal-0000000002.log')
  })
})

describe('sequence gaps and stale records', () => {
  /** Segment 1: records 1..2 (a, b); segment 2 starts at base 3 with record 4 (d): record 3 is missing. */
  const gapped = async (): Promise<MemFs> => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b'])
    await writeSegment(fs, 2, 3, ['d'])
    return fs
  }

  it('strict: a gap is corruption naming the record, what was expected and the last good seq', async () => {
    const err = await refusal(await gapped())
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toBe(`${segmentPath(DIR, 2)} at offset ${SEGMENT_HEADER_SIZE}: sequence gap: expected 3, found 4 (last good seq 2)`)
  })

  it('point-in-time: keeps what came before the gap, cuts the segment there, appends to a new one', async () => {
    const fs = await gapped()
    const size = fs.readFile(segmentPath(DIR, 2)).length
    const got = await openStats(fs, 'point-in-time')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.lastSeq).toBe(2)
    expect(got.stats.records).toBe(2)
    expect(got.stats.corruption).toEqual({ file: segmentPath(DIR, 2), offset: SEGMENT_HEADER_SIZE, reason: 'sequence gap: expected 3, found 4', lastGoodSeq: 2 })
    expect(got.stats.truncatedTailBytes).toBe(size - SEGMENT_HEADER_SIZE)
    expect(got.stats.brokenFiles).toEqual([`wal-0000000002.log.broken-${SEGMENT_HEADER_SIZE}`])
    expect(fs.readFile(segmentPath(DIR, 2)).length).toBe(SEGMENT_HEADER_SIZE)
    expect(got.segment).toBe(3)
  })

  it('salvage: replays across the gap', async () => {
    const got = await openStats(await gapped(), 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, d: 0 })
    expect(got.stats.lastSeq).toBe(4)
    expect(got.stats.records).toBe(3)
  })

  it('salvage: a record whose seq was replayed already is skipped, and said so', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c'])
    await writeSegment(fs, 2, 1, ['x']) // record 2 again, with other contents
    const got = await openStats(fs, 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, c: 2 })
    expect(got.stats.records).toBe(3)
    expect(got.stats.corruption).toEqual({ file: segmentPath(DIR, 2), offset: SEGMENT_HEADER_SIZE, reason: 'sequence 2 after 3 was replayed already', lastGoodSeq: 3 })
  })
})

describe('records the snapshot covers', () => {
  it('are not replayed over it', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c']) // records 1..3 set a=0, b=1, c=2
    await writeSnapshot(fs, 2, ['a', 'b']) // covers 1..2, with other values
    const got = await openStats(fs)
    expect(Object.fromEntries(got.state)).toEqual({ a: 'a', b: 'b', c: 2 })
    expect(got.stats.records).toBe(1)
    expect(got.stats.lastSeq).toBe(3)
  })

  it('salvage skips a record with the seq just replayed (not only older ones)', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c'])
    await writeSegment(fs, 2, 2, ['x']) // record 3 again
    const got = await openStats(fs, 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, c: 2 })
    expect(got.stats.corruption?.reason).toBe('sequence 3 after 3 was replayed already')
  })
})

describe('a record that does not decode, in the middle of the last segment', () => {
  /** Segment 1: records 1 (a), 2 (b), 3 (type `type`, payload `bad`), 4 (d). Returns record 3's offset. */
  const damaged = async (type = RECORD_OPS, bad: Uint8Array = new Uint8Array([0xff, 0xff, 0xff])): Promise<{ fs: MemFs; at: number; size: number }> => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => SALT })
    await w.append(1, RECORD_OPS, payload([set('a', 0)]))
    await w.append(2, RECORD_OPS, payload([set('b', 1)]))
    await w.append(3, type, bad)
    await w.append(4, RECORD_OPS, payload([set('d', 3)]))
    await w.close()
    const offsets: number[] = []
    scanWal(fs, DIR, (r) => void offsets.push(r.offset), { mode: 'salvage' })
    return { fs, at: offsets[2] as number, size: fs.readFile(segmentPath(DIR, 1)).length }
  }

  it('point-in-time: cut at the record, the file keeps its own chain, so appends go on in the same segment', async () => {
    const { fs, at, size } = await damaged()
    const got = await openStats(fs, 'point-in-time')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.corruption).toMatchObject({ file: segmentPath(DIR, 1), offset: at, lastGoodSeq: 2 })
    expect(got.stats.corruption?.reason).toMatch(/^undecodable record: /)
    expect(got.stats.truncatedTailBytes).toBe(size - at)
    expect(got.stats.brokenFiles).toEqual([`wal-0000000001.log.broken-${at}`])
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(at)
    expect(got.segment).toBe(1)
    expect(got.stats.lastSeq).toBe(2)
  })

  it('strict: corruption at the record', async () => {
    const { fs, at } = await damaged()
    const err = await refusal(fs)
    expect(err.message).toMatch(new RegExp(`^${segmentPath(DIR, 1)} at offset ${at}: undecodable record: .* \\(last good seq 2\\)$`))
  })

  it('an unknown record type is corruption too, and salvage skips it', async () => {
    const { fs, at } = await damaged(99, payload([set('c', 2)]))
    const err = await refusal(fs)
    expect(err.message).toBe(`${segmentPath(DIR, 1)} at offset ${at}: unknown record type 99 (last good seq 2)`)
    const got = await openStats(fs, 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, d: 3 })
  })
})
