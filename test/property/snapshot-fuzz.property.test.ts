// Fuzzing the snapshot readers: arbitrary bytes, and valid files damaged in every way a
// disk, a bad copy or a hostile author could (bit flips, truncation, inserted and
// deleted bytes, regions overwritten with 0xFF or with huge length-like numbers, with
// the binary CRC recomputed so only the field checks stand in the way), for JSON and
// binary, plain, gzip and brotli. A read must either succeed with data the store could
// have accepted from set(), or fail with KV_CORRUPT: never another error, never a hang,
// never memory sized by a number in the file.

import fc from 'fast-check'
import * as nfs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, brotliDecompressSync, constants as zc, crc32, gunzipSync, gzipSync } from 'node:zlib'
import { beforeAll, describe, expect, it } from 'vitest'
import { KvHash, KvList } from '../../src/collections.js'
import { isStoreError } from '../../src/errors.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { binarySnapshot } from '../../src/snapshot/binary.js'
import {
  checkExpiresAt,
  checkKey,
  checkVersion,
  type SnapshotCompression,
  type SnapshotEntry,
  type SnapshotFormat,
  type SnapshotReadOptions,
} from '../../src/snapshot/format.js'
import { loadSnapshotFile } from '../../src/snapshot/io.js'
import { jsonSnapshot } from '../../src/snapshot/json.js'
import { writeSnapshotFile } from '../../src/snapshot/write-file.js'
import { prepareValue } from '../../src/value-check.js'
import { bytesFs, numRuns } from '../helpers/values.js'

const PATH = 'fuzz.snap'
/** Small limits, so that mutations can actually reach them. */
const LIMITS = { maxKeyBytes: 64, maxValueBytes: 4096 }

const FORMATS: readonly SnapshotFormat[] = [jsonSnapshot, binarySnapshot]
const COMPRESSIONS: readonly (SnapshotCompression | undefined)[] = [undefined, 'gzip', 'brotli']

const sample: SnapshotEntry[] = [
  { key: 'a', value: 'x', expiresAt: 0, version: 0 },
  { key: 'bool', value: true, expiresAt: 0, version: 3 },
  { key: 'bytes', value: new Uint8Array([0, 1, 254, 255]), expiresAt: 1_800_000_000_000, version: 4 },
  { key: 'hash', value: new KvHash([['f', 1], ['', 'e'], ['__proto__', new Uint8Array([9])]]), expiresAt: 0, version: 5 },
  { key: 'json', value: Object.freeze({ n: [1, 2.5, -0, null, 'é'], o: Object.freeze({ deep: Object.freeze([Object.freeze([1])]) }) }), expiresAt: 0, version: 6 },
  { key: 'list', value: new KvList(['a', 2, false, null, Object.freeze([1]), new Uint8Array([7])]), expiresAt: 0, version: 7 },
  { key: 'neg0', value: -0, expiresAt: 0, version: 8 },
  { key: 'num', value: 1e300, expiresAt: 0, version: 9 },
  { key: 'null', value: null, expiresAt: 0, version: 0 },
  { key: 'ünï\u{1F600}', value: 'line\nbreak\u2028"q"\\\u0001', expiresAt: 5, version: 10 },
  { key: 'z'.repeat(60), value: 'v'.repeat(300), expiresAt: 0, version: 11 },
]

/** Valid files to damage, by `${name}/${compression}`: the bytes on disk and, when compressed, the inner bytes. */
const bases = new Map<string, { outer: Buffer; inner: Buffer }>()

/** The seed formats' files (read only, no checksum), built field by field. */
function seedBinaryV1(littleEndian: boolean): Buffer {
  const parts: Buffer[] = []
  const u32 = (v: number): void => {
    const b = Buffer.alloc(4)
    if (littleEndian) b.writeUInt32LE(v)
    else b.writeUInt32BE(v)
    parts.push(b)
  }
  u32(0x4b56db)
  u32(1)
  u32(littleEndian ? 1_705_314_600 : 0)
  u32(littleEndian ? 0 : 1_705_314_600)
  const es: [string, string][] = [
    ['user:1', 'Alice'],
    ['counter', '42'],
    ['ключ', '\u{1F600}'],
    ['empty', ''],
  ]
  u32(es.length)
  for (const [k, v] of es) {
    for (const s of [k, v]) {
      const b = Buffer.from(s, 'utf8')
      u32(b.length)
      parts.push(b)
    }
  }
  return Buffer.concat(parts)
}
const SEED_JSON_V1 = '{"version":1,"timestamp":"2024-01-15T10:30:00Z","data":{"user:1":"Alice","counter":"42","ключ":"\u{1F600}","__proto__":"x"}}'

/** Every base: name, the format that reads it, and the inner (uncompressed) bytes maker. */
const SEEDS: [string, SnapshotFormat, () => Buffer][] = [
  ['binary-v1-le', binarySnapshot, () => seedBinaryV1(true)],
  ['binary-v1-be', binarySnapshot, () => seedBinaryV1(false)],
  ['json-v1', jsonSnapshot, () => Buffer.from(SEED_JSON_V1, 'utf8')],
]

function inflate(b: Buffer, c: SnapshotCompression | undefined): Buffer {
  if (c === 'gzip') return gunzipSync(b)
  if (c === 'brotli') return brotliDecompressSync(b)
  return b
}

function deflate(b: Uint8Array, c: SnapshotCompression | undefined): Buffer {
  if (c === 'gzip') return gzipSync(b, { level: 1 })
  if (c === 'brotli') return brotliCompressSync(b, { params: { [zc.BROTLI_PARAM_QUALITY]: 1 } })
  return Buffer.from(b)
}

beforeAll(async () => {
  for (const [name, , make] of SEEDS) {
    for (const c of COMPRESSIONS) bases.set(`${name}/${c ?? 'plain'}`, { outer: deflate(make(), c), inner: make() })
  }
  const dir = nfs.mkdtempSync(join(tmpdir(), 'kv-snap-fuzz-'))
  try {
    for (const format of FORMATS) {
      for (const c of COMPRESSIONS) {
        const p = join(dir, `${format.name}-${c ?? 'plain'}`)
        await writeSnapshotFile(nodeFs, p, format, { seq: 12, timestamp: 1_705_314_600_123, count: sample.length }, sample, c === undefined ? {} : { compress: c })
        const outer = nfs.readFileSync(p)
        bases.set(`${format.name}/${c ?? 'plain'}`, { outer, inner: inflate(outer, c) })
      }
    }
  } finally {
    nfs.rmSync(dir, { recursive: true, force: true })
  }
})

// ------------------------------------------------------------------ checking an outcome

/** Why `v` is not a value set() (and the limits) would accept, or undefined. */
function badValue(v: unknown, inCollection: boolean): string | undefined {
  if (v instanceof KvList || v instanceof KvHash) {
    if (inCollection) return 'a collection in a collection'
    if (v instanceof KvList) {
      for (const x of v) {
        const bad = badValue(x, true)
        if (bad !== undefined) return bad
      }
    } else {
      for (const [f, x] of v) {
        if (!f.isWellFormed() || Buffer.byteLength(f) > LIMITS.maxKeyBytes) return `bad hash field ${JSON.stringify(f)}`
        const bad = badValue(x, true)
        if (bad !== undefined) return bad
      }
    }
    return undefined
  }
  try {
    prepareValue(v)
  } catch (err) {
    return (err as Error).message
  }
  if (typeof v === 'string' && Buffer.byteLength(v) > LIMITS.maxValueBytes) return 'string over maxValueBytes'
  if (v instanceof Uint8Array && v.length > LIMITS.maxValueBytes) return 'bytes over maxValueBytes'
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !Object.isFrozen(v)) return 'JSON data not frozen'
  return undefined
}

/** The entries of a successful read must all be in bounds. */
function expectValid(entries: readonly SnapshotEntry[], meta: { seq: number; timestamp: number; count: number }): void {
  expect(checkVersion(meta.seq, 'seq')).toBeUndefined()
  expect(Number.isSafeInteger(meta.timestamp)).toBe(true)
  expect(meta.count).toBe(entries.length)
  for (const e of entries) {
    expect(checkKey(e.key, LIMITS.maxKeyBytes)).toBeUndefined()
    expect(checkVersion(e.version)).toBeUndefined()
    expect(checkExpiresAt(e.expiresAt)).toBeUndefined()
    expect(badValue(e.value, false)).toBeUndefined()
  }
}

/** Read `bytes` with `format`: valid data or KV_CORRUPT, nothing else. */
async function readOrCorrupt(format: SnapshotFormat, bytes: Uint8Array, opts: SnapshotReadOptions = LIMITS): Promise<'ok' | 'corrupt'> {
  const got: SnapshotEntry[] = []
  let meta: { seq: number; timestamp: number; count: number }
  try {
    meta = await format.read(bytesFs(bytes), PATH, (e) => got.push(e), opts)
  } catch (err) {
    if (!isStoreError(err, 'KV_CORRUPT')) throw new Error(`a read threw ${String(err)} (${(err as Error)?.name})`, { cause: err })
    expect(got).toEqual([])
    expect(err.message).toContain(PATH)
    return 'corrupt'
  }
  expectValid(got, meta)
  return 'ok'
}

/** Load `bytes` as the store does (format detected): valid data or KV_CORRUPT. */
async function loadOrCorrupt(bytes: Uint8Array): Promise<void> {
  try {
    const loaded = await loadSnapshotFile(bytesFs(bytes), PATH, undefined, 0, undefined, LIMITS)
    expect(checkVersion(loaded.maxVersion)).toBeUndefined()
    loaded.memtable.forEach({}, (k, v, ver, exp) => {
      expect(checkKey(k, LIMITS.maxKeyBytes)).toBeUndefined()
      expect(checkVersion(ver)).toBeUndefined()
      expect(checkExpiresAt(exp)).toBeUndefined()
      expect(badValue(v, false)).toBeUndefined()
    })
  } catch (err) {
    if (!isStoreError(err, 'KV_CORRUPT')) throw new Error(`a load threw ${String(err)} (${(err as Error)?.name})`, { cause: err })
  }
}

// ------------------------------------------------------------------ damage

type Mutation =
  | { t: 'flip'; at: number; bit: number }
  | { t: 'truncate'; at: number }
  | { t: 'insert'; at: number; bytes: Uint8Array }
  | { t: 'delete'; at: number; n: number }
  | { t: 'ff'; at: number; n: number }
  | { t: 'u32'; at: number; v: number }
  | { t: 'f64'; at: number; v: number }

const pos = fc.nat({ max: 1 << 16 })
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ t: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }),
  fc.record({ t: fc.constant('truncate' as const), at: pos }),
  fc.record({ t: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ t: fc.constant('delete' as const), at: pos, n: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ t: fc.constant('ff' as const), at: pos, n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ t: fc.constant('u32' as const), at: pos, v: fc.constantFrom(0xffffffff, 0xfffffff0, 0x7fffffff, 0x80000000, 0x01000000, 65_537, 4097, 0) }),
  fc.record({
    t: fc.constant('f64' as const),
    at: pos,
    v: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 5.5, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e300, -0),
  }),
)

function mutate(src: Uint8Array, m: Mutation): Buffer {
  const b = Buffer.from(src)
  const at = b.length === 0 ? 0 : m.at % (b.length + 1)
  switch (m.t) {
    case 'flip':
      if (at < b.length) b[at] = (b[at] as number) ^ (1 << m.bit)
      return b
    case 'truncate':
      return b.subarray(0, at)
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)])
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)])
    case 'ff':
      b.fill(0xff, at, Math.min(b.length, at + m.n))
      return b
    case 'u32':
      if (at + 4 <= b.length) b.writeUInt32LE(m.v, at)
      return b
    case 'f64':
      if (at + 8 <= b.length) b.writeDoubleLE(m.v, at)
      return b
  }
}

/** Recompute a binary v2 file's CRC trailer, so the damage must be caught by the field checks. */
function fixCrc(b: Buffer): Buffer {
  if (b.length < 32 || b.readUInt32LE(4) !== 2) return b
  const out = Buffer.from(b)
  out.writeUInt32LE(crc32(out.subarray(0, out.length - 4)), out.length - 4)
  return out
}

// ------------------------------------------------------------------ properties

const RUN_TIMEOUT_MS = 10_000

describe('snapshot readers under fuzzing', () => {
  it('arbitrary bytes load as valid data or fail with KV_CORRUPT', async () => {
    const prefixes = [
      Buffer.alloc(0),
      Buffer.from([0xdb, 0x56, 0x4b, 0x00, 2, 0, 0, 0]),
      Buffer.from([0xdb, 0x56, 0x4b, 0x00, 1, 0, 0, 0]),
      Buffer.from([0x00, 0x4b, 0x56, 0xdb, 0, 0, 0, 1]),
      Buffer.from('{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":1,"data":{\n'),
      Buffer.from('{"version":1,"data":{'),
    ]
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: prefixes.length - 1 }), fc.uint8Array({ maxLength: 512 }), fc.constantFrom(...COMPRESSIONS), async (p, tail, c) => {
        const bytes = deflate(Buffer.concat([prefixes[p] as Buffer, tail]), c)
        await loadOrCorrupt(bytes)
        await readOrCorrupt(binarySnapshot, bytes)
        await readOrCorrupt(jsonSnapshot, bytes)
      }),
      { numRuns: numRuns(150), timeout: RUN_TIMEOUT_MS },
    )
  }, 60_000)

  const targets: [string, SnapshotFormat][] = [...FORMATS.map((f): [string, SnapshotFormat] => [f.name, f]), ...SEEDS.map(([n, f]): [string, SnapshotFormat] => [n, f])]
  for (const [baseName, format] of targets) {
    for (const c of COMPRESSIONS) {
      const seed = baseName !== format.name
      // Seeds get fewer runs: they are small and share the decoders with v2.
      const runs = numRuns(seed ? 40 : c === undefined ? 200 : 80)
      const name = `${baseName}${c === undefined ? '' : ` + ${c}`}`
      it(`${name}: damaged files read as valid data or fail with KV_CORRUPT`, async () => {
        const base = bases.get(`${baseName}/${c ?? 'plain'}`)
        if (base === undefined) throw new Error('no base file')
        expect(await readOrCorrupt(format, base.outer)).toBe('ok')
        await fc.assert(
          fc.asyncProperty(
            fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
            // inner: damage the decompressed bytes and recompress (reaches the decoder); outer: damage the file as is.
            fc.constantFrom('inner', 'inner+crc', 'outer'),
            async (ms, layer) => {
              let bytes: Buffer
              if (layer === 'outer' || c === undefined) {
                bytes = ms.reduce<Buffer>((b, m) => mutate(b, m), base.outer)
                if (layer === 'inner+crc' && format === binarySnapshot) bytes = fixCrc(bytes)
              } else {
                let inner = ms.reduce<Buffer>((b, m) => mutate(b, m), base.inner)
                if (layer === 'inner+crc' && format === binarySnapshot) inner = fixCrc(inner)
                bytes = deflate(inner, c)
              }
              await readOrCorrupt(format, bytes)
            },
          ),
          { numRuns: runs, timeout: RUN_TIMEOUT_MS },
        )
      }, 60_000)
    }
  }
})

// ------------------------------------------------------------------ memory

/** Peak RSS growth (bytes) while `fn` runs, sampled every few ms. */
async function peakRssGrowth(fn: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().rss
  let peak = before
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 2)
  try {
    await fn()
  } finally {
    clearInterval(timer)
  }
  return Math.max(peak, process.memoryUsage().rss) - before
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}

/** `head` then `mib` MiB of zeros: gzip as repeated members (tiny on disk), brotli compressed fast. */
function bomb(head: Uint8Array, mib: number, c: 'gzip' | 'brotli'): Buffer {
  if (c === 'brotli') return brotliCompressSync(Buffer.concat([head, Buffer.alloc(mib << 20)]), { params: { [zc.BROTLI_PARAM_QUALITY]: 1 } })
  const member = gzipSync(Buffer.alloc(1 << 20), { level: 9 })
  return Buffer.concat([gzipSync(head), ...new Array<Buffer>(mib).fill(member)])
}

describe('declared sizes never size an allocation', () => {
  const header = (count: number): Buffer => {
    const h = Buffer.alloc(28)
    h.writeUInt32LE(0x4b56db, 0)
    h.writeUInt32LE(2, 4)
    h.writeUInt32LE(count, 16)
    return h
  }
  const key = Buffer.concat([u32(1), Buffer.from('k')])
  const cases: [string, Buffer][] = [
    ['key length', Buffer.concat([header(1), u32(0xfffffff0)])],
    ['string length', Buffer.concat([header(1), key, Buffer.from([0]), u32(0xfffffff0)])],
    ['JSON text length', Buffer.concat([header(1), key, Buffer.from([2]), u32(0xfffffff0)])],
    ['byte array length', Buffer.concat([header(1), key, Buffer.from([3]), u32(0xfffffff0)])],
    ['hash field length', Buffer.concat([header(1), key, Buffer.from([8]), u32(5), u32(0xfffffff0)])],
  ]

  for (const c of ['gzip', 'brotli'] as const) {
    for (const [what, head] of cases) {
      it(`${c}: a huge ${what} in a small file is refused at once, with bounded memory`, async () => {
        const file = bomb(head, c === 'gzip' ? 512 : 64, c)
        expect(file.length).toBeLessThan(1 << 20)
        let outcome = ''
        const growth = await peakRssGrowth(async () => {
          outcome = await readOrCorrupt(binarySnapshot, file, {})
        })
        expect(growth).toBeLessThan(256 << 20)
        expect(outcome).toBe('corrupt')
      }, 60_000)
    }
  }

  it('forged entry, list and hash counts with little data behind them fail lazily', async () => {
    const small: Buffer[] = [
      Buffer.concat([header(0xffffffff), key, Buffer.from([6]), Buffer.alloc(16)]),
      Buffer.concat([header(1), key, Buffer.from([7]), u32(0xfffffff0), Buffer.alloc(64, 6)]),
      Buffer.concat([header(1), key, Buffer.from([8]), u32(0xfffffff0), u32(1), Buffer.from('f'), Buffer.from([6])]),
    ]
    for (const c of ['gzip', 'brotli'] as const) {
      for (const b of small) {
        const growth = await peakRssGrowth(async () => {
          expect(await readOrCorrupt(binarySnapshot, deflate(b, c), {})).toBe('corrupt')
        })
        expect(growth).toBeLessThan(256 << 20)
      }
    }
  })

  it('a JSON line that never ends is refused at the line bound, with bounded memory', async () => {
    const head = Buffer.from('{"version":2,"timestamp":"2024-01-15T10:30:00.000Z","seq":1,"count":1,"data":{\n"k":"')
    const file = bomb(head, 512, 'gzip')
    let outcome = ''
    const growth = await peakRssGrowth(async () => {
      // 8 MiB values: the line bound is ~48 MiB, far below the 512 MiB in the file.
      outcome = await readOrCorrupt(jsonSnapshot, file, { maxValueBytes: 8 << 20 })
    })
    expect(growth).toBeLessThan(256 << 20)
    expect(outcome).toBe('corrupt')
  }, 60_000)
})
