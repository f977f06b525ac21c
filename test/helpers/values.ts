// Arbitraries and comparison helpers for codec and snapshot tests.

import fc from 'fast-check'
import { KvHash, KvList } from '../../src/collections.js'
import type { Fs } from '../../src/fs/fs.js'
import { MAX_SNAPSHOT_VERSION, type SnapshotEntry } from '../../src/snapshot/format.js'

/** fast-check runs: `FC_NUM_RUNS` when set, else `fallback`. */
export function numRuns(fallback: number): number {
  const n = Number.parseInt(process.env.FC_NUM_RUNS ?? '', 10)
  return Number.isFinite(n) && n > 0 ? n : fallback
}

/** Well-formed strings over all of Unicode (astral, U+FFFF, controls), plus the awkward ones. */
export const textArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string(),
  fc.constantFrom('', '__proto__', 'constructor', '\uffff', '\u{1F600}', 'a\u0000b', '"\\\n\u2028'),
)

export const numberArb: fc.Arbitrary<number> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(-0, 0, 0.1, -1.5, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, Number.MAX_VALUE),
)

export const scalarArb: fc.Arbitrary<unknown> = fc.oneof(textArb, numberArb, fc.boolean(), fc.constant(null))

/** JSON data as the store keeps it: an object or array (never a bare primitive). */
export const jsonDataArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.array(fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }), { maxLength: 5 }),
  fc.dictionary(textArb, fc.jsonValue({ stringUnit: 'binary', maxDepth: 3 }), { maxKeys: 5 }),
)

export const bytesArb: fc.Arbitrary<Uint8Array> = fc.uint8Array({ maxLength: 64 })

/** A value that may sit in a list or hash. */
export const elementArb: fc.Arbitrary<unknown> = fc.oneof({ weight: 4, arbitrary: scalarArb }, { weight: 1, arbitrary: jsonDataArb }, { weight: 1, arbitrary: bytesArb })

export const listArb: fc.Arbitrary<KvList> = fc.array(elementArb, { maxLength: 12 }).map((xs) => new KvList(xs))

export const hashArb: fc.Arbitrary<KvHash> = fc
  .uniqueArray(fc.tuple(textArb, elementArb), { selector: ([f]) => f, maxLength: 8 })
  .map((pairs) => new KvHash(pairs))

/** Any stored value. */
export const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: elementArb },
  { weight: 1, arbitrary: listArb },
  { weight: 1, arbitrary: hashArb },
  { weight: 1, arbitrary: fc.string({ minLength: 2000, maxLength: 5000 }) },
)

/** Expiry / version numbers: mostly 0, else an integer a reader accepts (versions leave room to keep writing). */
const metaNumberArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: MAX_SNAPSHOT_VERSION }))

/** Entries with unique non-empty keys in UTF-16 code unit order. */
export const entriesArb: fc.Arbitrary<SnapshotEntry[]> = fc
  .uniqueArray(fc.record({ key: textArb.filter((k) => k !== ''), value: valueArb, expiresAt: metaNumberArb, version: metaNumberArb }), { selector: (e) => e.key, maxLength: 25 })
  .map((es) => es.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)))

/** A structural form of a value for equality checks (-0, bytes, collections, JSON made explicit). */
export function canon(v: unknown): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? ['-0'] : v
  if (v === null || typeof v !== 'object') return v
  if (v instanceof Uint8Array) return ['bytes', Array.from(v), Object.getPrototypeOf(v) === Uint8Array.prototype]
  if (v instanceof KvList) return ['list', [...v].map(canon)]
  if (v instanceof KvHash) return ['hash', [...v].map(([f, x]) => [f, canon(x)])]
  return ['json', JSON.stringify(v)]
}

/** Entries in {@link canon} form. */
export function canonEntries(es: readonly SnapshotEntry[]): unknown[] {
  return es.map((e) => ({ key: e.key, value: canon(e.value), expiresAt: e.expiresAt, version: e.version }))
}

/** A read-only {@link Fs} serving `bytes` at every path (no disk I/O: keeps damage sweeps fast). */
export function bytesFs(bytes: Uint8Array): Fs {
  const no = (): never => {
    throw Object.assign(new Error('read-only test fs'), { code: 'EROFS' })
  }
  return {
    open: (_path, flags) => (flags === 'r' ? 3 : no()),
    close: () => {},
    read: (_fd, buf, offset, length, position) => {
      const n = Math.max(0, Math.min(length, bytes.length - position))
      buf.set(bytes.subarray(position, position + n), offset)
      return n
    },
    write: no,
    datasync: async () => no(),
    fsyncDir: async () => no(),
    ftruncate: no,
    fstat: () => ({ size: bytes.length, isDirectory: false, mtimeMs: 0 }),
    stat: () => ({ size: bytes.length, isDirectory: false, mtimeMs: 0 }),
    rename: no,
    unlink: no,
    readdir: no,
    mkdir: no,
    rmdir: no,
    readFile: () => Buffer.from(bytes),
  }
}
