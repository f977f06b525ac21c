// What the snapshot tests left free: the exact bounds and messages of the shared entry
// checks, the pacing clock (on a fake performance.now), format detection and the
// auto format, what loading does with unsorted and duplicate input, and the exact
// messages and offsets of the binary reader.

import { crc32, gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isStoreError } from '../../src/errors.js'
import { MemFs } from '../helpers/mem-fs.js'
import { Memtable } from '../../src/memtable.js'
import { BINARY_MAGIC, BINARY_VERSION, binarySnapshot, readBinaryColumns } from '../../src/snapshot/binary.js'
import { autoSnapshot, detectFileFormat, detectFormat } from '../../src/snapshot/detect.js'
import {
  checkExpiresAt,
  checkKey,
  checkTimestamp,
  checkVersion,
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_VALUE_BYTES,
  MAX_SNAPSHOT_TIMESTAMP,
  MAX_SNAPSHOT_VERSION,
  resolveLimits,
  type SnapshotEntry,
  showValue,
} from '../../src/snapshot/format.js'
import { formatByName, formatFor, loadSnapshotFile, snapshotEntries } from '../../src/snapshot/io.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { PAUSE_EVERY, pacing, SLICE_MS } from '../../src/snapshot/pacing.js'
import { bytesFs } from '../helpers/values.js'

const PATH = 'm.snap'

afterEach(() => {
  vi.restoreAllMocks()
})

/** The KV_CORRUPT (or other coded) message `p` rejects with. */
async function rejection(p: Promise<unknown>, code = 'KV_CORRUPT'): Promise<string> {
  try {
    await p
  } catch (err) {
    if (!isStoreError(err)) throw err
    expect(err.code).toBe(code)
    return err.message
  }
  throw new Error('expected a rejection')
}

/** The bytes of a binary v2 file written by the real writer. */
async function binaryFile(entries: SnapshotEntry[], meta = { seq: 7, timestamp: 1_700_000_000_123 }): Promise<Buffer> {
  const fs = new MemFs()
  const fd = fs.open('/w', 'w')
  await binarySnapshot.write(fs, fd, { ...meta, count: entries.length }, entries)
  fs.close(fd)
  return Buffer.from(fs.readFile('/w'))
}

/** A binary v1 file (the first format): u32 lengths, UTF-8 strings, timestamp in seconds. */
function v1File(pairs: [string, string][], ts = 1_705_314_600, le = true): Buffer {
  const parts: Buffer[] = []
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4)
    if (le) b.writeUInt32LE(n)
    else b.writeUInt32BE(n)
    return b
  }
  const head = Buffer.alloc(20)
  if (le) {
    head.writeUInt32LE(BINARY_MAGIC, 0)
    head.writeUInt32LE(1, 4)
    head.writeBigUInt64LE(BigInt(ts), 8)
    head.writeUInt32LE(pairs.length, 16)
  } else {
    head.writeUInt32BE(BINARY_MAGIC, 0)
    head.writeUInt32BE(1, 4)
    head.writeBigUInt64BE(BigInt(ts), 8)
    head.writeUInt32BE(pairs.length, 16)
  }
  parts.push(head)
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k)
    const vb = Buffer.from(v)
    parts.push(u32(kb.length), kb, u32(vb.length), vb)
  }
  return Buffer.concat(parts)
}

/** A memtable's rows as [key, value, version], in key order. */
function rows(mt: Memtable): [string, unknown, number][] {
  const out: [string, unknown, number][] = []
  mt.forEach({}, (k, v, ver) => {
    out.push([k, v, ver])
  })
  return out
}

function entry(key: string, value: unknown, expiresAt = 0, version = 1): SnapshotEntry {
  return { key, value, expiresAt, version }
}

describe('resolveLimits', () => {
  it('fills in the store defaults and keeps given limits, down to 1', () => {
    expect(resolveLimits(undefined)).toEqual({ maxKeyBytes: DEFAULT_MAX_KEY_BYTES, maxValueBytes: DEFAULT_MAX_VALUE_BYTES })
    expect(DEFAULT_MAX_KEY_BYTES).toBe(65_536)
    expect(DEFAULT_MAX_VALUE_BYTES).toBe(64 * 1024 * 1024)
    expect(resolveLimits({})).toEqual({ maxKeyBytes: 65_536, maxValueBytes: 67_108_864 })
    expect(resolveLimits({ maxKeyBytes: 1, maxValueBytes: 1 })).toEqual({ maxKeyBytes: 1, maxValueBytes: 1 })
    expect(resolveLimits({ maxKeyBytes: 10 })).toEqual({ maxKeyBytes: 10, maxValueBytes: 67_108_864 })
    expect(resolveLimits({ maxValueBytes: 10 })).toEqual({ maxKeyBytes: 65_536, maxValueBytes: 10 })
  })

  it('refuses limits that are not positive safe integers, naming the limit and the value', () => {
    const cases: [object, string][] = [
      [{ maxKeyBytes: 0 }, 'snapshot maxKeyBytes must be a positive integer, got 0'],
      [{ maxKeyBytes: -1 }, 'snapshot maxKeyBytes must be a positive integer, got -1'],
      [{ maxKeyBytes: 1.5 }, 'snapshot maxKeyBytes must be a positive integer, got 1.5'],
      [{ maxKeyBytes: 2 ** 53 }, `snapshot maxKeyBytes must be a positive integer, got ${2 ** 53}`],
      [{ maxKeyBytes: '5' }, 'snapshot maxKeyBytes must be a positive integer, got 5'],
      [{ maxValueBytes: 0 }, 'snapshot maxValueBytes must be a positive integer, got 0'],
      [{ maxValueBytes: Number.NaN }, 'snapshot maxValueBytes must be a positive integer, got NaN'],
    ]
    for (const [limits, message] of cases) {
      let caught: unknown
      try {
        resolveLimits(limits as never)
      } catch (err) {
        caught = err
      }
      expect(isStoreError(caught, 'KV_INVALID_ARGUMENT')).toBe(true)
      expect((caught as Error).message).toBe(message)
    }
  })
})

describe('entry checks', () => {
  it('checkKey: empty, exactly the limit, one byte over, multi-byte, lone surrogates', () => {
    expect(checkKey('', 10)).toBe('empty key')
    expect(checkKey('a'.repeat(10), 10)).toBeUndefined()
    expect(checkKey('a'.repeat(11), 10)).toBe('key longer than 10 UTF-8 bytes')
    // 4 units of 2 bytes: 4 * 3 > 8 asks for the byte count, which is exactly 8.
    expect(checkKey('é'.repeat(4), 8)).toBeUndefined()
    expect(checkKey('é'.repeat(4), 7)).toBe('key longer than 7 UTF-8 bytes')
    expect(checkKey('€'.repeat(3), 9)).toBeUndefined()
    expect(checkKey('€'.repeat(3), 8)).toBe('key longer than 8 UTF-8 bytes')
    expect(checkKey('a\ud800', 10)).toBe('key has a lone surrogate')
    expect(checkKey('\udc00', 10)).toBe('key has a lone surrogate')
    expect(checkKey('😀', 4)).toBeUndefined()
    expect(checkKey('😀', 3)).toBe('key longer than 3 UTF-8 bytes')
  })

  it('checkVersion: 0 and the bound are versions; below, above, fractions and non-numbers are not', () => {
    expect(checkVersion(0)).toBeUndefined()
    expect(checkVersion(1)).toBeUndefined()
    expect(checkVersion(MAX_SNAPSHOT_VERSION)).toBeUndefined()
    expect(MAX_SNAPSHOT_VERSION).toBe(Number.MAX_SAFE_INTEGER - 2 ** 32)
    expect(checkVersion(MAX_SNAPSHOT_VERSION + 1)).toBe(`version ${MAX_SNAPSHOT_VERSION + 1} is above ${MAX_SNAPSHOT_VERSION}, leaving no room for later writes`)
    expect(checkVersion(MAX_SNAPSHOT_VERSION + 1, 'seq')).toBe(`seq ${MAX_SNAPSHOT_VERSION + 1} is above ${MAX_SNAPSHOT_VERSION}, leaving no room for later writes`)
    expect(checkVersion(-1)).toBe('bad version -1 (not a non-negative integer)')
    expect(checkVersion(-1, 'seq')).toBe('bad seq -1 (not a non-negative integer)')
    expect(checkVersion(1.5)).toBe('bad version 1.5 (not a non-negative integer)')
    expect(checkVersion(2 ** 53)).toBe(`bad version ${2 ** 53} (not a non-negative integer)`)
    expect(checkVersion('3')).toBe('bad version "3" (not a non-negative integer)')
    expect(checkVersion(null)).toBe('bad version null (not a non-negative integer)')
  })

  it('checkExpiresAt: 0 and any safe non-negative integer; nothing else', () => {
    expect(checkExpiresAt(0)).toBeUndefined()
    expect(checkExpiresAt(Number.MAX_SAFE_INTEGER)).toBeUndefined()
    expect(checkExpiresAt(-1)).toBe('bad expiresAt -1 (not a non-negative integer)')
    expect(checkExpiresAt(0.5)).toBe('bad expiresAt 0.5 (not a non-negative integer)')
    expect(checkExpiresAt(2 ** 53)).toBe(`bad expiresAt ${2 ** 53} (not a non-negative integer)`)
    expect(checkExpiresAt('1')).toBe('bad expiresAt "1" (not a non-negative integer)')
    expect(checkExpiresAt(true)).toBe('bad expiresAt true (not a non-negative integer)')
  })

  it('checkTimestamp: integer ms inside the Date range, negative ones included', () => {
    expect(MAX_SNAPSHOT_TIMESTAMP).toBe(8_640_000_000_000_000)
    expect(new Date(MAX_SNAPSHOT_TIMESTAMP).getTime()).toBe(MAX_SNAPSHOT_TIMESTAMP)
    for (const ok of [0, 1, -1, MAX_SNAPSHOT_TIMESTAMP, -MAX_SNAPSHOT_TIMESTAMP]) expect(checkTimestamp(ok)).toBeUndefined()
    expect(checkTimestamp(MAX_SNAPSHOT_TIMESTAMP + 1)).toBe(`bad timestamp ${MAX_SNAPSHOT_TIMESTAMP + 1}`)
    expect(checkTimestamp(-MAX_SNAPSHOT_TIMESTAMP - 1)).toBe(`bad timestamp ${-MAX_SNAPSHOT_TIMESTAMP - 1}`)
    expect(checkTimestamp(1.5)).toBe('bad timestamp 1.5')
    expect(checkTimestamp(Number.NaN)).toBe('bad timestamp NaN')
  })

  it('showValue: short, flat descriptions', () => {
    expect(showValue(-0)).toBe('-0')
    expect(showValue(0)).toBe('0')
    expect(showValue(2.5)).toBe('2.5')
    expect(showValue('abc')).toBe('"abc"')
    expect(showValue('x'.repeat(40))).toBe(`"${'x'.repeat(40)}"`)
    expect(showValue('x'.repeat(41))).toBe(`"${'x'.repeat(40)}…"`)
    expect(showValue(null)).toBe('null')
    expect(showValue(undefined)).toBe('undefined')
    expect(showValue(false)).toBe('false')
    expect(showValue(10n)).toBe('10')
    expect(showValue([1])).toBe('an array')
    expect(showValue({ a: 1 })).toBe('an object')
  })
})

describe('pacing on a fake clock', () => {
  let now = 0
  const clock = (): void => {
    now = 0
    vi.spyOn(performance, 'now').mockImplementation(() => now)
  }
  const immediate = (): Promise<void> => new Promise((r) => setImmediate(r))

  it('goes on at once (the same settled promise) inside a slice, and yields once SLICE_MS have passed', async () => {
    clock()
    const { pause, pauseEvery } = pacing()
    expect(pauseEvery).toBe(PAUSE_EVERY)
    expect(PAUSE_EVERY).toBe(256)
    expect(SLICE_MS).toBe(4)
    now = 3.9
    const a = pause?.()
    const b = pause?.()
    expect(a).toBe(b)
    now = 4
    const c = pause?.()
    expect(c).not.toBe(a)
    let settled = false
    void c?.then(() => {
      settled = true
    })
    await Promise.resolve()
    await Promise.resolve()
    expect(settled).toBe(false)
    now = 10
    await c
    expect(settled).toBe(true)
    // The next slice starts when the yield came back (10), not when it was asked for (4).
    now = 13.9
    expect(pause?.()).toBe(a)
    now = 14
    expect(pause?.()).not.toBe(a)
    await immediate()
  })

  it('reports entries done after more than 100 ms, then 100 ms after the last report', async () => {
    clock()
    const seen: [number, number][] = []
    const { pause } = pacing((done) => seen.push([now, done]))
    now = 100
    await pause?.()
    expect(seen).toEqual([])
    now = 100.5
    await pause?.()
    expect(seen).toEqual([[100.5, 512]])
    now = 200.5
    await pause?.()
    now = 201
    await pause?.()
    expect(seen).toEqual([
      [100.5, 512],
      [201, 1024],
    ])
  })

  it('works without a progress callback', async () => {
    clock()
    const { pause } = pacing()
    now = 500
    await pause?.()
    expect(now).toBe(500)
  })
})

describe('detection', () => {
  it('a gzip head too short to show its inner format defers to the auto format; a file never does', async () => {
    const gz = gzipSync(await binaryFile([entry('k', 'v')]))
    expect(detectFormat(gz.subarray(0, 2))).toBe(autoSnapshot)
    expect(detectFormat(gz)).toBe(binarySnapshot)
    expect(detectFileFormat(bytesFs(gz.subarray(0, 2)), PATH)).toBeUndefined()
    expect(detectFileFormat(bytesFs(gz), PATH)).toBe(binarySnapshot)
    expect(detectFormat(Buffer.from('zzzz'))).toBeUndefined()
  })

  it('the auto format writes binary and reads either format, refusing anything else', async () => {
    const fs = new MemFs()
    const fd = fs.open('/a', 'w')
    await autoSnapshot.write(fs, fd, { seq: 3, timestamp: 5, count: 1 }, [entry('k', 'v')])
    fs.close(fd)
    const bytes = Buffer.from(fs.readFile('/a'))
    expect(bytes.readUInt32LE(0)).toBe(BINARY_MAGIC)
    expect(autoSnapshot.name).toBe('auto')
    const got: SnapshotEntry[] = []
    const meta = await autoSnapshot.read(bytesFs(bytes), PATH, (e) => got.push({ ...e }))
    expect(meta).toEqual({ seq: 3, timestamp: 5, count: 1, version: 2 })
    expect(got).toEqual([entry('k', 'v')])
    const json = '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"a":"1"}}'
    const fromJson: SnapshotEntry[] = []
    await autoSnapshot.read(bytesFs(Buffer.from(json)), PATH, (e) => fromJson.push({ ...e }))
    expect(fromJson.map((e) => [e.key, e.value])).toEqual([['a', '1']])
    expect(await rejection(autoSnapshot.read(bytesFs(Buffer.from('nope')), PATH, () => {}))).toBe(`${PATH}: not a kvstore snapshot (unknown format)`)
  })
})

describe('io', () => {
  it('formatFor goes by the extension, case-insensitively; formatByName maps names', () => {
    expect(formatFor('/d/x.json')).toBe('json')
    expect(formatFor('/d/x.JSON')).toBe('json')
    expect(formatFor('/d/x.json.gz')).toBe('binary')
    expect(formatFor('/d/json')).toBe('binary')
    expect(formatFor('/d/x.snap')).toBe('binary')
    expect(formatByName('json')).toBe(jsonSnapshot)
    expect(formatByName('binary')).toBe(binarySnapshot)
  })

  it('loadSnapshotFile refuses an unknown file and a missing one with their own codes', async () => {
    expect(await rejection(loadSnapshotFile(bytesFs(Buffer.from('nope')), PATH))).toBe(`${PATH}: not a kvstore snapshot (unknown format)`)
    expect(await rejection(loadSnapshotFile(new MemFs(), '/missing'), 'KV_IO')).toBe('cannot open /missing')
  })

  /** What loading `text` with `baseSeq` gives: the rows and the numbers beside them. */
  async function load(text: string, baseSeq: number): Promise<object> {
    const l = await loadSnapshotFile(bytesFs(Buffer.from(text)), PATH, undefined, baseSeq)
    return { rows: rows(l.memtable), seq: l.seq, maxVersion: l.maxVersion, formatVersion: l.formatVersion }
  }

  it('sorts whole-file JSON into key order, the last duplicate winning, and stamps versions', async () => {
    // JSON.parse keeps the last "b"; every entry without a version gets max(baseSeq, seq) + 1.
    const json = '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"b":"2","c":"3","a":"1","b":"4"}}'
    const rowsWanted = [
      ['a', '1', 10],
      ['b', '4', 10],
      ['c', '3', 10],
    ]
    expect(await load(json, 9)).toEqual({ rows: rowsWanted, seq: 0, maxVersion: 10, formatVersion: 1 })
  })

  it('keeps the later of two equal keys in a hand-made line file, and all versions as written', async () => {
    const head = '{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":5,"count":4,"data":{\n'
    const lines = ['"b":{"value":"old","version":3}', '"a":{"value":"x","version":2}', '"b":{"value":"new","version":4}', '"0":{"value":"z"}']
    const rowsWanted = [
      ['0', 'z', 6],
      ['a', 'x', 2],
      ['b', 'new', 4],
    ]
    expect(await load(`${head}${lines.join(',\n')}\n}}\n`, 2)).toEqual({ rows: rowsWanted, seq: 5, maxVersion: 6, formatVersion: 2 })
  })

  it('adjacent equal keys in file order are not taken as sorted: the later one wins', async () => {
    const text = `{"version":2,"timestamp":0,"seq":3,"data":{\n"a":1,\n"a":2,\n"b":3\n}}\n`
    const rowsWanted = [
      ['a', 2, 4],
      ['b', 3, 4],
    ]
    expect(await load(text, 0)).toEqual({ rows: rowsWanted, seq: 3, maxVersion: 4, formatVersion: 2 })
  })

  it('stampVersion gives every entry that version; the largest one is maxVersion', async () => {
    const bytes = await binaryFile([entry('a', 1, 0, 3), entry('b', 2, 0, 8)])
    const stamped = await loadSnapshotFile(bytesFs(bytes), PATH, undefined, 0, 5)
    expect(rows(stamped.memtable).map((r) => r[2])).toEqual([5, 5])
    expect(stamped.maxVersion).toBe(5)
    const kept = await loadSnapshotFile(bytesFs(bytes), PATH)
    expect(kept.maxVersion).toBe(8)
    expect(kept.seq).toBe(7)
    expect(kept.formatVersion).toBe(BINARY_VERSION)
  })

  it('reports load progress every 65,536 entries, for both formats', async () => {
    const n = 65_536 * 2 + 5
    const es: SnapshotEntry[] = []
    for (let i = 0; i < n; i++) es.push(entry(`k${String(i).padStart(7, '0')}`, i))
    const bin = await binaryFile(es)
    const seenBin: unknown[] = []
    const loaded = await loadSnapshotFile(bytesFs(bin), PATH, (e) => seenBin.push(e))
    expect(loaded.memtable.size).toBe(n)
    expect(seenBin).toEqual([
      { phase: 'load', done: 65_536, total: undefined },
      { phase: 'load', done: 131_072, total: undefined },
    ])
    const fs = new MemFs()
    const fd = fs.open('/j', 'w')
    await jsonSnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: n }, es)
    fs.close(fd)
    const seenJson: unknown[] = []
    await loadSnapshotFile(bytesFs(Buffer.from(fs.readFile('/j'))), PATH, (e) => seenJson.push(e))
    expect(seenJson).toEqual(seenBin)
  })

  it('classifies what is thrown while reading that is not a StoreError: errno codes are KV_IO, the rest KV_CORRUPT', async () => {
    const es: SnapshotEntry[] = []
    for (let i = 0; i < 65_536; i++) es.push(entry(`k${String(i).padStart(6, '0')}`, i))
    const fs = new MemFs()
    const fd = fs.open('/j', 'w')
    await jsonSnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: es.length }, es)
    fs.close(fd)
    const file = bytesFs(Buffer.from(fs.readFile('/j')))
    // The JSON reader passes what its visitor throws through unchanged; the progress callback runs in it.
    const thrower = (err: unknown) => (): void => {
      throw err
    }
    const io = Object.assign(new Error('disk gone'), { code: 'EIO' })
    const ioErr = await loadSnapshotFile(file, PATH, thrower(io)).catch((e: unknown) => e)
    expect(ioErr).toMatchObject({ code: 'KV_IO', message: `cannot read snapshot ${PATH}`, cause: io })
    for (const [thrown, why] of [
      [new RangeError('bad offset'), 'bad offset'],
      [Object.assign(new Error('odd'), { code: 'eio' }), 'odd'],
      [Object.assign(new Error('odd'), { code: 'XEIO' }), 'odd'],
      [Object.assign(new Error('odd'), { code: 'EIO-' }), 'odd'],
      [Object.assign(new Error('odd'), { code: 'E' }), 'odd'],
      [Object.assign(new Error('odd'), { code: ['EIO'] }), 'odd'],
      [Object.assign(new Error('odd'), { code: 5 }), 'odd'],
      ['a string', 'a string'],
      [null, 'null'],
    ] as const) {
      const err = await loadSnapshotFile(file, PATH, thrower(thrown)).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'KV_CORRUPT', message: `${PATH}: damaged snapshot (${why})` })
      expect((err as Error).cause).toBe(thrown)
    }
    const coded = new (await import('../../src/errors.js')).StoreError('KV_CLOSED', 'closed')
    expect(await loadSnapshotFile(file, PATH, thrower(coded)).catch((e: unknown) => e)).toBe(coded)
  })

  it('collections read from a file belong to the new table', async () => {
    const { KvList } = await import('../../src/collections.js')
    const list = new KvList()
    list.pushRight('x')
    const loaded = await loadSnapshotFile(bytesFs(await binaryFile([entry('l', list)])), PATH)
    loaded.memtable.forEach({}, (_k, v) => {
      expect((v as { epoch: number }).epoch).toBe(loaded.memtable.epoch)
    })
  })

  it('snapshotEntries counts and hands out only keys alive at `now` (expiring at now is expired)', () => {
    const mt = Memtable.fromSorted(['a', 'b', 'c', 'd'], [1, 2, 3, 4], [1, 2, 3, 4], [0, 100, 101, 99])
    const s = snapshotEntries(mt, 100)
    expect(s.count).toBe(2)
    expect(s.done).toBe(0)
    const keys: string[] = []
    for (const e of s.iterate()) keys.push(`${e.key}=${String(e.value)}@${e.version}/${e.expiresAt}`)
    expect(keys).toEqual(['a=1@1/0', 'c=3@3/101'])
    expect(s.done).toBe(2)
    const none = snapshotEntries(Memtable.fromSorted(['a'], [1], [1], null), 0)
    expect(none.count).toBe(1)
  })
})

describe('binary reader messages', () => {
  const read = (bytes: Uint8Array, opts?: object): Promise<unknown> => binarySnapshot.read(bytesFs(bytes), PATH, () => {}, opts)

  it('names the header faults exactly', async () => {
    expect(await rejection(read(Buffer.alloc(19)))).toBe(`${PATH}: damaged binary snapshot at byte offset 0: file too short for a header (19 bytes)`)
    const bad = Buffer.alloc(20)
    bad.writeUInt32LE(0x4b56dc, 0)
    expect(await rejection(read(bad))).toBe(`${PATH}: damaged binary snapshot at byte offset 0: bad magic (not a kvstore binary snapshot)`)
    const v3 = Buffer.alloc(28)
    v3.writeUInt32LE(BINARY_MAGIC, 0)
    v3.writeUInt32LE(3, 4)
    expect(await rejection(read(v3))).toBe(`${PATH}: damaged binary snapshot at byte offset 4: unsupported version 3`)
    const v0 = Buffer.from(v3)
    v0.writeUInt32LE(0, 4)
    expect(await rejection(read(v0))).toBe(`${PATH}: damaged binary snapshot at byte offset 4: unsupported version 0`)
    const shortV2 = Buffer.from(v3.subarray(0, 27))
    shortV2.writeUInt32LE(2, 4)
    expect(await rejection(read(shortV2))).toBe(`${PATH}: damaged binary snapshot at byte offset 0: file too short for a version 2 header`)
  })

  it('takes the magic only with all four bytes, in either order', async () => {
    const good = await binaryFile([])
    for (const bigEndian of [false, true]) {
      for (let i = 0; i < 4; i++) {
        const bad = Buffer.from(good)
        if (bigEndian) bad.writeUInt32BE(BINARY_MAGIC, 0)
        bad[i] = (bad[i] as number) ^ 0x01
        expect(await rejection(read(bad))).toBe(`${PATH}: damaged binary snapshot at byte offset 0: bad magic (not a kvstore binary snapshot)`)
      }
    }
  })

  it('a header number past 2^53 is a bad header field at offset 8', async () => {
    const good = await binaryFile([])
    for (const at of [8 + 4, 20 + 4]) {
      const bad = Buffer.from(good)
      bad.writeUInt32LE(0x20_0000, at)
      expect(await rejection(read(bad))).toBe(`${PATH}: damaged binary snapshot at byte offset 8: bad header field`)
    }
  })

  it('offsets inside an entry are file offsets, also in a later chunk', async () => {
    const es: SnapshotEntry[] = []
    for (let i = 0; i < 3000; i++) es.push(entry(`k${String(i).padStart(5, '0')}`, 'v'.repeat(100)))
    const good = await binaryFile(es)
    const body = Buffer.from(good.subarray(0, good.length - 4))
    body.writeUInt32LE(es.length + 1, 16)
    // Key "z", then a tag no codec knows.
    const tagAt = body.length + 5
    const file = Buffer.concat([body, Buffer.from([1, 0, 0, 0, 0x7a, 0xee]), Buffer.alloc(20)])
    expect(tagAt).toBeGreaterThan(256 * 1024)
    expect(await rejection(read(file))).toBe(`${PATH}: damaged binary snapshot at byte offset ${body.length}: entry 3000: unknown value tag 238 at byte offset ${tagAt}`)
  })

  it('reads a version-1 file in both byte orders, seconds becoming ms', async () => {
    for (const le of [true, false]) {
      const got: SnapshotEntry[] = []
      const meta = await binarySnapshot.read(bytesFs(v1File([['k', 'v'], ['l', 'w']], 1_705_314_600, le)), PATH, (e) => got.push({ ...e }))
      expect(meta).toEqual({ seq: 0, timestamp: 1_705_314_600_000, count: 2, version: 1 })
      expect(got).toEqual([
        { key: 'k', value: 'v', expiresAt: 0, version: 0 },
        { key: 'l', value: 'w', expiresAt: 0, version: 0 },
      ])
    }
  })

  it('names a cut entry, a missing trailer, a bad CRC (8 hex digits) and trailing bytes, with file offsets', async () => {
    const good = await binaryFile([entry('k', 'v'), entry('l', 'w')])
    const body = good.length - 4
    // Entry 1 starts after the header and entry 0 (u32 length + "k", tag + u32 length + "v", two f64).
    const second = 28 + 5 + 6 + 16
    expect(await rejection(read(good.subarray(0, body - 3)))).toBe(`${PATH}: damaged binary snapshot at byte offset ${second}: entry 1 of 2 cut short (truncated file)`)
    expect(await rejection(read(good.subarray(0, body)))).toBe(`${PATH}: damaged binary snapshot at byte offset ${body}: CRC trailer missing (truncated file)`)
    const wrong = Buffer.from(good)
    const computed = crc32(good.subarray(0, body))
    wrong.writeUInt32LE(1, body)
    expect(await rejection(read(wrong))).toBe(
      `${PATH}: damaged binary snapshot at byte offset ${body}: checksum mismatch (stored 0x00000001, computed 0x${computed.toString(16).padStart(8, '0')})`,
    )
    const extra = Buffer.concat([good, Buffer.from([0])])
    expect(await rejection(read(extra))).toBe(`${PATH}: damaged binary snapshot at byte offset ${good.length}: trailing bytes after the last entry`)
  })

  it('names a bad entry field with its entry number and the key', async () => {
    const bytes = await binaryFile([entry('k', 'v'), entry('bad', 'w', 0, 1)])
    // Forge the second entry's version to -1 and fix the CRC.
    const body = Buffer.from(bytes.subarray(0, bytes.length - 4))
    body.writeDoubleLE(-1, body.length - 8)
    const file = Buffer.concat([body, Buffer.alloc(4)])
    file.writeUInt32LE(crc32(body), body.length)
    const msg = await rejection(read(file))
    const entryAt = 28 + (4 + 1) + (1 + 4 + 1) + 16
    expect(msg).toBe(`${PATH}: damaged binary snapshot at byte offset ${entryAt}: entry 1: key "bad": bad version -1 (not a non-negative integer)`)
  })

  it('says the offsets are decompressed ones for a gzip file', async () => {
    const good = await binaryFile([entry('k', 'v')])
    const gz = gzipSync(good.subarray(0, good.length - 4))
    expect(await rejection(read(gz))).toBe(`${PATH}: damaged binary snapshot at gzip-decompressed byte offset ${good.length - 4}: CRC trailer missing (truncated file)`)
  })

  it('readBinaryColumns returns parallel arrays, noting whether any entry expires', async () => {
    const bytes = await binaryFile([entry('a', 1, 0, 2), entry('b', 'x', 5000, 3)])
    const { columns, result } = await readBinaryColumns(bytesFs(bytes), PATH)
    expect(columns).toEqual({ keys: ['a', 'b'], vals: [1, 'x'], vers: [2, 3], exps: [0, 5000], anyExpiry: true })
    expect(result).toEqual({ seq: 7, timestamp: 1_700_000_000_123, count: 2, version: 2 })
    const plain = await readBinaryColumns(bytesFs(await binaryFile([entry('a', 1)])), PATH)
    expect(plain.columns.anyExpiry).toBe(false)
    // -0 in the file reads as 0 (both mean none).
    const neg = await binaryFile([entry('a', 1, -0, -0)])
    const z = await readBinaryColumns(bytesFs(neg), PATH)
    expect(Object.is(z.columns.vers[0], 0)).toBe(true)
    expect(Object.is(z.columns.exps[0], 0)).toBe(true)
  })

  it('the writer refuses a count that does not match, with the numbers', async () => {
    const fs = new MemFs()
    const fd = fs.open('/c', 'w')
    expect(await rejection(binarySnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: 3 }, [entry('a', 1)]), 'KV_INVALID_ARGUMENT')).toBe(
      'snapshot meta.count is 3 but 1 entries were given',
    )
  })

  it('the writer pauses every pauseEvery entries, 1024 by default', async () => {
    const es: SnapshotEntry[] = []
    for (let i = 0; i < 2050; i++) es.push(entry(`k${String(i).padStart(5, '0')}`, i))
    for (const [every, want] of [
      [undefined, 2],
      [1000, 2],
      [7, 292],
    ] as const) {
      const fs = new MemFs()
      const fd = fs.open('/p', 'w')
      let pauses = 0
      const pause = async (): Promise<void> => {
        pauses++
      }
      await binarySnapshot.write(fs, fd, { seq: 1, timestamp: 0, count: es.length }, es, every === undefined ? { pause } : { pauseEvery: every, pause })
      expect(pauses).toBe(want)
    }
  })
})

describe('writeSnapshotFile and removeStaleTemps on MemFs', () => {
  const one = [entry('k', 'v')]
  const meta = { seq: 1, timestamp: 0, count: 1 }

  /** A MemFs in /d whose opens are logged as [path, flags, mode]. */
  function loggedFs(): { fs: MemFs; opens: [string, string, number | undefined][] } {
    const fs = new MemFs()
    fs.mkdir('/d')
    const opens: [string, string, number | undefined][] = []
    const real = fs.open.bind(fs)
    fs.open = (p, f, m) => {
      opens.push([p, f, m])
      return real(p, f, m)
    }
    return { fs, opens }
  }

  it('a new file gets DEFAULT_FILE_MODE through open and no chmod; a replaced one keeps its mode; an asked one wins', async () => {
    const { writeSnapshotFile } = await import('../../src/snapshot/write-file.js')
    const { DEFAULT_FILE_MODE } = await import('../../src/fs/fs.js')
    const { fs, opens } = loggedFs()
    await writeSnapshotFile(fs, '/d/s', binarySnapshot, meta, one)
    expect(opens).toHaveLength(1)
    expect(opens[0]?.[0]).toMatch(/^\/d\/s\.tmp-[0-9a-f]{12}$/)
    expect(opens[0]?.slice(1)).toEqual(['wx', DEFAULT_FILE_MODE])
    expect(fs.count('chmod')).toBe(0)
    fs.chmod('/d/s', 0o640)
    await writeSnapshotFile(fs, '/d/s', binarySnapshot, meta, one)
    expect(opens[1]?.slice(1)).toEqual(['wx', 0o640])
    expect(fs.stat('/d/s')?.mode).toBe(0o640)
    await writeSnapshotFile(fs, '/d/s', binarySnapshot, meta, one, { mode: 0o604 })
    expect(opens[2]?.slice(1)).toEqual(['wx', 0o604])
    expect(fs.stat('/d/s')?.mode).toBe(0o604)
    // Without chmod the mode can only go to open.
    const bare = loggedFs()
    ;(bare.fs as { chmod?: unknown }).chmod = undefined
    await writeSnapshotFile(bare.fs, '/d/s', binarySnapshot, meta, one, { mode: 0o640 })
    expect(bare.opens[0]?.slice(1)).toEqual(['wx', 0o640])
    expect(fs.readdir('/d')).toEqual(['s'])
  })

  it('an Fs without realpath writes the path itself; a realpath failure other than ENOENT is KV_IO, nothing created', async () => {
    const { writeSnapshotFile } = await import('../../src/snapshot/write-file.js')
    const { fs } = loggedFs()
    ;(fs as { realpath?: unknown }).realpath = undefined
    await writeSnapshotFile(fs, '/d/s', binarySnapshot, meta, one)
    expect(fs.readdir('/d')).toEqual(['s'])
    const denied = loggedFs()
    const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES' })
    denied.fs.realpath = () => {
      throw eacces
    }
    const err = await writeSnapshotFile(denied.fs, '/d/s', binarySnapshot, meta, one).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_IO', message: 'cannot write snapshot /d/s', cause: eacces })
    expect(denied.opens).toEqual([])
    expect(denied.fs.readdir('/d')).toEqual([])
  })

  it('after a failure, a failing close and a failing unlink do not replace the first error', async () => {
    const { writeSnapshotFile } = await import('../../src/snapshot/write-file.js')
    const { fs } = loggedFs()
    fs.putFile('/d/s', Buffer.from('old'))
    const boom = Object.assign(new Error('sync failed'), { code: 'EIO' })
    fs.datasync = async () => {
      throw boom
    }
    fs.close = () => {
      throw Object.assign(new Error('close failed'), { code: 'EBADF' })
    }
    const realUnlink = fs.unlink.bind(fs)
    let unlinked = ''
    fs.unlink = (p) => {
      unlinked = p
      realUnlink(p)
      throw Object.assign(new Error('unlink failed'), { code: 'EIO' })
    }
    const err = await writeSnapshotFile(fs, '/d/s', binarySnapshot, meta, one).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_IO', message: 'cannot write snapshot /d/s', cause: boom })
    expect(unlinked).toMatch(/^\/d\/s\.tmp-[0-9a-f]{12}$/)
    expect(fs.readFile('/d/s').toString()).toBe('old')
  })

  /** `fs` with some members replaced (a Proxy: MemFs's private fields need the real receiver). */
  function over(fs: MemFs, o: Record<string, unknown>): MemFs {
    return new Proxy(fs, {
      get: (t, k) => {
        if (typeof k === 'string' && k in o) return o[k]
        const v = Reflect.get(t, k) as unknown
        return typeof v === 'function' ? v.bind(t) : v
      },
    })
  }

  it('removeStaleTemps: exact KV_IO message, an unlisted directory, links and unstat-able names', async () => {
    const { removeStaleTemps } = await import('../../src/snapshot/write-file.js')
    const temp = 's.tmp-0123456789ab'
    const fs = new MemFs()
    fs.mkdir('/d')
    fs.putFile(`/d/${temp}`, Buffer.from('partial'))
    const noList = over(fs, {
      readdir: () => {
        throw Object.assign(new Error('EACCES'), { code: 'EACCES' })
      },
    })
    expect(() => removeStaleTemps(noList, '/d/s')).toThrow(expect.objectContaining({ code: 'KV_IO', message: 'cannot remove stale temp files of /d/s in /d' }))
    // lstat, not stat, decides: a link named like a temp file is removed even when it points at a directory.
    const linkToDir = over(fs, {
      stat: () => ({ size: 0, isDirectory: true, mtimeMs: 0 }),
      lstat: (p: string) => fs.stat(p),
    })
    expect(removeStaleTemps(linkToDir, '/d/s')).toEqual([`/d/${temp}`])
    fs.putFile(`/d/${temp}`, Buffer.from('partial'))
    // Without lstat, stat decides; a name that cannot be stat'ed is left alone.
    const noLstat = over(fs, { lstat: undefined, stat: () => undefined })
    expect(removeStaleTemps(noLstat, '/d/s')).toEqual([])
    const statOnly = over(fs, { lstat: undefined })
    expect(removeStaleTemps(statOnly, '/d/s')).toEqual([`/d/${temp}`])
    expect(fs.readdir('/d')).toEqual([])
  })
})
