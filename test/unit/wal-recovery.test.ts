// recoverDirectory against a small model of the store's state: streaming of huge segments,
// automatic rotation, records whose ops do not apply, and the salvage/append-position rules.
import { basename } from 'node:path'
import { describe, expect, it } from 'vitest'
import { type Op } from '../../src/codec/ops.js'
import { KvList } from '../../src/collections.js'
import { StoreError, isStoreError } from '../../src/errors.js'
import type { Fs, FsStat, OpenFlags } from '../../src/fs/fs.js'
import type { Memtable } from '../../src/memtable.js'
import type { RecoveryMode } from '../../src/options.js'
import { RECORD_OPS } from '../../src/codec/ops.js'
import { recoverDirectory, type Recovered, type RecoveryParams } from '../../src/recovery.js'
import { SnapshotCatalog } from '../../src/snapshot/catalog.js'
import { SEGMENT_HEADER_SIZE, crc32Range, encodeRecord, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { scanWal } from '../../src/wal/reader.js'
import { segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'
import { memDir, opsPayload } from '../helpers/wal-fixtures.js'

const DIR = '/db'
const SALT = 0x5eed5a17

/**
 * The store's state rules that matter here: values and lists, and a push onto a plain value
 * throws KV_CORRUPT from inside applyOps, as store.ts `#mutable` does.
 */
class Model {
  state = new Map<string, unknown>()

  params(fs: Fs, mode: RecoveryMode, extra: Partial<RecoveryParams> = {}): RecoveryParams {
    return {
      fs,
      dir: DIR,
      mode,
      sync: 'never',
      onProgress: () => {},
      loadSnapshot: (mt: Memtable) => {
        this.state = new Map()
        mt.forEach({}, (k, v) => void this.state.set(k, v instanceof KvList ? [...v] : v))
      },
      applyOps: (ops: Op[]) => {
        for (const op of ops) this.#apply(op)
      },
      ...extra,
    }
  }

  #apply(op: Op): void {
    switch (op.t) {
      case 'set':
        this.state.set(op.key, op.value)
        return
      case 'del':
        this.state.delete(op.key)
        return
      case 'push': {
        const cur = this.state.get(op.key)
        if (cur !== undefined && !Array.isArray(cur)) {
          throw new StoreError('KV_CORRUPT', `WAL op for ${JSON.stringify(op.key)} does not match the stored type`)
        }
        this.state.set(op.key, [...((cur as unknown[] | undefined) ?? []), ...op.values])
        return
      }
      default:
        throw new Error(`the model does not do ${op.t}`)
    }
  }

  snapshot(): Record<string, unknown> {
    return Object.fromEntries([...this.state].sort(([a], [b]) => (a < b ? -1 : 1)))
  }
}

const newFs = (): MemFs => memDir(DIR)

const payload = opsPayload

const set = (key: string, value: unknown): Op => ({ t: 'set', key, value, expiresAt: 0 })

/** Write `batches` as records 1.. of a WAL starting at segment 1. */
async function writeWal(fs: Fs, batches: Op[][], maxSegmentBytes?: number): Promise<void> {
  const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => SALT, ...(maxSegmentBytes ? { maxSegmentBytes } : {}) })
  for (let i = 0; i < batches.length; i++) await w.append(i + 1, RECORD_OPS, payload(batches[i] as Op[]))
  await w.close()
}

/** Record offsets in segment 1, in seq order. */
function offsetsOf(fs: MemFs): number[] {
  const out: number[] = []
  scanWal(fs, DIR, (r) => out.push(r.offset), { mode: 'salvage' })
  return out
}

async function recover(fs: Fs, mode: RecoveryMode, extra?: Partial<RecoveryParams>): Promise<{ rec: Recovered; state: Record<string, unknown> }> {
  const model = new Model()
  const rec = await recoverDirectory(model.params(fs, mode, extra))
  await rec.writer.close()
  return { rec, state: model.snapshot() }
}

async function failure(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p
  } catch (err) {
    if (err instanceof StoreError) return err
    throw new Error(`not a StoreError: ${String(err)}`, { cause: err })
  }
  throw new Error('resolved')
}

/**
 * An Fs serving one synthetic segment of `records` identical-size SET records at `path`, too big
 * for `readFile` (which throws like Node's does above 2 GiB); everything else is a MemFs.
 */
class HugeSegmentFs implements Fs {
  readonly mem = newFs()
  readonly size: number
  /** Largest `length` any read of the huge file asked for. */
  maxRead = 0
  readonly #template: Buffer
  readonly #frame: number
  readonly #records: number
  readonly #header = encodeSegmentHeader(1, SALT, 0)
  readonly #fds = new Set<number>()
  #nextFd = 100_000
  #hdrFor = -1
  readonly #hdr = Buffer.alloc(24)

  constructor(
    readonly path: string,
    valueBytes: number,
    minSize: number,
  ) {
    const p = payload([set('k', new Uint8Array(valueBytes).fill(7))])
    this.#frame = recordFrameSize(p.length)
    this.#template = Buffer.alloc(this.#frame)
    encodeRecord(this.#template, 0, SALT, 1, RECORD_OPS, p)
    this.#records = Math.ceil((minSize - SEGMENT_HEADER_SIZE) / this.#frame)
    this.size = SEGMENT_HEADER_SIZE + this.#records * this.#frame
    this.mem.putFile(path, new Uint8Array(0)) // so readdir lists it
  }

  get records(): number {
    return this.#records
  }

  get frame(): number {
    return this.#frame
  }

  /** Record `i`'s header: the template's with seq `i + 1` and its header CRC redone. */
  #headerOf(i: number): Buffer {
    if (this.#hdrFor !== i) {
      this.#template.copy(this.#hdr, 0, 0, 24)
      this.#hdr.writeUInt32LE((i + 1) >>> 0, 8)
      this.#hdr.writeUInt32LE(0, 12)
      this.#hdr.writeUInt32LE(crc32Range(this.#hdr, 4, 24, SALT), 0)
      this.#hdrFor = i
    }
    return this.#hdr
  }

  #fill(buf: Uint8Array, off: number, n: number, pos: number): void {
    let p = pos
    let o = off
    const end = pos + n
    while (p < end) {
      if (p < SEGMENT_HEADER_SIZE) {
        const k = Math.min(SEGMENT_HEADER_SIZE, end) - p
        buf.set(this.#header.subarray(p, p + k), o)
        p += k
        o += k
        continue
      }
      const i = Math.floor((p - SEGMENT_HEADER_SIZE) / this.#frame)
      let within = (p - SEGMENT_HEADER_SIZE) % this.#frame
      let take = Math.min(this.#frame - within, end - p)
      p += take
      if (within < 24) {
        const k = Math.min(24 - within, take)
        buf.set(this.#headerOf(i).subarray(within, within + k), o)
        o += k
        within += k
        take -= k
      }
      if (take > 0) {
        buf.set(this.#template.subarray(within, within + take), o)
        o += take
      }
    }
  }

  open(path: string, flags: OpenFlags): number {
    if (path !== this.path) return this.mem.open(path, flags)
    const fd = this.#nextFd++
    this.#fds.add(fd)
    return fd
  }
  close(fd: number): void {
    if (!this.#fds.delete(fd)) this.mem.close(fd)
  }
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number | null): number {
    if (this.#fds.has(fd)) throw new Error('the huge segment is read-only in this test')
    return this.mem.write(fd, buf, offset, length, position)
  }
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    if (!this.#fds.has(fd)) return this.mem.read(fd, buf, offset, length, position)
    this.maxRead = Math.max(this.maxRead, length)
    const n = Math.max(0, Math.min(length, this.size - position))
    this.#fill(buf, offset, n, position)
    return n
  }
  datasync(fd: number): Promise<void> {
    return this.#fds.has(fd) ? Promise.resolve() : this.mem.datasync(fd)
  }
  fsyncDir(dir: string): Promise<void> {
    return this.mem.fsyncDir(dir)
  }
  ftruncate(fd: number, length: number): void {
    if (!this.#fds.has(fd)) return this.mem.ftruncate(fd, length)
    if (length !== this.size) throw new Error(`unexpected truncate of the huge segment to ${length}`)
  }
  fstat(fd: number): FsStat {
    return this.#fds.has(fd) ? { size: this.size, isDirectory: false, mtimeMs: 0 } : this.mem.fstat(fd)
  }
  stat(path: string): FsStat | undefined {
    return path === this.path ? { size: this.size, isDirectory: false, mtimeMs: 0 } : this.mem.stat(path)
  }
  rename(from: string, to: string): void {
    this.mem.rename(from, to)
  }
  unlink(path: string): void {
    this.mem.unlink(path)
  }
  readdir(dir: string): string[] {
    return this.mem.readdir(dir)
  }
  mkdir(dir: string): void {
    this.mem.mkdir(dir)
  }
  rmdir(dir: string): void {
    this.mem.rmdir(dir)
  }
  readFile(path: string): Buffer {
    if (path === this.path) {
      throw Object.assign(new RangeError(`File size (${this.size}) is greater than 2 GiB`), { code: 'ERR_FS_FILE_TOO_LARGE' })
    }
    return this.mem.readFile(path)
  }
}

describe('segments of any size (streamed in bounded chunks)', () => {
  it('opens a store whose only segment is over 2 GiB, reading it in bounded chunks', async () => {
    const fs = new HugeSegmentFs(segmentPath(DIR, 1), 8 * 1024 * 1024, 2 ** 31 + 2 ** 20)
    expect(fs.size).toBeGreaterThan(2 ** 31)
    const model = new Model()
    const rec = await recoverDirectory(model.params(fs, 'strict'))
    expect(rec.stats).toMatchObject({ records: fs.records, lastSeq: fs.records, bytes: fs.size, corruption: undefined, truncatedTailBytes: 0 })
    expect(rec.writer.segment).toBe(1)
    expect((model.state.get('k') as Uint8Array).length).toBe(8 * 1024 * 1024)
    // Never more than one record frame at a time.
    expect(fs.maxRead).toBeLessThanOrEqual(fs.frame)
    await rec.writer.close()
  }, 60_000)

  it('reads small chunks across record boundaries exactly like whole reads', async () => {
    const fs = newFs()
    await writeWal(fs, Array.from({ length: 40 }, (_, i) => [set(`k${i}`, 'v'.repeat(i * 7))]))
    const whole = await recover(fs, 'strict')
    for (const chunk of [1, 7, 24, 100]) {
      const got = await recover(fs, 'strict', { readChunkBytes: chunk })
      expect(got.state).toEqual(whole.state)
      expect(got.rec.stats.records).toBe(40)
    }
  })
})

describe('automatic segment rotation', () => {
  it('replays auto-rotated segments in order and keeps rotating after reopening', async () => {
    const fs = newFs()
    const first = new Model()
    const rec = await recoverDirectory(first.params(fs, 'strict', { maxSegmentBytes: 200 }))
    for (let s = 1; s <= 30; s++) await rec.writer.append(s, RECORD_OPS, payload([set(`k${s % 7}`, s)]))
    await rec.writer.close()
    const segmentsBefore = fs.readdir(DIR).length
    expect(segmentsBefore).toBeGreaterThan(5)

    const model = new Model()
    const again = await recoverDirectory(model.params(fs, 'strict', { maxSegmentBytes: 200 }))
    expect(again.stats).toMatchObject({ records: 30, lastSeq: 30, corruption: undefined })
    // Last write wins: replay order is seq order across segments.
    const want: Record<string, number> = {}
    for (let s = 1; s <= 30; s++) want[`k${s % 7}`] = s
    expect(model.snapshot()).toEqual(Object.fromEntries(Object.entries(want).sort(([a], [b]) => (a < b ? -1 : 1))))
    for (let s = 31; s <= 40; s++) await again.writer.append(s, RECORD_OPS, payload([set('x', s)]))
    await again.writer.close()
    expect(fs.readdir(DIR).length).toBeGreaterThan(segmentsBefore)
    expect((await recover(fs, 'strict')).rec.stats.lastSeq).toBe(40)
  })

  it('opens after compaction deleted the segments below the one its rotate() started', async () => {
    // store.ts #compact: rotate(), snapshot seq S, delete every segment below rotate()'s number.
    const fs = newFs()
    const model = new Model()
    const rec = await recoverDirectory(model.params(fs, 'strict', { maxSegmentBytes: 150 }))
    const w = rec.writer
    for (let s = 1; s <= 10; s++) void w.append(s, RECORD_OPS, payload([set(`k${s}`, s)]))
    const S = w.lastSeq
    const rotated = w.rotate()
    for (let s = 11; s <= 20; s++) void w.append(s, RECORD_OPS, payload([set(`k${s}`, s)]))
    const target = await rotated
    const snaps = new SnapshotCatalog(fs, DIR)
    const entries = Array.from({ length: S }, (_, i) => ({ key: `k${i + 1}`, value: i + 1, expiresAt: 0, version: i + 1 })).sort((a, b) =>
      a.key < b.key ? -1 : 1,
    )
    await snaps.write('binary', { seq: S, timestamp: 0, count: entries.length }, entries)
    await w.flush()
    for (const name of fs.readdir(DIR)) {
      const m = /^wal-(\d+)\.log$/.exec(name)
      if (m !== null && Number(m[1]) < target) fs.unlink(`${DIR}/${name}`)
    }
    await w.close()
    const got = await recover(fs, 'strict')
    expect(got.rec.stats).toMatchObject({ snapshotSeq: S, lastSeq: 20, corruption: undefined })
    expect(Object.keys(got.state).length).toBe(20)
  })

  it('skips a damaged segment that the snapshot and the next segment make redundant', async () => {
    // A compaction that crashed after its snapshot but before deleting the old segment.
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)], [set('b', 2)]])
    const w = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 2, validEnd: fs.readFile(segmentPath(DIR, 1)).length }, {
      sync: 'never',
    })
    await w.rotate()
    await w.append(3, RECORD_OPS, payload([set('c', 3)]))
    await w.close()
    await new SnapshotCatalog(fs, DIR).write('binary', { seq: 2, timestamp: 0, count: 2 }, [
      { key: 'a', value: 1, expiresAt: 0, version: 1 },
      { key: 'b', value: 2, expiresAt: 0, version: 2 },
    ])
    const bytes = fs.readFile(segmentPath(DIR, 1))
    bytes[40] = (bytes[40] as number) ^ 0xff
    fs.putFile(segmentPath(DIR, 1), bytes)
    const got = await recover(fs, 'strict')
    expect(got.state).toEqual({ a: 1, b: 2, c: 3 })
    expect(got.rec.stats.corruption).toBeUndefined()
  })
})

describe('records whose ops do not apply to the state', () => {
  // Record 3 is checksummed and decodes, but pushes onto a key holding a plain value, after
  // first setting c: a partial apply would leave c behind.
  const batches: Op[][] = [[set('a', 'x')], [set('b', 'y')], [set('c', 1), { t: 'push', key: 'a', left: false, values: ['z'] }], [set('d', 4)]]

  it('strict: KV_CORRUPT naming the file, the offset and the last good seq, with the cause', async () => {
    const fs = newFs()
    await writeWal(fs, batches)
    const offset = offsetsOf(fs)[2] as number
    const err = await failure(recoverDirectory(new Model().params(fs, 'strict')))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toContain(segmentPath(DIR, 1))
    expect(err.message).toContain(`offset ${offset}`)
    expect(err.message).toContain('last good seq 2')
    expect(isStoreError(err.cause, 'KV_CORRUPT')).toBe(true)
  })

  it('point-in-time: stops cleanly before it (no part of its batch), moves the rest aside, and is idempotent', async () => {
    const fs = newFs()
    await writeWal(fs, batches)
    const offset = offsetsOf(fs)[2] as number
    const got = await recover(fs, 'point-in-time')
    expect(got.state).toEqual({ a: 'x', b: 'y' })
    expect(got.rec.stats.lastSeq).toBe(2)
    expect(got.rec.stats.corruption).toMatchObject({ file: segmentPath(DIR, 1), offset, lastGoodSeq: 2 })
    expect(got.rec.stats.brokenFiles).toEqual([`${basename(segmentPath(DIR, 1))}.broken-${offset}`])
    expect(fs.readFile(segmentPath(DIR, 1)).length).toBe(offset)
    // The repaired directory opens strictly, to the same state, and takes appends at seq 3.
    const strict = new Model()
    const again = await recoverDirectory(strict.params(fs, 'strict'))
    expect(strict.snapshot()).toEqual({ a: 'x', b: 'y' })
    await again.writer.append(3, RECORD_OPS, payload([set('e', 5)]))
    await again.writer.close()
    expect((await recover(fs, 'strict')).state).toEqual({ a: 'x', b: 'y', e: 5 })
  })

  it('point-in-time: restarts from the snapshot when there is one', async () => {
    const fs = newFs()
    await writeWal(fs, batches)
    await new SnapshotCatalog(fs, DIR).write('binary', { seq: 1, timestamp: 0, count: 1 }, [{ key: 'a', value: 'x', expiresAt: 0, version: 1 }])
    const got = await recover(fs, 'point-in-time')
    expect(got.state).toEqual({ a: 'x', b: 'y' })
    expect(got.rec.stats).toMatchObject({ snapshotSeq: 1, records: 1, lastSeq: 2 })
  })

  it('salvage: skips just that record and keeps everything after it', async () => {
    const fs = newFs()
    await writeWal(fs, batches)
    const got = await recover(fs, 'salvage')
    expect(got.state).toEqual({ a: 'x', b: 'y', d: 4 })
    expect(got.rec.stats).toMatchObject({ records: 3, lastSeq: 4, corruption: { offset: offsetsOf(fs)[2], lastGoodSeq: 2 } })
  })

  it('salvage: several bad records each get skipped', async () => {
    const fs = newFs()
    const bad = (k: string): Op[] => [set(`${k}-partial`, 0), { t: 'push', key: 'a', left: true, values: [k] }]
    await writeWal(fs, [[set('a', 'x')], bad('p'), [set('b', 1)], bad('q'), bad('r'), [set('c', 2)]])
    const got = await recover(fs, 'salvage')
    expect(got.state).toEqual({ a: 'x', b: 1, c: 2 })
    expect(got.rec.stats.lastSeq).toBe(6)
  })

  it('turns a non-StoreError thrown by applyOps into KV_CORRUPT with file and offset', async () => {
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)], [set('boom', 2)]])
    const applyOps = (ops: Op[]): void => {
      if (ops.some((o) => o.t === 'set' && o.key === 'boom')) throw new TypeError('bug in apply')
    }
    const err = await failure(recoverDirectory(new Model().params(fs, 'strict', { applyOps })))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toMatch(/offset \d+: record 2 does not apply.*bug in apply.*last good seq 1/)
    expect(err.cause).toBeInstanceOf(TypeError)
  })
})

describe('salvage and the append position', () => {
  it('salvage skips an undecodable record in the middle of a segment and keeps the rest of it', async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never' })
    await w.append(1, RECORD_OPS, payload([set('a', 1)]))
    await w.append(2, RECORD_OPS, new Uint8Array([1, 0, 0, 0, 99])) // unknown opcode, checksummed
    await w.append(3, RECORD_OPS, payload([set('b', 2)]))
    await w.close()
    const got = await recover(fs, 'salvage')
    expect(got.state).toEqual({ a: 1, b: 2 })
    expect(got.rec.stats.corruption?.reason).toMatch(/undecodable/)
  })

  it('salvage never replays an older seq again (a stale copy of a segment)', async () => {
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)], [set('a', 2)]])
    const w = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 2, validEnd: fs.readFile(segmentPath(DIR, 1)).length }, {
      sync: 'never',
      newSalt: () => SALT,
    })
    await w.rotate()
    await w.append(3, RECORD_OPS, payload([set('a', 3)]))
    await w.close()
    // A stale copy of segment 1 under number 3 (its header says 1).
    fs.putFile(segmentPath(DIR, 3), fs.readFile(segmentPath(DIR, 1)))
    const got = await recover(fs, 'salvage')
    expect(got.state).toEqual({ a: 3 })
    expect(got.rec.stats.lastSeq).toBe(3)
  })

  it('after salvage skipped the last record of the tail segment, new appends do not reuse its seq', async () => {
    const fs = newFs()
    const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never' })
    await w.append(1, RECORD_OPS, payload([set('a', 1)]))
    await w.append(2, RECORD_OPS, new Uint8Array([1, 0, 0, 0, 99]))
    await w.close()
    const model = new Model()
    const rec = await recoverDirectory(model.params(fs, 'salvage'))
    expect(rec.lastSeq).toBe(2)
    await rec.writer.append(3, RECORD_OPS, payload([set('b', 3)]))
    await rec.writer.append(4, RECORD_OPS, payload([set('c', 4)]))
    await rec.writer.close()
    const again = await recover(fs, 'salvage')
    expect(again.state).toEqual({ a: 1, b: 3, c: 4 })
  })

  it('appends to a new segment when the tail segment chain does not end at the replayed seq', async () => {
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)], [set('a', 2)], [set('a', 3)]])
    // A tail segment whose header starts at seq 1 although seq 3 was replayed (tampering or a bug).
    fs.putFile(segmentPath(DIR, 2), encodeSegmentHeader(2, SALT, 1))
    const model = new Model()
    const rec = await recoverDirectory(model.params(fs, 'strict'))
    expect(rec.writer.segment).toBe(3)
    await rec.writer.append(4, RECORD_OPS, payload([set('a', 4)]))
    await rec.writer.append(5, RECORD_OPS, payload([set('a', 5)]))
    await rec.writer.close()
    const again = await recover(fs, 'strict')
    expect(again.state).toEqual({ a: 5 })
    expect(again.rec.stats.lastSeq).toBe(5)
  })
})

describe('errors', () => {
  it('reports file-system errors as KV_IO with the cause, never raw', async () => {
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)]])
    // A torn creation of segment 2 that recovery must delete: the delete fails.
    fs.putFile(segmentPath(DIR, 2), encodeSegmentHeader(2, SALT, 1).subarray(0, 20))
    const failing = new Proxy(fs, {
      get(target, prop, receiver) {
        if (prop === 'unlink') {
          return () => {
            throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES', syscall: 'unlink' })
          }
        }
        const v = Reflect.get(target, prop, receiver) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const err = await failure(recoverDirectory(new Model().params(failing, 'strict')))
    expect(err.code).toBe('KV_IO')
    expect((err.cause as { code?: string }).code).toBe('EACCES')
  })

  it('treats a snapshot whose installation throws as damaged and falls back', async () => {
    const fs = newFs()
    await writeWal(fs, [[set('a', 1)], [set('b', 2)]])
    await new SnapshotCatalog(fs, DIR).write('binary', { seq: 1, timestamp: 0, count: 1 }, [{ key: 'a', value: 1, expiresAt: 0, version: 1 }])
    const model = new Model()
    const params = model.params(fs, 'strict')
    let calls = 0
    const rec = await recoverDirectory({
      ...params,
      loadSnapshot: (mt) => {
        calls++
        if (mt.size > 0) throw new RangeError('cannot install')
        params.loadSnapshot(mt)
      },
    })
    await rec.writer.close()
    // Skipped, state reset to empty, and the WAL (from seq 0) replays everything.
    expect(calls).toBe(2)
    expect(rec.stats.skippedSnapshots).toEqual(['snap-0000000000000001.kvs'])
    expect(model.snapshot()).toEqual({ a: 1, b: 2 })
  })
})
