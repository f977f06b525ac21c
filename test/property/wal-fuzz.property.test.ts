// Fuzzing recovery with hostile segments: arbitrary bytes, and valid WALs mutated (bit flips,
// truncations, insertions, 0xFF / zero fills, huge lengths, swapped, duplicated and forged
// records, dropped and misnamed segments). Opening in any mode either succeeds with a state
// some prefix of the writes produced (strict, point-in-time) or fails with KV_CORRUPT: never
// another error, never a hang, never an allocation sized by a length read from disk.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/codec/bytes.js'
import { decodeOps, encodeOps, type Op } from '../../src/codec/ops.js'
import { KvHash, KvList } from '../../src/collections.js'
import { StoreError } from '../../src/errors.js'
import type { RecoveryMode } from '../../src/options.js'
import { RECORD_OPS } from '../../src/codec/ops.js'
import { recoverDirectory, type RecoveryParams } from '../../src/recovery.js'
import {
  MAX_PAYLOAD_BYTES,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  crc32Range,
  encodeRecord,
  encodeSegmentHeader,
  recordFrameSize,
} from '../../src/wal/format.js'
import { scanSegment } from '../../src/wal/reader.js'
import { parseSegmentFileName, segmentPath } from '../../src/wal/segments.js'
import { WalWriter } from '../../src/wal/writer.js'
import { MemFs } from '../helpers/mem-fs.js'
import { numRuns } from '../helpers/values.js'

const DIR = '/db'
const MODES: readonly RecoveryMode[] = ['strict', 'point-in-time', 'salvage']
const TIMEOUT = 30_000

/** The store's typing rules: a list or hash op on a key holding something else throws KV_CORRUPT (store.ts `#mutable`). */
class Model {
  state = new Map<string, unknown>()

  params(fs: MemFs, mode: RecoveryMode): RecoveryParams {
    return {
      fs,
      dir: DIR,
      mode,
      sync: 'never',
      onProgress: () => {},
      loadSnapshot: () => {
        this.state = new Map()
      },
      applyOps: (ops: Op[]) => {
        for (const op of ops) this.#apply(op)
      },
    }
  }

  #mutable<T>(key: string, make: () => T, is: (v: unknown) => v is T): T {
    const cur = this.state.get(key)
    if (cur === undefined) {
      const fresh = make()
      this.state.set(key, fresh)
      return fresh
    }
    if (!is(cur)) throw new StoreError('KV_CORRUPT', `WAL op for ${JSON.stringify(key)} does not match the stored type`)
    return cur
  }

  #list(key: string): unknown[] {
    return this.#mutable(key, () => [] as unknown[], (v): v is unknown[] => Array.isArray(v))
  }

  #hash(key: string): Map<string, unknown> {
    return this.#mutable(key, () => new Map<string, unknown>(), (v): v is Map<string, unknown> => v instanceof Map)
  }

  #apply(op: Op): void {
    switch (op.t) {
      case 'set':
        this.state.set(op.key, op.value instanceof KvList || op.value instanceof KvHash ? 'collection' : op.value)
        return
      case 'del':
        this.state.delete(op.key)
        return
      case 'expire':
        return
      case 'clear':
        this.state.clear()
        return
      case 'push': {
        const l = this.#list(op.key)
        for (const v of op.values) if (op.left) l.unshift(v)
        else l.push(v)
        return
      }
      case 'pop': {
        const l = this.#list(op.key)
        for (let i = 0; i < op.count && l.length > 0; i++) if (op.left) l.shift()
        else l.pop()
        if (l.length === 0) this.state.delete(op.key)
        return
      }
      case 'lset':
      case 'ltrim':
        this.#list(op.key)
        return
      case 'hset': {
        const h = this.#hash(op.key)
        op.fields.forEach((f, i) => h.set(f, op.values[i]))
        return
      }
      case 'hdel': {
        const h = this.#hash(op.key)
        for (const f of op.fields) h.delete(f)
        if (h.size === 0) this.state.delete(op.key)
        return
      }
    }
  }

  /** A comparable digest of the state. */
  digest(): string {
    const norm = (v: unknown): unknown =>
      v instanceof Map ? ['hash', [...v].sort(([a], [b]) => (a < b ? -1 : 1))] : v instanceof Uint8Array ? ['bytes', [...v]] : v
    return JSON.stringify([...this.state].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, norm(v)]))
  }
}

// Writes a store could make: values on k*, lists on l*, hashes on h*, so the original WAL
// always applies; only damage or forgery can make a record not fit the state.
const valueArb = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('set' as const), key: fc.constantFrom('k0', 'k1', 'k2'), value: valueArb, expiresAt: fc.constant(0) }),
  fc.record({ t: fc.constant('del' as const), key: fc.constantFrom('k0', 'k1', 'l0', 'h0') }),
  fc.record({ t: fc.constant('push' as const), key: fc.constantFrom('l0', 'l1'), left: fc.boolean(), values: fc.array(valueArb, { minLength: 1, maxLength: 3 }) }),
  fc.record({ t: fc.constant('pop' as const), key: fc.constantFrom('l0', 'l1'), left: fc.boolean(), count: fc.nat({ max: 3 }) }),
  fc.record({ t: fc.constant('hset' as const), key: fc.constant('h0'), fields: fc.constant<string[]>(['f']), values: fc.array(valueArb, { minLength: 1, maxLength: 1 }) }),
)
const batchesArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 14 })

function payloadOf(ops: Op[]): Uint8Array {
  const w = new ByteWriter()
  encodeOps(ops, w)
  return new Uint8Array(w.finish())
}

/** Write `batches` as records 1..; returns the digest of the state after each prefix (index = seq). */
async function writeWal(fs: MemFs, batches: Op[][], maxSegmentBytes: number | undefined, salt: number): Promise<string[]> {
  const w = await WalWriter.create(fs, DIR, 1, 0, { sync: 'never', newSalt: () => salt++, ...(maxSegmentBytes === undefined ? {} : { maxSegmentBytes }) })
  const model = new Model()
  const digests = [model.digest()]
  for (let i = 0; i < batches.length; i++) {
    const ops = batches[i] as Op[]
    await w.append(i + 1, RECORD_OPS, payloadOf(ops))
    model.params(fs, 'strict').applyOps(ops, i + 1)
    digests.push(model.digest())
  }
  await w.close()
  return digests
}

function segmentFiles(fs: MemFs): string[] {
  return fs
    .readdir(DIR)
    .filter((n) => parseSegmentFileName(n) !== undefined)
    .map((n) => `${DIR}/${n}`)
}

/** Frames of the records in a segment, by offset (a valid segment: the scan sees them all). */
function framesOf(bytes: Buffer): Array<{ offset: number; end: number }> {
  const out: Array<{ offset: number; end: number }> = []
  scanSegment(bytes, (r) => out.push({ offset: r.offset, end: r.offset + recordFrameSize(r.payload.length) }), { mode: 'salvage' })
  return out
}

type Mutation =
  | { kind: 'flip'; bits: number[] }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'fill'; at: number; len: number; value: number }
  | { kind: 'hugeLength'; record: number; len: number; fixCrc: boolean }
  | { kind: 'swap'; a: number; b: number }
  | { kind: 'duplicate'; record: number }
  | { kind: 'forge'; record: number; payload: Uint8Array | 'mismatch' }
  | { kind: 'dropSegment' }
  | { kind: 'misname'; to: number }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  fc.record({ kind: fc.constant('fill' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }), value: fc.constantFrom(0xff, 0x00, 0x5a) }),
  fc.record({
    kind: fc.constant('hugeLength' as const),
    record: fc.nat(),
    len: fc.constantFrom(0xffff_ffff, 0xffff_fff0, 2 ** 31, MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES, 100_000),
    fixCrc: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), record: fc.nat() }),
  fc.record({ kind: fc.constant('forge' as const), record: fc.nat(), payload: fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constant('mismatch' as const)) }),
  fc.constant({ kind: 'dropSegment' as const }),
  fc.record({ kind: fc.constant('misname' as const), to: fc.integer({ min: 0, max: 20 }) }),
)

/** Apply `m` to segment file `path`; returns true when it forged a checksummed record (the state need not be a prefix then). */
function mutate(fs: MemFs, path: string, m: Mutation): boolean {
  const bytes = fs.readFile(path)
  const frames = framesOf(bytes)
  const salt = bytes.length >= 16 ? bytes.readUInt32LE(12) : 0
  const put = (b: Uint8Array): void => fs.putFile(path, b)
  const pick = (i: number): { offset: number; end: number } | undefined => (frames.length === 0 ? undefined : frames[i % frames.length])
  switch (m.kind) {
    case 'flip':
      for (const bit of m.bits) {
        const i = (bit >> 3) % Math.max(1, bytes.length)
        if (i < bytes.length) bytes[i] = (bytes[i] as number) ^ (1 << (bit & 7))
      }
      put(bytes)
      return false
    case 'truncate':
      put(bytes.subarray(0, m.at % (bytes.length + 1)))
      return false
    case 'insert': {
      const at = m.at % (bytes.length + 1)
      put(Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]))
      return false
    }
    case 'fill': {
      const at = m.at % Math.max(1, bytes.length)
      bytes.fill(m.value, at, Math.min(bytes.length, at + m.len))
      put(bytes)
      return false
    }
    case 'hugeLength': {
      const f = pick(m.record)
      if (f === undefined) return false
      bytes.writeUInt32LE(m.len >>> 0, f.offset + 4)
      // With the header CRC redone, the length is "verified": only the bounds protect the reader.
      if (m.fixCrc) bytes.writeUInt32LE(crc32Range(bytes, f.offset + 4, f.offset + RECORD_HEADER_SIZE, salt), f.offset)
      put(bytes)
      return false
    }
    case 'swap': {
      const a = pick(m.a)
      const b = pick(m.b)
      if (a === undefined || b === undefined || a.offset === b.offset) return false
      const [x, y] = a.offset < b.offset ? [a, b] : [b, a]
      put(Buffer.concat([bytes.subarray(0, x.offset), bytes.subarray(y.offset, y.end), bytes.subarray(x.end, y.offset), bytes.subarray(x.offset, x.end), bytes.subarray(y.end)]))
      return false
    }
    case 'duplicate': {
      const f = pick(m.record)
      if (f === undefined) return false
      put(Buffer.concat([bytes.subarray(0, f.end), bytes.subarray(f.offset, f.end), bytes.subarray(f.end)]))
      return false
    }
    case 'forge': {
      const f = pick(m.record)
      if (f === undefined) return false
      const seq = bytes.readUInt32LE(f.offset + 8) + bytes.readUInt32LE(f.offset + 12) * 2 ** 32
      // 'mismatch': decodes and is well-formed, but pushes onto a key that holds a value.
      const p = m.payload === 'mismatch' ? payloadOf([{ t: 'set', key: 'k9', value: 1, expiresAt: 0 }, { t: 'push', key: 'k9', left: true, values: [1] }]) : m.payload
      const frame = Buffer.alloc(recordFrameSize(p.length))
      encodeRecord(frame, 0, salt, seq, RECORD_OPS, p)
      put(Buffer.concat([bytes.subarray(0, f.offset), frame, bytes.subarray(f.end)]))
      return true
    }
    case 'dropSegment':
      fs.unlink(path)
      return false
    case 'misname': {
      if (bytes.length < SEGMENT_HEADER_SIZE) return false
      const n = parseSegmentFileName(path.slice(DIR.length + 1)) as number
      if (m.to === n) return false
      // Keep the base-seq words as they are (an earlier mutation may have made them out of
      // range, which the reader must refuse); only the number and the checksum change.
      const header = encodeSegmentHeader(m.to, salt, 0)
      bytes.copy(header, 16, 16, 24)
      header.writeUInt32LE(crc32Range(header, 0, 24, 0), 24)
      header.copy(bytes)
      put(bytes)
      return false
    }
  }
}

/** What recovering a copy of `fs` in `mode` gave: the state digest and last seq, or the error code. */
async function recoverCopy(fs: MemFs, mode: RecoveryMode): Promise<{ digest: string; lastSeq: number } | { code: string }> {
  const model = new Model()
  let rec
  try {
    rec = await recoverDirectory(model.params(fs, mode))
  } catch (err) {
    if (!(err instanceof StoreError)) throw new Error(`${mode}: not a StoreError: ${String(err)}`, { cause: err })
    return { code: err.code }
  }
  await rec.writer.close()
  return { digest: model.digest(), lastSeq: rec.lastSeq }
}

/**
 * Recover `damaged` in every mode (each on its own copy) and check the outcome; `digests[n]` is
 * the state after n writes, `exact` when the state must be one of them.
 */
async function checkAllModes(damaged: MemFs, digests: readonly string[], exact: boolean): Promise<void> {
  for (const mode of MODES) {
    const fs = damaged.crash('keep-all')
    const first = await recoverCopy(fs, mode)
    if ('code' in first) {
      expect(first.code, mode).toBe('KV_CORRUPT')
      continue
    }
    if (exact && mode !== 'salvage') expect(first.digest, `${mode}: state after seq ${first.lastSeq}`).toBe(digests[first.lastSeq])
    // Once recovery repaired the directory, opening again in the same mode gives the same state.
    expect(await recoverCopy(fs, mode), `${mode}, reopened`).toEqual(first)
    // After point-in-time recovery the directory is clean: strict opens it to the same state.
    if (mode === 'point-in-time') expect(await recoverCopy(fs, 'strict'), 'strict after point-in-time').toEqual(first)
  }
}

function newFs(): MemFs {
  const fs = new MemFs()
  fs.mkdir(DIR)
  fs.syncAll()
  return fs
}

describe('WAL recovery fuzz', () => {
  it(
    'arbitrary bytes as a segment: opens empty or fails with KV_CORRUPT, in every mode',
    async () => {
      const headerArb = fc.oneof(
        fc.constant(new Uint8Array(0)),
        fc.tuple(fc.integer({ min: 0, max: 3 }), fc.nat(), fc.nat({ max: 1000 })).map(([n, salt, base]) => new Uint8Array(encodeSegmentHeader(n, salt, base))),
      )
      await fc.assert(
        fc.asyncProperty(headerArb, fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 3 }), async (header, body, number) => {
          const fs = newFs()
          fs.putFile(segmentPath(DIR, number), Buffer.concat([header, body]))
          // Nothing was written, so the only acceptable state is the empty one.
          await checkAllModes(fs, [new Model().digest()], true)
        }),
        { numRuns: numRuns(150) },
      )
    },
    TIMEOUT,
  )

  it(
    'mutated valid WALs: a prefix of the writes or KV_CORRUPT, in every mode',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          batchesArb,
          fc.option(fc.integer({ min: 80, max: 400 }), { nil: undefined }),
          fc.nat(),
          fc.array(fc.tuple(fc.nat(), mutationArb), { minLength: 1, maxLength: 3 }),
          async (batches, maxSegmentBytes, salt, mutations) => {
            const fs = newFs()
            const digests = await writeWal(fs, batches, maxSegmentBytes, salt)
            let forged = false
            for (const [which, m] of mutations) {
              const files = segmentFiles(fs)
              if (files.length === 0) break
              forged = mutate(fs, files[which % files.length] as string, m) || forged
            }
            await checkAllModes(fs, digests, !forged)
          },
        ),
        {
          numRuns: numRuns(150),
          // A header filled with 0xff and then renamed: its base seq (2^64 - 1) is out of range.
          examples: [
            [
              [[{ t: 'set', key: 'k0', value: 0, expiresAt: 0 }]],
              undefined,
              0,
              [
                [0, { kind: 'fill', at: 0, len: 24, value: 255 }],
                [0, { kind: 'misname', to: 0 }],
              ],
            ],
          ],
        },
      )
    },
    TIMEOUT,
  )

  it(
    'a declared 4 GiB record length in a small file allocates nothing: rss grows by less than 256 MiB',
    async () => {
      const salt = 0x600dcafe
      const good = Buffer.alloc(SEGMENT_HEADER_SIZE + recordFrameSize(payloadOf([{ t: 'del', key: 'a' }]).length))
      encodeSegmentHeader(1, salt, 0).copy(good)
      encodeRecord(good, SEGMENT_HEADER_SIZE, salt, 1, RECORD_OPS, payloadOf([{ t: 'del', key: 'a' }]))
      const forged = (len: number, fixCrc: boolean): Buffer => {
        const h = Buffer.alloc(RECORD_HEADER_SIZE)
        h.writeUInt32LE(len >>> 0, 4)
        h.writeUInt32LE(2, 8)
        h[16] = RECORD_OPS
        h.writeUInt32LE(fixCrc ? crc32Range(h, 4, RECORD_HEADER_SIZE, salt) : 0xdeadbeef, 0)
        return h
      }
      const before = process.memoryUsage().rss
      let peakBuffers = 0
      for (const len of [0xffff_ffff, 0xffff_fff0, 2 ** 32 - 8, 2 ** 31, MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES]) {
        for (const fixCrc of [true, false]) {
          for (const trailer of [Buffer.alloc(0), Buffer.alloc(2048, 0xa5), good.subarray(SEGMENT_HEADER_SIZE)]) {
            const image = newFs()
            const bytes = Buffer.concat([good, forged(len, fixCrc), trailer])
            image.putFile(segmentPath(DIR, 1), bytes)
            for (const mode of MODES) {
              const fs = image.crash('keep-all')
              // The largest read recovery asks for: never more than the file holds.
              let maxRead = 0
              const read = fs.read.bind(fs)
              fs.read = (fd, buf, off, n, pos) => {
                maxRead = Math.max(maxRead, n)
                return read(fd, buf, off, n, pos)
              }
              const buffersBefore = process.memoryUsage().arrayBuffers
              const got = await recoverCopy(fs, mode)
              // A zero-filled allocation is committed lazily, so rss alone would not show one;
              // ArrayBuffer accounting counts its full size (until it is collected).
              peakBuffers = Math.max(peakBuffers, process.memoryUsage().arrayBuffers - buffersBefore)
              if ('code' in got) expect(got.code).toBe('KV_CORRUPT')
              else expect(got.lastSeq).toBeGreaterThanOrEqual(1)
              expect(maxRead).toBeLessThanOrEqual(bytes.length)
            }
          }
        }
      }
      expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024)
      expect(peakBuffers).toBeLessThan(256 * 1024 * 1024)
    },
    TIMEOUT,
  )
})

/** Checks on ops the decoder returned: everything the store relies on when it replays them. */
function checkOp(op: Op): void {
  const isKey = (k: unknown): boolean => typeof k === 'string' && k.length > 0 && k.isWellFormed()
  const isTime = (t: number): boolean => Number.isSafeInteger(t) && t >= 0
  if (op.t !== 'clear') expect(isKey(op.key)).toBe(true)
  switch (op.t) {
    case 'set':
    case 'expire':
      expect(isTime(op.expiresAt)).toBe(true)
      break
    case 'push':
      expect(op.values.length).toBeGreaterThan(0)
      break
    case 'pop':
      expect(isTime(op.count)).toBe(true)
      break
    case 'hset':
      expect(op.fields.length).toBeGreaterThan(0)
      expect(op.fields.length).toBe(op.values.length)
      for (const f of op.fields) expect(f.isWellFormed()).toBe(true)
      break
    case 'lset':
      expect(Number.isSafeInteger(op.index)).toBe(true)
      break
    case 'ltrim':
      expect(Number.isSafeInteger(op.start) && Number.isSafeInteger(op.stop)).toBe(true)
      break
    default:
      break
  }
}

function decodeOrCorrupt(bytes: Uint8Array): void {
  let ops: Op[]
  try {
    ops = decodeOps(bytes)
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_CORRUPT')
    return
  }
  for (const op of ops) checkOp(op)
}

describe('op decoder fuzz', () => {
  it('arbitrary payload bytes decode to valid ops or throw KV_CORRUPT', () => {
    // Opcode-shaped prefixes make the decoder get past the count and opcode more often.
    const payloadArb = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 12 }), fc.uint8Array({ maxLength: 120 }))
        .map(([n, code, rest]) => new Uint8Array([n, 0, 0, 0, code, ...rest])),
    )
    fc.assert(fc.property(payloadArb, decodeOrCorrupt), { numRuns: numRuns(3000) })
  })

  it('valid payloads with damaged bytes decode to valid ops or throw KV_CORRUPT', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (ops, edits) => {
        const bytes = payloadOf(ops)
        for (const [pos, value] of edits) bytes[pos % bytes.length] = value
        decodeOrCorrupt(bytes)
      }),
      { numRuns: numRuns(2000) },
    )
  })
})
