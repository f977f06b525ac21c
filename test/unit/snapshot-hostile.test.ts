// Snapshot files built to break the readers: numbers and keys outside what the store
// accepts, hostile nesting, huge declared lengths, over-long lines, invalid UTF-8, and
// failing file systems. Each must end in KV_CORRUPT (or KV_IO for the file system)
// naming the file and where, never a raw exception, never unbounded memory.

import { crc32, createGzip, gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/codec/bytes.js'
import { encodeValue } from '../../src/codec/value.js'
import { isStoreError } from '../../src/errors.js'
import type { Fs } from '../../src/fs/fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import { MAX_SNAPSHOT_VERSION, type SnapshotEntry, type SnapshotFormat, type SnapshotReadOptions } from '../../src/snapshot/format.js'
import { loadSnapshotFile } from '../../src/snapshot/io.js'
import { jsonSnapshot, maxJsonLineBytes } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { MAX_DEPTH, prepareValue } from '../../src/value-check.js'
import { bytesFs } from '../helpers/values.js'

const PATH = 'hostile.snap'

// ------------------------------------------------------------------ builders

/** One binary v2 entry; `rawValue` replaces the encoded value (tag + data) when given. */
function binEntry(key: string | Uint8Array, value: unknown, expiresAt = 0, version = 0, rawValue?: Uint8Array): Uint8Array {
  const w = new ByteWriter()
  const kb = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  w.u32(kb.length)
  w.bytes(kb)
  if (rawValue !== undefined) w.bytes(rawValue)
  else encodeValue(w, value)
  w.f64(expiresAt)
  w.f64(version)
  return new Uint8Array(w.finish())
}

/** A binary v2 file with a correct CRC, so only the field checks can refuse it. */
function binV2(entries: Uint8Array[], h: { seq?: number; timestamp?: number; count?: number } = {}): Buffer {
  const head = Buffer.alloc(28)
  head.writeUInt32LE(0x4b56db, 0)
  head.writeUInt32LE(2, 4)
  head.writeBigUInt64LE(BigInt(h.timestamp ?? 0), 8)
  head.writeUInt32LE(h.count ?? entries.length, 16)
  head.writeBigUInt64LE(BigInt(h.seq ?? 1), 20)
  const body = Buffer.concat([head, ...entries])
  const crc = Buffer.alloc(4)
  crc.writeUInt32LE(crc32(body))
  return Buffer.concat([body, crc])
}

/** Little-endian u32 bytes. */
function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** A JSON v2 file in the line layout; `seq` is raw JSON text so it can be any number literal. */
function jsonV2(lines: string[], seq = '1'): string {
  const head = `{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":${seq},"count":${lines.length},"data":{\n`
  return lines.length === 0 ? `${head}}}\n` : `${head}${lines.join(',\n')}\n}}\n`
}

/** `depth` arrays nested in each other: `[[…[]…]]`. */
function nestedText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth)
}

// ------------------------------------------------------------------ readers

async function read(format: SnapshotFormat, bytes: Uint8Array | string, opts?: SnapshotReadOptions, fs?: Fs): Promise<SnapshotEntry[]> {
  const got: SnapshotEntry[] = []
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes
  await format.read(fs ?? bytesFs(b), PATH, (e) => got.push(e), opts)
  return got
}

/** Read, expecting KV_CORRUPT naming the file and an offset, with nothing handed over; returns the message. */
async function corrupt(format: SnapshotFormat, bytes: Uint8Array | string, opts?: SnapshotReadOptions): Promise<string> {
  let visited = 0
  try {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes
    await format.read(bytesFs(b), PATH, () => visited++, opts)
  } catch (err) {
    if (!isStoreError(err, 'KV_CORRUPT')) throw err
    expect(visited).toBe(0)
    expect(err.message).toContain(PATH)
    expect(err.message).toMatch(/byte offset \d+/)
    return err.message
  }
  throw new Error('hostile snapshot was accepted')
}

/** Peak RSS growth (bytes) while `fn` runs, sampled every few ms. */
async function peakRssGrowth(fn: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().rss
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 2)
  try {
    await fn()
  } catch {
    // The caller checks the outcome separately; only memory is measured here.
  } finally {
    clearInterval(timer)
  }
  return Math.max(peak, process.memoryUsage().rss) - before
}

/** A gzip file of `head` then `mib` MiB of `fill` bytes, built from repeated gzip members (small on disk). */
function gzipBomb(head: Uint8Array, mib: number, fill = 0): Buffer {
  const member = gzipSync(Buffer.alloc(1 << 20, fill), { level: 9 })
  return Buffer.concat([gzipSync(head), ...new Array<Buffer>(mib).fill(member)])
}

const BAD_NUMBERS: [string, number][] = [
  ['2^53-1', Number.MAX_SAFE_INTEGER],
  ['MAX_SNAPSHOT_VERSION + 1', MAX_SNAPSHOT_VERSION + 1],
  ['5.5', 5.5],
  ['1e300', 1e300],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-1', -1],
]

// ------------------------------------------------------------------ 1. numbers and keys

describe('numbers read from a snapshot are validated like API input', () => {
  for (const [name, v] of BAD_NUMBERS) {
    it(`binary v2 refuses an entry version of ${name}, naming the entry offset`, async () => {
      const msg = await corrupt(binarySnapshot, binV2([binEntry('k', 'v', 0, v)]))
      expect(msg).toMatch(/byte offset 28: entry 0/)
      expect(msg).toMatch(/version/)
    })
  }

  it('binary v2 accepts versions up to MAX_SNAPSHOT_VERSION, and -0 as 0', async () => {
    const got = await read(binarySnapshot, binV2([binEntry('a', 1, 0, MAX_SNAPSHOT_VERSION), binEntry('b', 2, -0, -0)], { seq: MAX_SNAPSHOT_VERSION }))
    expect(got.map((e) => e.version)).toEqual([MAX_SNAPSHOT_VERSION, 0])
    expect(Object.is(got[1]?.version, 0) && Object.is(got[1]?.expiresAt, 0)).toBe(true)
  })

  for (const v of [Number.NaN, 5.5, -1, Number.POSITIVE_INFINITY, 2 ** 60]) {
    it(`binary v2 refuses an expiresAt of ${v}`, async () => {
      expect(await corrupt(binarySnapshot, binV2([binEntry('k', 'v', v, 1)]))).toMatch(/expiresAt/)
    })
  }

  it('binary v2 refuses a header seq that leaves no room to keep writing', async () => {
    expect(await corrupt(binarySnapshot, binV2([], { seq: Number.MAX_SAFE_INTEGER }))).toMatch(/seq/)
    expect(await corrupt(binarySnapshot, binV2([], { seq: MAX_SNAPSHOT_VERSION + 1 }))).toMatch(/seq/)
    expect(await read(binarySnapshot, binV2([], { seq: MAX_SNAPSHOT_VERSION }))).toEqual([])
  })

  it('binary refuses a header timestamp outside the Date range (v1 seconds × 1000 included)', async () => {
    await corrupt(binarySnapshot, binV2([], { timestamp: 2 ** 53 - 1 }))
    const v1 = Buffer.alloc(20)
    v1.writeUInt32LE(0x4b56db, 0)
    v1.writeUInt32LE(1, 4)
    v1.writeBigUInt64LE(BigInt(2 ** 52), 8)
    expect(await corrupt(binarySnapshot, v1)).toMatch(/timestamp/)
  })

  for (const text of ['9007199254740991', String(MAX_SNAPSHOT_VERSION + 1), '5.5', '1e300', '1e400', '-1', '"7"', 'null', nestedText(100_000)]) {
    it(`JSON refuses an entry version of ${text.slice(0, 24)}, naming the line`, async () => {
      const msg = await corrupt(jsonSnapshot, jsonV2([`"k":{"value":"v","version":${text}}`]))
      expect(msg).toMatch(/byte offset \d+ \(line 2\)/)
      expect(msg).toMatch(/version/)
    })
  }

  for (const text of ['5.5', '1e400', '-3', '"soon"']) {
    it(`JSON refuses an expiresAt of ${text}`, async () => {
      expect(await corrupt(jsonSnapshot, jsonV2([`"k":{"value":"v","expiresAt":${text}}`]))).toMatch(/expiresAt/)
    })
  }

  for (const seq of ['9007199254740991', '1e400', '2.5', nestedText(100_000)]) {
    it(`JSON refuses a header seq of ${seq.slice(0, 24)}`, async () => {
      expect(await corrupt(jsonSnapshot, jsonV2([], seq))).toMatch(/seq|version/)
    })
  }

  it('JSON refuses a numeric header timestamp outside the Date range', async () => {
    await corrupt(jsonSnapshot, '{"version":1,"timestamp":1e300,"data":{}}')
    await corrupt(jsonSnapshot, '{"version":1,"timestamp":0.5,"data":{}}')
  })

  it('JSON refuses non-finite numbers as values (1e400 parses to Infinity)', async () => {
    await corrupt(jsonSnapshot, jsonV2(['"k":1e400']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"value":-1e400,"version":2}']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"json","value":[1,{"x":1e400}]}']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"list","value":[1e999]}']))
    await corrupt(jsonSnapshot, '{"version":1,"data":{"k":1e400}}')
  })

  it('binary refuses non-finite numbers and Infinity inside JSON text', async () => {
    const nan = new ByteWriter()
    nan.u8(1)
    nan.f64(Number.NaN)
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(nan.finish()))]))
    const json = new ByteWriter()
    json.u8(2)
    json.string('[1e400]')
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(json.finish()))]))
  })

  it('refuses lone surrogates hidden in JSON escapes, in both formats', async () => {
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"json","value":{"\\ud800":1}}']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"hash","value":[["\\udc00",1]]}']))
    const json = new ByteWriter()
    json.u8(2)
    json.string('["\\ud800"]')
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(json.finish()))]))
  })

  it('refuses an empty key in every format', async () => {
    expect(await corrupt(jsonSnapshot, jsonV2(['"":"x"']))).toMatch(/empty key/)
    expect(await corrupt(jsonSnapshot, '{"version":1,"data":{"":"x"}}')).toMatch(/empty key/)
    expect(await corrupt(binarySnapshot, binV2([binEntry('', 'x')]))).toMatch(/empty key/)
  })

  it('refuses keys over maxKeyBytes (65,536 by default, or as given), accepting the limit itself', async () => {
    const at = 'k'.repeat(65_536)
    expect(await read(jsonSnapshot, jsonV2([`"${at}":1`]))).toHaveLength(1)
    expect(await read(binarySnapshot, binV2([binEntry(at, 1)]))).toHaveLength(1)
    expect(await corrupt(jsonSnapshot, jsonV2([`"${at}é":1`]))).toMatch(/longer than 65536/)
    expect(await corrupt(binarySnapshot, binV2([binEntry(`${at}k`, 1)]))).toMatch(/65536/)
    expect(await corrupt(jsonSnapshot, jsonV2(['"abcde":1']), { maxKeyBytes: 4 })).toMatch(/longer than 4/)
    expect(await corrupt(binarySnapshot, binV2([binEntry('abcde', 1)]), { maxKeyBytes: 4 })).toMatch(/4 bytes/)
    // UTF-8 bytes count, not UTF-16 units: 'é' is 2 bytes.
    expect(await corrupt(jsonSnapshot, jsonV2(['"ééé":1']), { maxKeyBytes: 5 })).toMatch(/longer than 5/)
  })

  it('bounds hash fields by maxKeyBytes, as the store does (empty fields allowed)', async () => {
    const { KvHash } = await import('../../src/collections.js')
    const ok = new KvHash([
      ['', 1],
      ['abcd', 2],
    ])
    expect(await read(binarySnapshot, binV2([binEntry('h', ok, 0, 1)]), { maxKeyBytes: 4 })).toHaveLength(1)
    expect(await read(jsonSnapshot, jsonV2(['"h":{"type":"hash","value":[["",1],["abcd",2]]}']), { maxKeyBytes: 4 })).toHaveLength(1)
    expect(await corrupt(binarySnapshot, binV2([binEntry('h', new KvHash([['abcde', 1]]), 0, 1)]), { maxKeyBytes: 4 })).toMatch(/hash field length 5/)
    expect(await corrupt(jsonSnapshot, jsonV2(['"h":{"type":"hash","value":[["abcde",1]]}']), { maxKeyBytes: 4 })).toMatch(/hash field longer than 4/)
  })

  it('binary refuses keys and strings that are not valid UTF-8, even with a valid CRC', async () => {
    for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x61, 0xe2, 0x82]]) {
      expect(await corrupt(binarySnapshot, binV2([binEntry(new Uint8Array(bad), 'v')]))).toMatch(/UTF-8/)
      const w = new ByteWriter()
      w.u8(0)
      w.u32(bad.length)
      w.bytes(new Uint8Array(bad))
      expect(await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(w.finish()))]))).toMatch(/UTF-8/)
    }
  })

  it('binary keeps a leading U+FEFF in keys and values (the strict decoder must not eat a BOM)', async () => {
    const got = await read(binarySnapshot, binV2([binEntry('\ufeffk', '\ufeffv', 0, 1), binEntry('\ufeff'.repeat(40), 'x'.repeat(100) + 'é', 0, 1)]))
    expect(got.map((e) => [e.key, e.value])).toEqual([
      ['\ufeffk', '\ufeffv'],
      ['\ufeff'.repeat(40), 'x'.repeat(100) + 'é'],
    ])
  })

  it('JSON refuses bytes that are not valid UTF-8, naming the offset and line', async () => {
    const text = Buffer.from(jsonV2(['"a":"x"', '"b":"yz"']), 'utf8')
    const at = text.indexOf('yz')
    text[at] = 0xff
    const msg = await corrupt(jsonSnapshot, text)
    expect(msg).toContain(`byte offset ${at} (line 3)`)
    expect(msg).toMatch(/UTF-8/)
    // Whole-file JSON (seed v1) too.
    await corrupt(jsonSnapshot, Buffer.concat([Buffer.from('{"version":1,"data":{"k":"'), Buffer.from([0xc3]), Buffer.from('"}}')]))
  })

  it('loadSnapshotFile takes the limits in a trailing options object', async () => {
    const fs = bytesFs(binV2([binEntry('abcde', 1, 0, 1)]))
    const loaded = await loadSnapshotFile(fs, PATH)
    expect(loaded.memtable.size).toBe(1)
    await expect(loadSnapshotFile(fs, PATH, undefined, 0, undefined, { maxKeyBytes: 4 })).rejects.toMatchObject({ code: 'KV_CORRUPT' })
    await expect(loadSnapshotFile(bytesFs(Buffer.from(jsonV2(['"k":"abcdef"']))), PATH, undefined, 0, undefined, { maxValueBytes: 5 })).rejects.toMatchObject({ code: 'KV_CORRUPT' })
    await expect(loadSnapshotFile(fs, PATH, undefined, 0, undefined, { maxKeyBytes: 0 })).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
  })

  it('loadSnapshotFile reports a version at the bound as maxVersion', async () => {
    const loaded = await loadSnapshotFile(bytesFs(binV2([binEntry('a', 1, 0, MAX_SNAPSHOT_VERSION)])), PATH)
    expect(loaded.maxVersion).toBe(MAX_SNAPSHOT_VERSION)
  })
})

// ------------------------------------------------------------------ 2. hostile input

describe('hostile nesting, lengths and lines', () => {
  // The deepest array nesting set() accepts, found from prepareValue itself.
  const deepest = ((): number => {
    let d = 1
    for (;;) {
      try {
        prepareValue(JSON.parse(nestedText(d + 1)))
      } catch {
        return d
      }
      d++
    }
  })()

  it('accepts exactly the nesting set() accepts, in both formats', async () => {
    expect(deepest).toBeGreaterThanOrEqual(MAX_DEPTH)
    const ok = JSON.parse(nestedText(deepest)) as unknown
    const json = await read(jsonSnapshot, jsonV2([`"k":{"type":"json","value":${nestedText(deepest)}}`]))
    expect(JSON.stringify(json[0]?.value)).toBe(JSON.stringify(ok))
    const bin = await read(binarySnapshot, binV2([binEntry('k', prepareValue(ok), 0, 1)]))
    expect(JSON.stringify(bin[0]?.value)).toBe(JSON.stringify(ok))
    const tooDeep = new ByteWriter()
    tooDeep.u8(2)
    tooDeep.string(nestedText(deepest + 1))
    expect(await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(tooDeep.finish()))]))).toMatch(/deeper than 256/)
    expect(await corrupt(jsonSnapshot, jsonV2([`"k":{"type":"json","value":${nestedText(deepest + 1)}}`]))).toMatch(/deeper than 256/)
  })

  it('refuses a value nested 100,000 deep with KV_CORRUPT (JSON lines, JSON whole-file, list element, binary)', async () => {
    const deep = nestedText(100_000)
    await corrupt(jsonSnapshot, jsonV2([`"k":{"type":"json","value":${deep}}`]))
    await corrupt(jsonSnapshot, jsonV2([`"k":{"type":"list","value":[{"type":"json","value":${deep}}]}`]))
    await corrupt(jsonSnapshot, jsonV2([`"k":{"type":"hash","value":[["f",{"type":"json","value":${deep}}]]}`]))
    await corrupt(jsonSnapshot, `{"version":1,"data":{"k":${deep}}}`)
    await corrupt(jsonSnapshot, `{"version":2,"data":\n{"k":{"type":"json","value":${deep}}}}`)
    // A deep value where a scalar belongs must not overflow the error message either.
    await corrupt(jsonSnapshot, jsonV2([`"k":{"type":${deep},"value":1}`]))
    await corrupt(jsonSnapshot, `{"version":${deep},"data":{}}`)
    const w = new ByteWriter()
    w.u8(2)
    w.string(`{"a":${deep}}`)
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, new Uint8Array(w.finish()))]))
  })

  it('bounds an entry line by maxJsonLineBytes before buffering it', async () => {
    const limits = { maxKeyBytes: 16, maxValueBytes: 1024 }
    const max = maxJsonLineBytes(limits)
    expect(max).toBe(6 * (16 + 1024) + 64 * 1024)
    const long = `"k":"${'a'.repeat(max)}"`
    const msg = await corrupt(jsonSnapshot, jsonV2(['"a":1', long]), limits)
    expect(msg).toMatch(/\(line 3\): line longer than/)
    // No newline at all after the header: refused once the carry passes the bound.
    await corrupt(jsonSnapshot, `${jsonV2([]).slice(0, -3)}"k":"${'a'.repeat(max + 10)}`, limits)
    // A string just under maxValueBytes fits, escaped as \u00XX (6 bytes per byte).
    const ctl = '\u0001'.repeat(1000)
    expect((await read(jsonSnapshot, jsonV2([`"k":${JSON.stringify(ctl)}`]), limits))[0]?.value).toBe(ctl)
  })

  it('refuses a 520 MiB entry line with KV_CORRUPT, not ERR_STRING_TOO_LONG', async () => {
    const head = Buffer.from(`${jsonV2([]).slice(0, -3)}"k":"`)
    const file = Buffer.concat([gzipBomb(head, 520, 0x61), gzipSync('"\n}}\n')])
    expect(file.length).toBeLessThan(2 << 20)
    const msg = await corrupt(jsonSnapshot, file)
    expect(msg).toMatch(/line longer than/)
  }, 60_000)

  it('refuses key, string, JSON, bytes and hash-field lengths over the limits before buffering them', async () => {
    const hostile: [string, Uint8Array][] = []
    const key = Buffer.concat([u32(0xfffffff0), Buffer.alloc(16)])
    hostile.push(['key', key])
    for (const [what, tag] of [
      ['string', 0],
      ['JSON text', 2],
      ['byte array', 3],
    ] as const) {
      hostile.push([what, Buffer.concat([u32(1), Buffer.from('k'), Buffer.from([tag]), u32(0xfffffff0), Buffer.alloc(16)])])
    }
    hostile.push(['hash field', Buffer.concat([u32(1), Buffer.from('k'), Buffer.from([8]), u32(1), u32(0xfffffff0), Buffer.alloc(16)])])
    for (const [what, e] of hostile) {
      const head = binV2([], { count: 1 }).subarray(0, 28)
      expect(await corrupt(binarySnapshot, Buffer.concat([head, e]))).toContain(`${what} length 4294967280`)
    }
    // At the limit: accepted; one over: refused.
    expect(await read(binarySnapshot, binV2([binEntry('k', 'x'.repeat(10), 0, 1)]), { maxValueBytes: 10 })).toHaveLength(1)
    expect(await corrupt(binarySnapshot, binV2([binEntry('k', 'x'.repeat(11), 0, 1)]), { maxValueBytes: 10 })).toMatch(/exceeds the limit of 10/)
    expect(await corrupt(binarySnapshot, binV2([binEntry('k', new Uint8Array(11), 0, 1)]), { maxValueBytes: 10 })).toMatch(/exceeds/)
    expect(await corrupt(jsonSnapshot, jsonV2([`"k":"${'x'.repeat(11)}"`]), { maxValueBytes: 10 })).toMatch(/longer than 10 UTF-8 bytes/)
    expect(await corrupt(jsonSnapshot, jsonV2([`"k":{"type":"bytes","value":"${Buffer.alloc(11).toString('base64')}"}`]), { maxValueBytes: 10 })).toMatch(/maxValueBytes/)
  })

  it('refuses a gzip file claiming a key length of 0xFFFFFFF0 at once, without buffering the stream', async () => {
    const head = Buffer.concat([binV2([], { count: 1 }).subarray(0, 28), u32(0xfffffff0)])
    const bomb = gzipBomb(head, 512)
    expect(bomb.length).toBeLessThan(1 << 20)
    let msg = ''
    const growth = await peakRssGrowth(async () => {
      msg = await corrupt(binarySnapshot, bomb)
    })
    expect(growth).toBeLessThan(256 << 20)
    expect(msg).toMatch(/key length 4294967280/)
  }, 60_000)

  it('fails lazily on forged entry and element counts, allocating nothing for them', async () => {
    await corrupt(binarySnapshot, binV2([binEntry('k', 1, 0, 1)], { count: 0xffffffff }))
    const list = Buffer.concat([Buffer.from([7]), u32(0xfffffff0), Buffer.from([6])])
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, list)]))
    const hash = Buffer.concat([Buffer.from([8]), u32(0xfffffff0), u32(1), Buffer.from('f'), Buffer.from([6])])
    await corrupt(binarySnapshot, binV2([binEntry('k', null, 0, 1, hash)]))
  })

  it('reads a JSON bytes value of 24 MB (the old base64 regex overflowed the stack)', async () => {
    const big = new Uint8Array(24_000_000).fill(7)
    const got = await read(jsonSnapshot, jsonV2([`"k":{"type":"bytes","value":"${Buffer.from(big).toString('base64')}"}`]))
    expect((got[0]?.value as Uint8Array).length).toBe(big.length)
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"bytes","value":"QQ="}']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"bytes","value":"Q==="}']))
    await corrupt(jsonSnapshot, jsonV2(['"k":{"type":"bytes","value":"QQ=A"}']))
  })

  it('assembles one big binary entry spanning many chunks in linear time', async () => {
    const items: unknown[] = []
    for (let i = 0; i < 300_000; i++) items.push(i % 7 === 0 ? `s${i}` : i)
    const { KvList } = await import('../../src/collections.js')
    const file = binV2([binEntry('list', new KvList(items), 0, 1)])
    const gz = gzipSync(file, { level: 1 })
    const started = performance.now()
    const got = await read(binarySnapshot, gz)
    expect([...(got[0]?.value as Iterable<unknown>)].length).toBe(items.length)
    // Re-parsing once per 16 KiB zlib chunk would be ~150 parses of the whole list; doubling makes it ~8.
    expect(performance.now() - started).toBeLessThan(10_000)
  }, 30_000)

  it('refuses to write a JSON line the reader would refuse', async () => {
    const written: Uint8Array[] = []
    const fs = {
      ...bytesFs(new Uint8Array()),
      open: () => 3,
      write: (_fd: number, buf: Uint8Array, off: number, len: number) => {
        written.push(buf.slice(off, off + len))
        return len
      },
      datasync: async () => {},
      fsyncDir: async () => {},
      unlink: () => {},
      rename: () => {},
    } as unknown as Fs
    const entries = [{ key: 'k', value: 'x'.repeat(200_000), expiresAt: 0, version: 1 }]
    await expect(writeSnapshotFile(fs, 'out.json', jsonSnapshot, { seq: 1, timestamp: 0, count: 1 }, entries, { maxKeyBytes: 16, maxValueBytes: 1024 })).rejects.toMatchObject({
      code: 'KV_VALUE_TOO_LARGE',
    })
    await expect(writeSnapshotFile(fs, 'out.json', jsonSnapshot, { seq: 1, timestamp: 0, count: 1 }, entries)).resolves.toBeDefined()
  })
})

// ------------------------------------------------------------------ 3. error classification

/** bytesFs whose reads fail from byte `failAt` on, and whose close may fail too. */
function faultyFs(bytes: Uint8Array, failAt: number, closeFails = false): Fs {
  const base = bytesFs(bytes)
  return {
    ...base,
    read: (fd, buf, offset, length, position) => {
      if (position >= failAt && position > 0) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', syscall: 'read' })
      return base.read(fd, buf, offset, length, position)
    },
    close: () => {
      if (closeFails) throw Object.assign(new Error('EBADF: bad file descriptor, close'), { code: 'EBADF', syscall: 'close' })
    },
  }
}

describe('no raw exception escapes a reader', () => {
  const many: Uint8Array[] = []
  for (let i = 0; i < 20_000; i++) many.push(binEntry(`key${i}`, `value${i}`, 0, i + 1))
  const bin = binV2(many)
  const json = Buffer.from(jsonV2(Array.from({ length: 20_000 }, (_, i) => `"key${i}":"value${i}"`)))

  for (const [format, bytes] of [
    [binarySnapshot, bin],
    [jsonSnapshot, json],
  ] as const) {
    for (const compress of [undefined, 'gzip'] as const) {
      const file = compress === undefined ? bytes : gzipSync(bytes)
      it(`${format.name}${compress === undefined ? '' : ` + ${compress}`}: a failing read is KV_IO with the cause`, async () => {
        const err = await read(format, file, undefined, faultyFs(file, Math.min(300_000, file.length))).catch((e: unknown) => e)
        expect(err).toMatchObject({ code: 'KV_IO' })
        let cause: unknown = (err as Error).cause
        while (cause instanceof Error && !('syscall' in cause)) cause = cause.cause
        expect(cause).toMatchObject({ code: 'EIO' })
      })
    }

    it(`${format.name}: a failing close after a full read does not replace the result`, async () => {
      expect(await read(format, bytes, undefined, faultyFs(bytes, Infinity, true))).toHaveLength(20_000)
    })
  }

  it('a damaged gzip or brotli stream is KV_CORRUPT', async () => {
    const gz = gzipSync(bin)
    const bad = Buffer.from(gz)
    for (let i = 100; i < 200; i++) bad[i] = 0xff
    expect(await corrupt(binarySnapshot, bad)).toMatch(/damaged gzip stream|damaged binary snapshot/)
    expect(await corrupt(jsonSnapshot, gzipSync(json).subarray(0, 5000))).toMatch(/damaged gzip stream at gzip-decompressed byte offset \d+/)
    const { brotliCompressSync } = await import('node:zlib')
    expect(await corrupt(binarySnapshot, brotliCompressSync(bin).subarray(0, 3000))).toMatch(/damaged brotli stream/)
  })

  it('a streamed gzip file of garbage after a real header is KV_CORRUPT', async () => {
    const z = createGzip()
    const parts: Buffer[] = []
    z.on('data', (c: Buffer) => parts.push(c))
    const done = new Promise((r) => z.on('end', r))
    z.end(Buffer.concat([binV2([]).subarray(0, 28), Buffer.alloc(1000, 0xff)]))
    await done
    await corrupt(binarySnapshot, Buffer.concat(parts))
  })
})
