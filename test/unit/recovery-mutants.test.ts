// recoverDirectory: what mutation testing found unpinned by wal-recovery.test.ts (see
// docs/mutation/recovery-survivors.txt). First the two data-loss guards of the base
// snapshot: a damaged newest snapshot may fall back to an older one only while the WAL
// still covers everything after it, and a WAL that starts after the usable snapshot is
// corruption (salvage excepted).
import { describe, expect, it, vi } from 'vitest'
import { RECORD_OPS, type Op } from '../../src/codec/ops.js'
import { StoreError } from '../../src/errors.js'
import type { Memtable } from '../../src/memtable.js'
import type { RecoveryMode } from '../../src/options.js'
import { recoverDirectory, type RecoveryParams } from '../../src/recovery.js'
import { SnapshotCatalog, snapshotName } from '../../src/snapshot/catalog.js'
import { MAX_SEGMENT_NUMBER, SEGMENT_HEADER_SIZE } from '../../src/wal/format.js'
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

describe('reading and timing', () => {
  it('segments are read in chunks of readChunkBytes, never in one piece', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, Array.from({ length: 200 }, (_, i) => `k${i}`))
    let longest = 0
    const watched = new Proxy(fs, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown
        if (prop === 'read') {
          return (fd: number, buf: Uint8Array, off: number, len: number, pos: number) => {
            longest = Math.max(longest, len)
            return target.read(fd, buf, off, len, pos)
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const state = new Map<string, unknown>()
    const rec = await recoverDirectory({ ...params(watched, 'strict', state), readChunkBytes: 256 })
    await rec.writer.close()
    expect(state.size).toBe(200)
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBeGreaterThan(4096)
    expect(longest).toBeGreaterThan(0)
    expect(longest).toBeLessThanOrEqual(256)
  })

  it('timeMs is the time recovery took, by performance.now', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a'])
    let now = 5_000_000
    vi.spyOn(performance, 'now').mockImplementation(() => (now += 3))
    try {
      const got = await openStats(fs)
      expect(got.stats.timeMs).toBeGreaterThan(0)
      expect(got.stats.timeMs).toBeLessThan(1000)
    } finally {
      vi.restoreAllMocks()
    }
  })
})

describe('installing the base snapshot', () => {
  it('a snapshot that cannot be read (EIO) ends the search with KV_IO: it is not skipped for an older one', async () => {
    const fs = newFs()
    await writeSnapshot(fs, 2, ['a', 'b'])
    await writeSegment(fs, 1, 2, ['c'])
    const newest = await writeSnapshot(fs, 3, ['a', 'b', 'c'])
    const failing = new Proxy(fs, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target) as unknown
        if (prop === 'open') {
          return (path: string, ...rest: unknown[]) => {
            if (path === newest) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })
            return (v as (...a: unknown[]) => unknown).call(target, path, ...rest)
          }
        }
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    let err: unknown
    try {
      await recoverDirectory(params(failing, 'point-in-time', new Map()))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(StoreError)
    expect(err).toMatchObject({ code: 'KV_IO', cause: { code: 'EIO' } })
  })

  it('a snapshot file named after a later seq than its header says covers only what its header says', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c', 'd', 'e']) // records 1..5 set a=0 .. e=4
    const path = await writeSnapshot(fs, 2, ['a', 'b']) // covers 1..2
    fs.rename(path, path.replace(snapshotName(2, 'binary'), snapshotName(5, 'binary'))) // renamed by hand
    const got = await open(fs)
    expect(Object.fromEntries(got.state)).toEqual({ a: 'a', b: 'b', c: 2, d: 3, e: 4 })
    expect(got.snapshotSeq).toBe(2)
    expect(got.lastSeq).toBe(5)
    // And one named after an earlier seq covers what its header says too: nothing replayed twice.
    const fs2 = newFs()
    await writeSegment(fs2, 1, 0, ['a', 'b', 'c'])
    const path2 = await writeSnapshot(fs2, 3, ['x'])
    fs2.rename(path2, path2.replace(snapshotName(3, 'binary'), snapshotName(1, 'binary')))
    const got2 = await open(fs2)
    expect(Object.fromEntries(got2.state)).toEqual({ x: 'x' })
    expect(got2.snapshotSeq).toBe(3)
  })

  it('without a snapshot no base is installed: loadSnapshot is not called', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a'])
    const state = new Map<string, unknown>()
    const p = params(fs, 'strict', state)
    let installs = 0
    const rec = await recoverDirectory({ ...p, loadSnapshot: (mt) => (installs++, p.loadSnapshot(mt)) })
    await rec.writer.close()
    expect(installs).toBe(0)
    expect(Object.fromEntries(state)).toEqual({ a: 0 })
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
/** Ops issued on `fs` from op index `from`, as `op path` strings (paths relative to DIR). */
const opsSince = (fs: MemFs, from: number): string[] => fs.log.slice(from).map((r) => `${r.op} ${r.path.replace(`${DIR}/`, '')}`)

/** Recover `fs`; `ops` are the file changes recovery made (opens left out), before the writer is closed. */
async function openStats(
  fs: MemFs,
  mode: RecoveryMode = 'strict',
): Promise<{ state: Map<string, unknown>; stats: Awaited<ReturnType<typeof recoverDirectory>>['stats']; segment: number; ops: string[] }> {
  const state = new Map<string, unknown>()
  const from = fs.opCount
  const rec = await recoverDirectory(params(fs, mode, state))
  const ops = opsSince(fs, from).filter((op) => !op.startsWith('open '))
  const segment = rec.writer.segment
  await rec.writer.close()
  return { state, stats: rec.stats, segment, ops }
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

describe('after the first damage', () => {
  it('salvage reports the first damage, not the last', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c'])
    await writeSegment(fs, 2, 1, ['x']) // record 2 again
    await writeSegment(fs, 3, 2, ['y']) // record 3 again
    const got = await openStats(fs, 'salvage')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, c: 2 })
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

// The repair steps: what recovery changes on disk, in which order, and what it says when a
// step fails. Every case also checks that no descriptor is left open.

/** Segment 1: records 1..3 (a, b, c), then `tail` appended (a torn write). Returns where the records end. */
async function tornTail(fs: MemFs, tail: Uint8Array): Promise<number> {
  await writeSegment(fs, 1, 0, ['a', 'b', 'c'])
  const path = segmentPath(DIR, 1)
  const records = fs.readFile(path)
  fs.putFile(path, Buffer.concat([records, tail]))
  return records.length
}

const TAIL = Uint8Array.from({ length: 100 }, (_, i) => (i * 7 + 1) & 0xff)

/** True when every unlink and rename in DIR from op `from` on is followed by an fsyncDir of DIR. */
function dirChangesSynced(fs: MemFs, from: number): boolean {
  let pending = false
  for (const r of fs.log.slice(from)) {
    if (r.op === 'unlink' || r.op === 'rename') pending = true
    if (r.op === 'fsyncDir' && r.path === DIR) pending = false
  }
  return !pending
}

/** Picks one op of a recovery's op list (as {@link opsSince} gives it). */
type Pick = (op: string, index: number, ops: string[]) => boolean

/**
 * Build the directory with `build`, recover it once to find the index of the first op `pick`
 * accepts, then build it again and recover with that op failing; returns the refusal.
 */
async function failingAt(build: (fs: MemFs) => Promise<unknown>, pick: Pick): Promise<{ err: StoreError; fs: MemFs }> {
  const probe = newFs()
  await build(probe)
  const from = probe.opCount
  await openStats(probe)
  const at = opsSince(probe, from).findIndex(pick)
  if (at < 0) throw new Error(`no such op in ${opsSince(probe, from).join(', ')}`)
  const fs = newFs()
  await build(fs)
  fs.failAt(from + at, 'EIO')
  const err = await refusal(fs)
  expect(fs.openFileCount).toBe(0)
  return { err, fs }
}

describe('a clean reopen', () => {
  it('changes nothing on disk: no write, cut, sync, delete or rename, and leaves no descriptor open', async () => {
    // The only op is the writer's truncation to the end the segment already has.
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b', 'c'])
    const got = await openStats(fs)
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1, c: 2 })
    expect(got.ops).toEqual(['ftruncate wal-0000000001.log'])
    expect(got.stats.brokenFiles).toEqual([])
    expect(fs.openFileCount).toBe(0)
  })
})

describe('cutting a torn tail', () => {
  it('copies the torn bytes, syncs the copy and its directory entry, and only then truncates', async () => {
    const fs = newFs()
    const end = await tornTail(fs, TAIL)
    const got = await openStats(fs)
    const copy = `wal-0000000001.log.broken-${end}`
    expect(got.stats.brokenFiles).toEqual([copy])
    expect(got.stats.truncatedTailBytes).toBe(TAIL.length)
    expect([...fs.readFile(`${DIR}/${copy}`)]).toEqual([...TAIL])
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(end)
    expect(got.ops).toEqual([`write ${copy}`, `datasync ${copy}`, `fsyncDir ${DIR}`, 'ftruncate wal-0000000001.log', 'datasync wal-0000000001.log', 'ftruncate wal-0000000001.log'])
    expect(fs.openFileCount).toBe(0)
  })

  it('loses no torn byte whatever op a power loss hits: they are in the segment or in a durable copy', async () => {
    const fs = newFs()
    const end = await tornTail(fs, TAIL)
    fs.syncAll()
    const states: MemFs[] = []
    fs.onOp = () => {
      states.push(fs.crash('drop-unsynced'), fs.crash('forget-dir-ops'))
    }
    await openStats(fs)
    fs.onOp = undefined
    states.push(fs.crash('drop-unsynced'), fs.crash('forget-dir-ops'))
    expect(states.length).toBeGreaterThan(10)
    for (const s of states) {
      const segment = s.readFile(segmentPath(DIR, 1))
      const copy = `${DIR}/wal-0000000001.log.broken-${end}`
      const kept = segment.length > end ? segment.subarray(end) : s.stat(copy) !== undefined ? s.readFile(copy) : new Uint8Array(0)
      expect([...kept]).toEqual([...TAIL])
    }
  })

  it('copies in as many writes as the file system takes, at the right offsets, across read chunks', async () => {
    class TrickleFs extends MemFs {
      override write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
        return super.write(fd, buf, offset, Math.min(length, 7), position)
      }
    }
    const fs = new TrickleFs()
    fs.mkdir(DIR)
    fs.syncAll()
    const end = await tornTail(fs, TAIL)
    const rec = await recoverDirectory({ ...params(fs, 'strict', new Map()), readChunkBytes: 16 })
    await rec.writer.close()
    expect([...fs.readFile(`${DIR}/wal-0000000001.log.broken-${end}`)]).toEqual([...TAIL])
    expect(fs.openFileCount).toBe(0)
  })

  it('a file system that writes nothing is an error, not a loop', async () => {
    class StuckFs extends MemFs {
      override write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
        return this.fstat(fd).size === 0 && this.stuck ? 0 : super.write(fd, buf, offset, length, position)
      }
      stuck = false
    }
    const fs = new StuckFs()
    fs.mkdir(DIR)
    fs.syncAll()
    const end = await tornTail(fs, TAIL)
    fs.stuck = true
    const err = await refusal(fs)
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`cannot write ${DIR}/wal-0000000001.log.broken-${end}: no progress`)
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(end + TAIL.length)
    expect(fs.openFileCount).toBe(0)
  })

  it('creates the copy with the store file mode', async () => {
    const fs = newFs()
    const end = await tornTail(fs, TAIL)
    const rec = await recoverDirectory({ ...params(fs, 'strict', new Map()), fileMode: 0o640 })
    await rec.writer.close()
    expect(fs.stat(`${DIR}/wal-0000000001.log.broken-${end}`)?.mode).toBe(0o640)
  })

  it('takes the next free name when copies exist, and gives up after 1000 names', async () => {
    const fs = newFs()
    const end = await tornTail(fs, TAIL)
    const base = `${DIR}/wal-0000000001.log.broken-${end}`
    fs.putFile(base, new Uint8Array([1]))
    for (let k = 1; k < 999; k++) fs.putFile(`${base}.${k}`, new Uint8Array([1]))
    const got = await openStats(fs.crash('keep-all'))
    expect(got.stats.brokenFiles).toEqual([`wal-0000000001.log.broken-${end}.999`])
    fs.putFile(`${base}.999`, new Uint8Array([1]))
    const err = await refusal(fs)
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`cannot find a free name for ${base} (1000 taken)`)
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(end + TAIL.length)
  })

  it('names the step that failed: create, write, sync of the copy, the directory sync, open and truncate of the segment', async () => {
    const build = (fs: MemFs): Promise<number> => tornTail(fs, TAIL)
    const end = await build(newFs())
    const copy = `${DIR}/wal-0000000001.log.broken-${end}`
    const segment = segmentPath(DIR, 1)
    const beforeCut = (ops: string[], i: number): boolean => ops[i + 1] === 'ftruncate wal-0000000001.log'
    // [which op fails, the message, whether the segment may already be cut]
    const cases: Array<[Pick, string, boolean]> = [
      [(op) => op.startsWith('open ') && op.includes('broken'), `cannot create ${copy}`, false],
      [(op) => op.startsWith('write '), `cannot write ${copy}`, false],
      [(op) => op.startsWith('datasync ') && op.includes('broken'), `cannot write ${copy}`, false],
      [(op) => op.startsWith('fsyncDir '), `cannot fsync directory ${DIR}`, false],
      [(op, i, ops) => op === 'open wal-0000000001.log' && beforeCut(ops, i), `cannot open ${segment}`, false],
      [(op) => op.startsWith('ftruncate '), `cannot truncate ${segment}`, false],
      [(op) => op === 'datasync wal-0000000001.log', `cannot truncate ${segment}`, true],
    ]
    for (const [pick, message, mayBeCut] of cases) {
      const { err, fs } = await failingAt(build, pick)
      expect(err.code).toBe('KV_IO')
      expect(err.message).toBe(message)
      expect((err.cause as { code?: string }).code).toBe('EIO')
      if (!mayBeCut) expect(fs.readFile(segment).length).toBe(end + TAIL.length)
    }
  })
})

describe('dropping, moving aside and removing files', () => {
  /** The writer's ops when it starts segment 3 (after the repair's own). */
  const NEW_SEGMENT_3 = ['write wal-0000000003.log', 'datasync wal-0000000003.log', `fsyncDir ${DIR}`]
  /** Segment 1: records 1..2; segment 2: a header torn at creation (`header`). */
  const tornCreation = async (fs: MemFs, header: Uint8Array): Promise<void> => {
    await writeSegment(fs, 1, 0, ['a', 'b'])
    fs.putFile(segmentPath(DIR, 2), header)
  }
  /** Segments 1 (records 1..2), 2 (record 4: a gap) and 3 (record 5). */
  const gapThenMore = async (fs: MemFs): Promise<void> => {
    await writeSegment(fs, 1, 0, ['a', 'b'])
    await writeSegment(fs, 2, 3, ['d'])
    await writeSegment(fs, 3, 4, ['e'])
  }

  it('a dropped segment with bytes: copy synced, entry synced, then deleted, and the delete synced', async () => {
    const fs = newFs()
    await tornCreation(fs, new Uint8Array(10).fill(0x5a))
    const { ops } = await openStats(fs)
    expect(ops).toEqual([
      'write wal-0000000002.log.broken-0',
      'datasync wal-0000000002.log.broken-0',
      `fsyncDir ${DIR}`,
      'unlink wal-0000000002.log',
      `fsyncDir ${DIR}`,
      ...NEW_SEGMENT_3,
    ])
    expect(fs.openFileCount).toBe(0)
  })

  it('a dropped segment without bytes to keep: deleted, and the delete synced', async () => {
    const fs = newFs()
    await tornCreation(fs, new Uint8Array(SEGMENT_HEADER_SIZE))
    expect((await openStats(fs)).ops).toEqual(['unlink wal-0000000002.log', `fsyncDir ${DIR}`, ...NEW_SEGMENT_3])
  })

  it('a failed delete is KV_IO naming the segment', async () => {
    const { err } = await failingAt((fs) => tornCreation(fs, new Uint8Array(SEGMENT_HEADER_SIZE)), (op) => op.startsWith('unlink '))
    expect(err.code).toBe('KV_IO')
    expect(err.message).toBe(`cannot delete ${segmentPath(DIR, 2)}`)
  })

  it('point-in-time moves what follows the damage aside and syncs the directory after the move', async () => {
    const fs = newFs()
    await gapThenMore(fs)
    const from = fs.opCount
    const got = await openStats(fs, 'point-in-time')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.brokenFiles).toEqual([`wal-0000000002.log.broken-${SEGMENT_HEADER_SIZE}`, 'wal-0000000003.log.broken'])
    expect(fs.stat(segmentPath(DIR, 3))).toBeUndefined()
    expect(dirChangesSynced(fs, from)).toBe(true)
    const ops = opsSince(fs, from)
    expect(ops.indexOf('rename wal-0000000003.log')).toBeGreaterThan(ops.indexOf('datasync wal-0000000002.log'))
    expect(fs.openFileCount).toBe(0)
  })

  it('a failed move is KV_IO naming the segment, and a taken name gives the next free one, up to 1000', async () => {
    const build = async (fs: MemFs): Promise<void> => {
      await gapThenMore(fs)
      for (let k = 0; k < 999; k++) fs.putFile(`${segmentPath(DIR, 3)}.broken${k === 0 ? '' : `.${k}`}`, new Uint8Array([1]))
    }
    const fs = newFs()
    await build(fs)
    const got = await openStats(fs.crash('keep-all'), 'point-in-time')
    expect(got.stats.brokenFiles).toContain('wal-0000000003.log.broken.999')
    fs.putFile(`${segmentPath(DIR, 3)}.broken.999`, new Uint8Array([1]))
    const full = await refusal(fs, 'point-in-time')
    expect(full.code).toBe('KV_IO')
    expect(full.message).toBe(`cannot find a free name for ${segmentPath(DIR, 3)}.broken (1000 taken)`)

    const probe = newFs()
    await gapThenMore(probe)
    const start = probe.opCount
    await openStats(probe, 'point-in-time')
    const at = opsSince(probe, start).findIndex((op) => op.startsWith('rename '))
    const failing = newFs()
    await gapThenMore(failing)
    failing.failAt(start + at, 'EIO')
    const err = await refusal(failing, 'point-in-time')
    expect(err.message).toBe(`cannot move aside ${segmentPath(DIR, 3)}`)
    expect(failing.stat(segmentPath(DIR, 3))).toBeDefined()
  })

  it('removing an interrupted snapshot temp file alone is a directory change: it is synced', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a'])
    fs.putFile(`${DIR}/snap-0000000000000001.kvs.tmp-ab12`, new Uint8Array([1, 2, 3]))
    const got = await openStats(fs)
    expect(got.stats.removedTemps).toEqual(['snap-0000000000000001.kvs.tmp-ab12'])
    expect(got.ops).toEqual(['unlink snap-0000000000000001.kvs.tmp-ab12', `fsyncDir ${DIR}`, 'ftruncate wal-0000000001.log'])
  })
})

describe('replay progress', () => {
  /** Replay 2 * 16384 + 5 records with `performance.now` stepping `step` ms per call; returns the replay events. */
  const replayEvents = async (step: number): Promise<unknown[]> => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => SALT })
    const p = payload([set('k', 1)])
    for (let seq = 1; seq <= 2 * 16384 + 5; seq++) await w.append(seq, RECORD_OPS, p)
    await w.close()
    const events: unknown[] = []
    let now = 1000 // not 0: a clock that stands still must not look like 100 ms passed
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => (now += step))
    try {
      const rec = await recoverDirectory({ ...params(fs, 'strict', new Map()), onProgress: (e) => void events.push(e) })
      await rec.writer.close()
    } finally {
      clock.mockRestore()
    }
    return events.filter((e) => (e as { phase: string }).phase === 'replay')
  }

  it('is reported every 16384 records once 100 ms have passed since the last report', async () => {
    expect(await replayEvents(150)).toEqual([
      { phase: 'replay', done: 16384, total: undefined },
      { phase: 'replay', done: 32768, total: undefined },
    ])
  })

  it('is not reported while less than 100 ms pass', async () => {
    expect(await replayEvents(0)).toEqual([])
  })
})

describe('the last segment number', () => {
  /** Records 1..2 in segment `last - 1`, and segment `last` torn at creation (dropped on open). */
  const endingAt = async (last: number): Promise<MemFs> => {
    const fs = newFs()
    await writeSegment(fs, last - 1, 0, ['a', 'b'])
    fs.putFile(segmentPath(DIR, last), new Uint8Array(10).fill(0x5a))
    return fs
  }

  it('after a dropped segment 2^32-2 the writer starts 2^32-1, the last number there is', async () => {
    const got = await openStats(await endingAt(MAX_SEGMENT_NUMBER - 1))
    expect(got.segment).toBe(MAX_SEGMENT_NUMBER)
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
  })

  it('after a dropped segment 2^32-1 no number is left: KV_CORRUPT naming it, not a RangeError', async () => {
    const err = await refusal(await endingAt(MAX_SEGMENT_NUMBER))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toBe(`${segmentPath(DIR, MAX_SEGMENT_NUMBER)} at offset 0: no segment number left after this one (last good seq 2)`)
  })
})

describe('damage in a segment that is not the last', () => {
  it('a header torn short before the newest segment is corruption there; point-in-time moves it and the rest aside', async () => {
    const fs = newFs()
    await writeSegment(fs, 1, 0, ['a', 'b'])
    fs.putFile(segmentPath(DIR, 2), new Uint8Array(10).fill(0x5a))
    await writeSegment(fs, 3, 2, ['c'])
    const err = await refusal(fs)
    expect(err.message).toBe(`${segmentPath(DIR, 2)} at offset 0: segment header fails its checksum (last good seq 2)`)
    expect('cause' in err).toBe(false)
    const got = await openStats(fs, 'point-in-time')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.brokenFiles).toEqual(['wal-0000000002.log.broken', 'wal-0000000003.log.broken'])
    expect(got.stats.truncatedTailBytes).toBe(0)
    expect(got.segment).toBe(4)
    expect(got.stats.lastSeq).toBe(2)
  })

  it('a torn end of a closed segment is corruption at its valid end; point-in-time cuts it there and appends to it', async () => {
    const fs = newFs()
    const end = await (async () => {
      await writeSegment(fs, 1, 0, ['a', 'b'])
      const bytes = fs.readFile(segmentPath(DIR, 1))
      fs.putFile(segmentPath(DIR, 1), Buffer.concat([bytes, TAIL]))
      return bytes.length
    })()
    await writeSegment(fs, 2, 2, ['c'])
    const err = await refusal(fs)
    expect(err.message).toBe(`${segmentPath(DIR, 1)} at offset ${end}: damaged end of a closed segment (last good seq 2)`)
    const got = await openStats(fs, 'point-in-time')
    expect(Object.fromEntries(got.state)).toEqual({ a: 0, b: 1 })
    expect(got.stats.corruption).toEqual({ file: segmentPath(DIR, 1), offset: end, reason: 'damaged end of a closed segment', lastGoodSeq: 2 })
    expect(got.stats.brokenFiles).toEqual([`wal-0000000001.log.broken-${end}`, 'wal-0000000002.log.broken'])
    expect(got.stats.truncatedTailBytes).toBe(TAIL.length)
    expect(got.segment).toBe(1)
    expect(got.stats.lastSeq).toBe(2)
  })
})
