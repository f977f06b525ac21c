import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KvHash, KvList } from '../../src/collections.js'
import { isStoreError } from '../../src/errors.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import type { SnapshotEntry, SnapshotReadResult } from '../../src/snapshot/format.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { bytesFs, canonEntries } from '../helpers/values.js'

let dir = ''
let n = 0
beforeAll(() => {
  dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-bin-'))
})
afterAll(() => {
  nfs.rmSync(dir, { recursive: true, force: true })
})

function file(bytes?: Uint8Array): string {
  const p = join(dir, `f${n++}.kvs`)
  if (bytes !== undefined) nfs.writeFileSync(p, bytes)
  return p
}

async function load(path: string): Promise<{ meta: SnapshotReadResult; entries: SnapshotEntry[] }> {
  const entries: SnapshotEntry[] = []
  const meta = await binarySnapshot.read(nodeFs, path, (e) => entries.push(e))
  return { meta, entries }
}

/** Read damaged bytes, expecting KV_CORRUPT and no entry handed over. */
async function expectCorrupt(bytes: Uint8Array): Promise<string> {
  let visited = 0
  try {
    await binarySnapshot.read(bytesFs(bytes), 'damaged.kvs', () => visited++)
  } catch (err) {
    expect(visited).toBe(0)
    if (!isStoreError(err, 'KV_CORRUPT')) throw err
    expect(err.message).toContain('damaged.kvs')
    return err.message
  }
  throw new Error(`read of damaged bytes succeeded (${bytes.length} bytes)`)
}

/** Seed v1 bytes, built field by field. */
function seedV1(littleEndian: boolean, entries: [string, string][], timestampSec = 1705314600): Uint8Array {
  const parts: Buffer[] = []
  const u32 = (v: number): void => {
    const b = Buffer.alloc(4)
    if (littleEndian) b.writeUInt32LE(v)
    else b.writeUInt32BE(v)
    parts.push(b)
  }
  const u64 = (v: number): void => {
    const b = Buffer.alloc(8)
    if (littleEndian) b.writeBigUInt64LE(BigInt(v))
    else b.writeBigUInt64BE(BigInt(v))
    parts.push(b)
  }
  u32(0x4b56db)
  u32(1)
  u64(timestampSec)
  u32(entries.length)
  for (const [k, v] of entries) {
    const kb = Buffer.from(k, 'utf8')
    const vb = Buffer.from(v, 'utf8')
    u32(kb.length)
    parts.push(kb)
    u32(vb.length)
    parts.push(vb)
  }
  return Buffer.concat(parts)
}

const sample: SnapshotEntry[] = [
  { key: 'a', value: 'x', expiresAt: 0, version: 1 },
  { key: 'b', value: -0, expiresAt: 1_700_000_000_000, version: 2 },
  { key: 'c', value: new KvList(['p', 1, new Uint8Array([5])]), expiresAt: 0, version: 3 },
  { key: 'd', value: new KvHash([['__proto__', true]]), expiresAt: 0, version: 4 },
  { key: 'e', value: Object.freeze({ j: [1, 'two'] }), expiresAt: 0, version: 5 },
]
const sampleMeta = { seq: 42, timestamp: 1705314600123, count: sample.length }

async function writeSample(opts: { compress?: 'gzip' | 'brotli' } = {}): Promise<string> {
  const p = file()
  await writeSnapshotFile(nodeFs, p, binarySnapshot, sampleMeta, sample, opts)
  return p
}

describe('binary snapshot v1 (seed)', () => {
  const seedEntries: [string, string][] = [
    ['user:1', 'Alice'],
    ['counter', '42'],
    ['ключ', '\u{1F600}'],
    ['empty', ''],
  ]

  it('loads a little-endian seed file exactly', async () => {
    const { meta, entries } = await load(file(seedV1(true, seedEntries)))
    expect(meta).toEqual({ seq: 0, timestamp: 1705314600000, count: 4, version: 1 })
    expect(entries).toEqual(seedEntries.map(([key, value]) => ({ key, value, expiresAt: 0, version: 0 })))
  })

  it('loads a big-endian seed file exactly', async () => {
    const { meta, entries } = await load(file(seedV1(false, seedEntries)))
    expect(meta).toEqual({ seq: 0, timestamp: 1705314600000, count: 4, version: 1 })
    expect(entries.map((e) => [e.key, e.value])).toEqual(seedEntries)
  })

  it('loads an empty seed file', async () => {
    const { meta, entries } = await load(file(seedV1(true, [])))
    expect(meta.count).toBe(0)
    expect(entries).toEqual([])
  })

  it('rejects every truncation of a seed file', async () => {
    const bytes = seedV1(true, seedEntries)
    for (let len = 0; len < bytes.length; len++) await expectCorrupt(bytes.subarray(0, len))
  })

  it('rejects trailing bytes and invalid UTF-8', async () => {
    await expectCorrupt(Buffer.concat([seedV1(true, [['k', 'v']]), Buffer.from([0])]))
    const bad = Buffer.from(seedV1(true, [['k', 'v']]))
    bad[bad.length - 1] = 0xff
    expect(await expectCorrupt(bad)).toMatch(/UTF-8/)
  })

  it('rejects a bad magic and an unknown version', async () => {
    const bytes = Buffer.from(seedV1(true, []))
    bytes[0] = 0
    expect(await expectCorrupt(bytes)).toMatch(/magic/)
    const v9 = Buffer.from(seedV1(true, []))
    v9[4] = 9
    expect(await expectCorrupt(v9)).toMatch(/version 9/)
  })
})

describe('binary snapshot v2', () => {
  it('writes the documented header and CRC trailer', async () => {
    const p = file()
    await writeSnapshotFile(nodeFs, p, binarySnapshot, { seq: 9, timestamp: 1234, count: 1 }, [{ key: 'k', value: 'v', expiresAt: 0, version: 0 }])
    const b = nfs.readFileSync(p)
    expect([...b.subarray(0, 4)]).toEqual([0xdb, 0x56, 0x4b, 0x00])
    expect(b.readUInt32LE(4)).toBe(2)
    expect(Number(b.readBigUInt64LE(8))).toBe(1234)
    expect(b.readUInt32LE(16)).toBe(1)
    expect(Number(b.readBigUInt64LE(20))).toBe(9)
    // key string, STRING tag + string, expiresAt, version
    expect(b.length).toBe(28 + (4 + 1) + (1 + 4 + 1) + 8 + 8 + 4)
    const { crc32 } = await import('node:zlib')
    expect(b.readUInt32LE(b.length - 4)).toBe(crc32(b.subarray(0, b.length - 4)))
  })

  it('round-trips typed entries, expiry, versions and meta', async () => {
    const { meta, entries } = await load(await writeSample())
    expect(meta).toEqual({ ...sampleMeta, version: 2 })
    expect(canonEntries(entries)).toEqual(canonEntries(sample))
  })

  it('streams many entries and large values across chunk boundaries, pausing as asked', async () => {
    const big = 'x'.repeat(600 * 1024)
    const many: SnapshotEntry[] = []
    for (let i = 0; i < 20_000; i++) many.push({ key: `k${String(i).padStart(6, '0')}`, value: i % 5000 === 1 ? big : `v${i}`, expiresAt: 0, version: i })
    let pauses = 0
    for (const compress of [undefined, 'gzip'] as const) {
      const p = file()
      await writeSnapshotFile(nodeFs, p, binarySnapshot, { seq: 1, timestamp: 0, count: many.length }, many, {
        pauseEvery: 1000,
        pause: async () => {
          pauses++
        },
        ...(compress === undefined ? {} : { compress }),
      })
      const { entries } = await load(p)
      expect(entries.length).toBe(many.length)
      expect(entries.every((e, i) => e.key === many[i]?.key && e.value === many[i]?.value && e.version === i)).toBe(true)
    }
    expect(pauses).toBe(40)
  })

  it('rejects every single-bit flip as corrupt, handing nothing over', async () => {
    const good = nfs.readFileSync(await writeSample())
    for (let bit = 0; bit < good.length * 8; bit++) {
      const bad = Buffer.from(good)
      bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7))
      await expectCorrupt(bad)
    }
  })

  it('rejects every truncation and any appended byte as corrupt', async () => {
    const good = nfs.readFileSync(await writeSample())
    for (let len = 0; len < good.length; len++) await expectCorrupt(good.subarray(0, len))
    expect(await expectCorrupt(Buffer.concat([good, Buffer.from([0])]))).toMatch(/trailing/)
  })

  for (const compress of ['gzip', 'brotli'] as const) {
    it(`round-trips ${compress}-compressed files and never hands over damaged ones`, async () => {
      const p = await writeSample({ compress })
      const good = nfs.readFileSync(p)
      expect(good[0] === 0xdb).toBe(false)
      const expected = canonEntries(sample)
      expect(canonEntries((await load(p)).entries)).toEqual(expected)
      for (let len = 0; len < good.length; len++) await expectCorrupt(good.subarray(0, len))
      // Flips in compression headers (gzip mtime, OS) may be harmless: then the data must be exact.
      for (let bit = 0; bit < good.length * 8; bit += 5) {
        const bad = Buffer.from(good)
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7))
        const got: SnapshotEntry[] = []
        try {
          await binarySnapshot.read(bytesFs(bad), 'damaged.kvs', (e) => got.push(e))
        } catch (err) {
          expect(got).toEqual([])
          if (!isStoreError(err, 'KV_CORRUPT')) throw err
          continue
        }
        expect(canonEntries(got)).toEqual(expected)
      }
    })
  }

  it('loads a gzip-wrapped seed v1 file', async () => {
    const { entries } = await load(file(gzipSync(seedV1(true, [['a', 'b']]))))
    expect(entries).toEqual([{ key: 'a', value: 'b', expiresAt: 0, version: 0 }])
  })

  it('refuses to write when the entries do not match meta.count', async () => {
    const p = file()
    await expect(writeSnapshotFile(nodeFs, p, binarySnapshot, { seq: 0, timestamp: 0, count: 2 }, sample.slice(0, 1))).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
    expect(nfs.existsSync(p)).toBe(false)
  })

  it('reports a missing file as KV_IO', async () => {
    await expect(binarySnapshot.read(nodeFs, join(dir, 'missing'), () => {})).rejects.toMatchObject({ code: 'KV_IO' })
  })
})
