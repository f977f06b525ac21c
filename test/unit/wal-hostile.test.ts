// Hostile directory contents: checksummed records with values no store writes, segment files
// under the wrong name, lengths that would size huge allocations, and planted files where
// recovery saves the bytes it cuts.
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/codec/bytes.js'
import { OpCode, type Op } from '../../src/codec/ops.js'
import { StoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import type { RecoveryMode } from '../../src/options.js'
import { RECORD_OPS } from '../../src/codec/ops.js'
import { recoverDirectory, type Recovered } from '../../src/recovery.js'
import { Store } from '../../src/store.js'
import {
  DEFECT_TOO_LARGE,
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  checkRecordHeader,
  crc32Range,
  encodeRecord,
  encodeSegmentHeader,
  recordFrameSize,
} from '../../src/wal/format.js'
import { READ_CHUNK_BYTES, readSegment, scanSegment } from '../../src/wal/reader.js'
import { segmentFileName, segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'
import { memDir, opsPayload } from '../helpers/wal-fixtures.js'
import { tmpDir } from '../helpers/tmp.js'

const DIR = '/db'
const SALT = 0x0badf00d

const newFs = (): MemFs => memDir(DIR)


/** A DEL payload written by hand, so it can hold keys the encoder's callers never pass. */
function delPayload(key: string): Uint8Array {
  const w = new ByteWriter()
  w.u32(1)
  w.u8(OpCode.DEL)
  w.string(key)
  return new Uint8Array(w.finish())
}

/** Write `payloads` as records 1.. of segment 1 in `dir`. */
async function writeRecords(fs: Fs, dir: string, payloads: Uint8Array[]): Promise<void> {
  const w = await WalWriter.create(fs, dir, 1, 0, { sync: 'never', newSalt: () => SALT })
  for (let i = 0; i < payloads.length; i++) await w.append(i + 1, RECORD_OPS, payloads[i] as Uint8Array)
  await w.close()
}

/** Recover `dir` with a state that only records which keys were set or deleted. */
async function recover(fs: Fs, dir: string, mode: RecoveryMode): Promise<{ rec: Recovered; keys: string[] }> {
  const keys = new Set<string>()
  const rec = await recoverDirectory({
    fs,
    dir,
    mode,
    sync: 'never',
    onProgress: () => {},
    loadSnapshot: () => keys.clear(),
    applyOps: (ops) => {
      for (const op of ops) {
        if (op.t === 'set') keys.add(op.key)
        else if (op.t === 'del') keys.delete(op.key)
      }
    },
  })
  await rec.writer.close()
  return { rec, keys: [...keys].sort() }
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

const set = (key: string, value: unknown = 1): Op => ({ t: 'set', key, value, expiresAt: 0 })

describe('keys from disk', () => {
  it('refuses an empty key in a checksummed record: strict fails naming file and offset; point-in-time stops before it', async () => {
    const fs = newFs()
    await writeRecords(fs, DIR, [opsPayload([set('a')]), delPayload(''), opsPayload([set('b')])])
    const err = await failure(recover(fs, DIR, 'strict'))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toMatch(new RegExp(`${segmentPath(DIR, 1)} at offset \\d+: undecodable record: empty key .*last good seq 1`))
    const pit = await recover(fs, DIR, 'point-in-time')
    expect(pit.keys).toEqual(['a'])
    expect(pit.rec.stats.lastSeq).toBe(1)
  })

  it('salvage skips a record with an empty key and keeps the later ones', async () => {
    const fs = newFs()
    await writeRecords(fs, DIR, [opsPayload([set('a')]), opsPayload([set('')]), opsPayload([set('b')])])
    const got = await recover(fs, DIR, 'salvage')
    expect(got.keys).toEqual(['a', 'b'])
  })

  it('a store never ends up holding a key it cannot read or delete', async () => {
    // With the real Store: before the fix "" replayed into the memtable and stuck there.
    const dir = tmpDir()
    await writeRecords(nodeFs, dir, [opsPayload([set('a', 'x')]), opsPayload([{ t: 'set', key: '', value: 'ghost', expiresAt: 0 }])])
    const err = await failure(Store.open({ dir }))
    expect(err.code).toBe('KV_CORRUPT')
    const s = await Store.open<string>({ dir, recovery: 'point-in-time' })
    expect(await s.keys()).toEqual(['a'])
    await s.close()
  })
})

describe('segment files under the wrong name', () => {
  async function twoSegments(fs: MemFs, misname: number): Promise<void> {
    await writeRecords(fs, DIR, [opsPayload([set('a')]), opsPayload([set('b')])])
    const end = fs.readFile(segmentPath(DIR, 1)).length
    const w = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 2, validEnd: end }, { sync: 'never', newSalt: () => SALT })
    await w.rotate()
    await w.append(3, RECORD_OPS, opsPayload([set('c')]))
    await w.close()
    // Re-head segment 2 as segment `misname` (a valid header CRC), keeping salt and base.
    const bytes = fs.readFile(segmentPath(DIR, 2))
    encodeSegmentHeader(misname, SALT, 2).copy(bytes)
    fs.putFile(segmentPath(DIR, 2), bytes)
  }

  it('strict refuses a segment whose header names another segment, naming the file and offset 8', async () => {
    const fs = newFs()
    await twoSegments(fs, 7)
    const err = await failure(recover(fs, DIR, 'strict'))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toContain(`${segmentPath(DIR, 2)} at offset 8`)
    expect(err.message).toMatch(/names segment 7/)
  })

  it('point-in-time keeps the segments before it and moves it aside; salvage reads it', async () => {
    const fs = newFs()
    await twoSegments(fs, 7)
    const pit = await recover(fs, DIR, 'point-in-time')
    expect(pit.keys).toEqual(['a', 'b'])
    expect(pit.rec.stats.brokenFiles).toEqual([`${segmentFileName(2)}.broken`])
    expect((await recover(fs, DIR, 'strict')).keys).toEqual(['a', 'b'])

    const fs2 = newFs()
    await twoSegments(fs2, 7)
    expect((await recover(fs2, DIR, 'salvage')).keys).toEqual(['a', 'b', 'c'])
  })

  it('scanSegment reports the mismatch when told the file number', () => {
    const bytes = Buffer.alloc(SEGMENT_HEADER_SIZE + recordFrameSize(1))
    encodeSegmentHeader(9, SALT, 0).copy(bytes)
    encodeRecord(bytes, SEGMENT_HEADER_SIZE, SALT, 1, 1, new Uint8Array([42]))
    expect(scanSegment(bytes, () => {}).header?.segment).toBe(9)
    let visited = 0
    const s = scanSegment(bytes, () => visited++, { segment: 3 })
    expect(s).toMatchObject({ header: undefined, corruption: { offset: 8 } })
    expect(visited).toBe(0)
    expect(scanSegment(bytes, () => visited++, { segment: 3, mode: 'salvage' }).records).toBe(1)
  })
})

/** A MemFs that records the largest `length` passed to `read`. */
class CountingFs extends MemFs {
  maxRead = 0
  override read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.maxRead = Math.max(this.maxRead, length)
    return super.read(fd, buf, offset, length, position)
  }
  override readFile(path: string): Buffer {
    if (path.endsWith('.log')) throw new Error(`readFile(${path}): segments must be streamed`)
    return super.readFile(path)
  }
}

/** A record header with a valid header CRC declaring `len` payload bytes (payload not written). */
function forgedHeader(len: number, seq = 1, salt = SALT): Buffer {
  const h = Buffer.alloc(RECORD_HEADER_SIZE)
  h.writeUInt32LE(len >>> 0, 4)
  h.writeUInt32LE(seq, 8)
  h[16] = RECORD_OPS
  h.writeUInt32LE(crc32Range(h, 4, RECORD_HEADER_SIZE, salt), 0)
  return h
}

describe('declared lengths never size an allocation', () => {
  it('checkRecordHeader refuses a verified length above MAX_PAYLOAD_BYTES', () => {
    for (const len of [MAX_PAYLOAD_BYTES + 1, 2 ** 31, 0xffff_ffff]) {
      const h = forgedHeader(len)
      expect(checkRecordHeader(h, new DataView(h.buffer, h.byteOffset, h.length), 0, SALT)).toBe(DEFECT_TOO_LARGE)
    }
    const ok = forgedHeader(MAX_PAYLOAD_BYTES)
    expect(checkRecordHeader(ok, new DataView(ok.buffer, ok.byteOffset, ok.length), 0, SALT)).toBe(MAX_PAYLOAD_BYTES)
  })

  it('recordFrameSize is exact for every u32 length', () => {
    expect(recordFrameSize(0xffff_ffff)).toBe(0xffff_ffff + 25)
    expect(recordFrameSize(2 ** 31 - 1)).toBe(2 ** 31 + 24)
  })

  it('a 4 GiB declared length in a small file reads no more than the file, and is cut as a torn tail', async () => {
    const fs = new CountingFs()
    fs.mkdir(DIR)
    const del = delPayload('a')
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE + recordFrameSize(del.length))
    encodeSegmentHeader(1, SALT, 0).copy(head)
    encodeRecord(head, SEGMENT_HEADER_SIZE, SALT, 1, RECORD_OPS, del)
    const bytes = Buffer.concat([head, forgedHeader(0xffff_fff0, 2), Buffer.alloc(4096, 0xab)])
    fs.putFile(segmentPath(DIR, 1), bytes)
    const got = await recover(fs, DIR, 'strict')
    expect(got.rec.stats).toMatchObject({ lastSeq: 1, truncatedTailBytes: RECORD_HEADER_SIZE + 4096, corruption: undefined })
    expect(fs.maxRead).toBeLessThanOrEqual(bytes.length)
  })

  it('reads of a segment stay within one chunk for damaged, torn and zero-filled files', () => {
    const fs = new CountingFs()
    fs.mkdir(DIR)
    const path = segmentPath(DIR, 1)
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE + recordFrameSize(5))
    encodeSegmentHeader(1, SALT, 0).copy(head)
    encodeRecord(head, SEGMENT_HEADER_SIZE, SALT, 1, 1, Buffer.from('hello'))
    const size = 3 * READ_CHUNK_BYTES + 100
    for (const tail of [
      Buffer.concat([forgedHeader(0xffff_fff0, 2), Buffer.alloc(size, 0x5a)]), // huge declared length, garbage
      Buffer.concat([forgedHeader(size * 2, 2), Buffer.alloc(size)]), // verified length past EOF
      Buffer.alloc(size), // zero tail
    ]) {
      fs.putFile(path, Buffer.concat([head, tail]))
      fs.maxRead = 0
      let n = 0
      const scan = readSegment(fs, path, () => n++)
      expect(n).toBe(1)
      expect(scan.validEnd).toBe(head.length)
      expect(fs.maxRead).toBeLessThanOrEqual(READ_CHUNK_BYTES)
    }
  })
})

describe('saving cut bytes never overwrites anything', () => {
  async function tornDir(dir: string): Promise<{ validEnd: number; tail: Buffer }> {
    await writeRecords(nodeFs, dir, [opsPayload([set('a')]), opsPayload([set('b')])])
    const wal = join(dir, segmentFileName(1))
    const validEnd = readFileSync(wal).length
    const tail = Buffer.from('torn append bytes')
    writeFileSync(wal, Buffer.concat([readFileSync(wal), tail]))
    return { validEnd, tail }
  }

  it('does not follow a planted symlink at the copy name (the target is untouched)', async () => {
    const dir = tmpDir()
    const outside = tmpDir()
    const victim = join(outside, 'precious')
    writeFileSync(victim, 'do not overwrite')
    const { validEnd, tail } = await tornDir(dir)
    const planted = join(dir, `${segmentFileName(1)}.broken-${validEnd}`)
    symlinkSync(victim, planted)
    const got = await recover(nodeFs, dir, 'strict')
    expect(got.keys).toEqual(['a', 'b'])
    expect(readFileSync(victim, 'utf8')).toBe('do not overwrite')
    expect(got.rec.stats.brokenFiles).toEqual([`${segmentFileName(1)}.broken-${validEnd}.1`])
    expect(readFileSync(join(dir, got.rec.stats.brokenFiles[0] as string)).equals(tail)).toBe(true)
  })

  it('keeps an earlier copy of the same name and a dangling symlink alike', async () => {
    const dir = tmpDir()
    const { validEnd } = await tornDir(dir)
    const name = `${segmentFileName(1)}.broken-${validEnd}`
    writeFileSync(join(dir, name), 'an earlier copy')
    symlinkSync(join(dir, 'nowhere', 'x'), join(dir, `${name}.1`))
    mkdirSync(join(dir, `${name}.2`))
    const got = await recover(nodeFs, dir, 'strict')
    expect(got.rec.stats.brokenFiles).toEqual([`${name}.3`])
    expect(readFileSync(join(dir, name), 'utf8')).toBe('an earlier copy')
  })

  it('never replaces an earlier moved-aside segment in point-in-time recovery', async () => {
    const fs = newFs()
    await writeRecords(fs, DIR, [opsPayload([set('a')])])
    const w = WalWriter.openForAppend(fs, DIR, 1, { salt: SALT, baseSeq: 0, lastSeq: 1, validEnd: fs.readFile(segmentPath(DIR, 1)).length }, { sync: 'never' })
    await w.rotate()
    await w.append(2, RECORD_OPS, opsPayload([set('b')]))
    await w.close()
    // Damage segment 1 mid-file (a second record after the damage makes it corruption, not a tail).
    const bytes = fs.readFile(segmentPath(DIR, 1))
    const extra = Buffer.alloc(recordFrameSize(3))
    encodeRecord(extra, 0, SALT, 2, 1, Buffer.from('xyz'))
    fs.putFile(segmentPath(DIR, 1), Buffer.concat([bytes.subarray(0, SEGMENT_HEADER_SIZE), Buffer.alloc(8, 0xee), bytes.subarray(SEGMENT_HEADER_SIZE + 8), extra]))
    fs.putFile(`${segmentPath(DIR, 2)}.broken`, Buffer.from('from an earlier recovery'))
    const got = await recover(fs, DIR, 'point-in-time')
    expect(got.rec.stats.brokenFiles).toContain(`${segmentFileName(2)}.broken.1`)
    expect(fs.readFile(`${segmentPath(DIR, 2)}.broken`).toString()).toBe('from an earlier recovery')
  })

  it('does not copy a tail that is all zeros (nothing to keep), but still cuts it', async () => {
    const fs = newFs()
    await writeRecords(fs, DIR, [opsPayload([set('a')])])
    const path = segmentPath(DIR, 1)
    const end = fs.readFile(path).length
    fs.putFile(path, Buffer.concat([fs.readFile(path), Buffer.alloc(10_000)]))
    const got = await recover(fs, DIR, 'strict')
    expect(got.rec.stats).toMatchObject({ truncatedTailBytes: 10_000, brokenFiles: [] })
    expect(fs.readFile(path).length).toBe(end)
    expect(fs.readdir(DIR)).toEqual([segmentFileName(1)])
  })
})

describe('the real Store on hostile records', () => {
  it('a push onto a plain value: strict names file and offset; point-in-time opens at the record before', async () => {
    const dir = tmpDir()
    await writeRecords(nodeFs, dir, [
      opsPayload([set('a', 'x')]),
      opsPayload([set('c', 'partial'), { t: 'push', key: 'a', left: false, values: ['z'] }]),
      opsPayload([set('d', 'later')]),
    ])
    const err = await failure(Store.open({ dir }))
    expect(err.code).toBe('KV_CORRUPT')
    expect(err.message).toMatch(new RegExp(`${segmentFileName(1)} at offset \\d+: .*last good seq 1`))
    const s = await Store.open<string>({ dir, recovery: 'point-in-time' })
    expect(await s.keys()).toEqual(['a'])
    expect(s.stats().recovery?.corruption).toMatchObject({ lastGoodSeq: 1 })
    await s.set('e', 'new')
    await s.close()
    const again = await Store.open<string>({ dir })
    expect(await again.keys()).toEqual(['a', 'e'])
    await again.close()
    expect(readdirSync(dir).some((f) => f.includes('.broken-'))).toBe(true)
  })

  it('salvage skips the record and keeps the later ones', async () => {
    const dir = tmpDir()
    await writeRecords(nodeFs, dir, [
      opsPayload([set('a', 'x')]),
      opsPayload([set('c', 'partial'), { t: 'push', key: 'a', left: false, values: ['z'] }]),
      opsPayload([set('d', 'later')]),
    ])
    const s = await Store.open<string>({ dir, recovery: 'salvage' })
    expect(await s.keys()).toEqual(['a', 'd'])
    await s.close()
  })
})
