import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import { SEGMENT_HEADER_SIZE, encodeRecord, encodeSegmentHeader, recordFrameSize } from '../../src/wal/format.js'
import { readSegment, scanSegment, scanWal } from '../../src/wal/reader.js'
import { WalWriter } from '../../src/wal/writer.js'
import type { SyncPolicy } from '../../src/wal/writer.js'
import { MemFs, POWER_LOSS_MODELS } from '../helpers/mem-fs.js'
import type { CrashModel } from '../helpers/mem-fs.js'

const NUM_RUNS = Number.parseInt(process.env['FC_NUM_RUNS'] ?? '', 10) || 100
const DIR = '/wal'

interface Rec {
  type: number
  payload: Uint8Array
}

/** A workload step: a group of appends issued in one tick, optionally awaited, optionally followed by a rotation. */
interface Step {
  recs: Rec[]
  wait: boolean
  rotate: boolean
}

const recArb: fc.Arbitrary<Rec> = fc.record({ type: fc.integer({ min: 1, max: 255 }), payload: fc.uint8Array({ maxLength: 300 }) })
const stepArb: fc.Arbitrary<Step> = fc.record({
  recs: fc.array(recArb, { minLength: 0, maxLength: 8 }),
  wait: fc.boolean(),
  rotate: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
})
const policyArb: fc.Arbitrary<SyncPolicy> = fc.constantFrom('always', 'interval', 'never')

function newFs(): MemFs {
  const fs = new MemFs()
  fs.mkdir(DIR)
  fs.syncAll()
  return fs
}

function key(type: number, payload: Uint8Array): string {
  return `${type}:${Buffer.from(payload).toString('hex')}`
}

function recover(fs: MemFs): { keys: string[]; seqs: number[]; corrupt: boolean } {
  const keys: string[] = []
  const seqs: number[] = []
  const wal = scanWal(fs, DIR, (r) => {
    keys.push(key(r.type, r.payload))
    seqs.push(r.seq)
  })
  return { keys, seqs, corrupt: wal.corruption !== undefined }
}

/** Run `steps` on a new writer; `resolved` collects the seqs whose append promise resolved. */
async function runWorkload(fs: MemFs, steps: Step[], sync: SyncPolicy, resolved: Set<number>, maxSegmentBytes?: number): Promise<void> {
  let w: WalWriter
  try {
    w = await WalWriter.create(fs, DIR, 1, 0, { sync, syncIntervalMs: 1, ...(maxSegmentBytes === undefined ? {} : { maxSegmentBytes }) })
  } catch {
    return
  }
  let seq = 0
  const pending: Promise<unknown>[] = []
  for (const step of steps) {
    const group = step.recs.map((r) => {
      const s = ++seq
      return w.append(s, r.type, r.payload).then(() => void resolved.add(s))
    })
    pending.push(...group)
    if (step.wait) await Promise.allSettled(group)
    if (step.rotate) pending.push(w.rotate())
  }
  await Promise.allSettled(pending)
  await w.close().catch(() => {})
}

describe('WAL properties', () => {
  it('reads back exactly the records written, across group commits and explicit and automatic rotations', async () => {
    const maxArb = fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined })
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 12 }), policyArb, maxArb, async (steps, sync, maxSegmentBytes) => {
        const fs = newFs()
        const resolved = new Set<number>()
        await runWorkload(fs, steps, sync, resolved, maxSegmentBytes)
        const all = steps.flatMap((s) => s.recs)
        expect(resolved.size).toBe(all.length)
        const got = recover(fs)
        expect(got.corrupt).toBe(false)
        expect(got.keys).toEqual(all.map((r) => key(r.type, r.payload)))
        expect(got.seqs).toEqual(all.map((_, i) => i + 1))
        // close() made it all durable, whatever the policy.
        expect(recover(fs.crash('forget-dir-ops')).keys).toEqual(got.keys)
      }),
      { numRuns: NUM_RUNS },
    )
  })

  it("keeps every acknowledged append and only a prefix after a power loss at any op under 'always', automatic rotations included", async () => {
    const modelArb = fc.constantFrom<CrashModel>(...POWER_LOSS_MODELS)
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 1, maxLength: 10 }),
        fc.nat({ max: 60 }),
        modelArb,
        fc.nat(),
        fc.option(fc.integer({ min: 1, max: 1500 }), { nil: undefined }),
        async (steps, crashAt, model, seed, maxSegmentBytes) => {
          const fs = newFs()
          const resolved = new Set<number>()
          let image: MemFs | undefined
          let acked: Set<number> | undefined
          // The crash state is taken just before op `crashAt` runs, with the acks seen so far.
          fs.onOp = (i) => {
            if (i === crashAt) {
              image = fs.crash(model, seed)
              acked = new Set(resolved)
            }
          }
          await runWorkload(fs, steps, 'always', resolved, maxSegmentBytes)
          image ??= fs.crash(model, seed)
          acked ??= resolved
          const all = steps.flatMap((s) => s.recs.map((r) => key(r.type, r.payload)))
          const got = recover(image)
          expect(got.corrupt).toBe(false)
          expect(got.seqs).toEqual(got.seqs.map((_, i) => i + 1))
          expect(got.keys).toEqual(all.slice(0, got.keys.length))
          for (const s of acked) expect(s).toBeLessThanOrEqual(got.keys.length)
        },
      ),
      { numRuns: NUM_RUNS },
    )
  })

  it('a streamed read with any chunk size sees exactly what an in-memory scan sees', () => {
    const salt = 0x0f0f1234
    fc.assert(
      fc.property(
        fc.array(recArb, { minLength: 0, maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        fc.integer({ min: 1, max: 200 }),
        fc.constantFrom<'strict' | 'salvage'>('strict', 'salvage'),
        (recs, edits, cut, chunkBytes, mode) => {
          const size = SEGMENT_HEADER_SIZE + recs.reduce((n, r) => n + recordFrameSize(r.payload.length), 0)
          const bytes = Buffer.alloc(size)
          encodeSegmentHeader(1, salt, 0).copy(bytes)
          let off = SEGMENT_HEADER_SIZE
          recs.forEach((r, i) => (off = encodeRecord(bytes, off, salt, i + 1, r.type, r.payload)))
          for (const [pos, value] of edits) bytes[pos % size] = value
          const damaged = bytes.subarray(0, size - (cut % 40))
          const fs = newFs()
          fs.putFile(`${DIR}/wal-0000000001.log`, damaged)
          const inMemory: string[] = []
          const streamed: string[] = []
          const a = scanSegment(damaged, (r) => inMemory.push(`${r.seq}@${r.offset}:${key(r.type, r.payload)}`), { mode })
          const b = readSegment(fs, `${DIR}/wal-0000000001.log`, (r) => streamed.push(`${r.seq}@${r.offset}:${key(r.type, r.payload)}`), { mode, chunkBytes })
          expect(streamed).toEqual(inMemory)
          expect(b).toEqual(a)
        },
      ),
      { numRuns: NUM_RUNS * 3 },
    )
  })

  it('never visits a record that was not written, whatever bytes are damaged', () => {
    const salt = 0x1234abcd
    fc.assert(
      fc.property(
        fc.array(recArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom<'strict' | 'salvage'>('strict', 'salvage'),
        (recs, edits, cut, mode) => {
          const size = SEGMENT_HEADER_SIZE + recs.reduce((n, r) => n + recordFrameSize(r.payload.length), 0)
          const bytes = Buffer.alloc(size)
          encodeSegmentHeader(1, salt, 0).copy(bytes)
          let off = SEGMENT_HEADER_SIZE
          recs.forEach((r, i) => (off = encodeRecord(bytes, off, salt, i + 1, r.type, r.payload)))
          for (const [pos, value] of edits) bytes[pos % size] = value
          const damaged = bytes.subarray(0, size - (cut % 64))
          const seen = new Set<number>()
          const scan = scanSegment(
            damaged,
            (r) => {
              const want = recs[r.seq - 1]
              expect(want).toBeDefined()
              expect(key(r.type, r.payload)).toBe(key((want as Rec).type, (want as Rec).payload))
              expect(seen.has(r.seq)).toBe(false)
              seen.add(r.seq)
            },
            { mode },
          )
          expect(scan.validEnd).toBeLessThanOrEqual(damaged.length)
          expect(scan.validEnd % 8).toBe(0)
          if (mode === 'strict') expect([...seen]).toEqual([...seen].map((_, i) => i + 1))
        },
      ),
      { numRuns: NUM_RUNS * 5 },
    )
  })
})
