// watch({ fromSeq }): the changes after a seq read back from the WAL, then the live ones,
// with none missed or repeated, on a writer and on a follower. The truth is a live feed
// opened before the first write: a resumed feed must deliver exactly its tail.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { Store, type Change } from '../../src/index.js'
import { codeOf } from '../helpers/codes.js'
import { MemFs } from '../helpers/mem-fs.js'

const DIR = '/db'
const HOUR = 3_600_000
const open: Store<unknown>[] = []

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined)
})

async function writer(fs: MemFs): Promise<Store<unknown>> {
  const s = await Store.open({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0 })
  open.push(s)
  return s
}

/** Read `feed` until the change to `sentinel`, which is left out. */
async function until(feed: AsyncIterator<Change>, sentinel: string): Promise<Change[]> {
  const out: Change[] = []
  for (;;) {
    const r = await feed.next()
    if (r.done === true) throw new Error('feed ended before the sentinel')
    if (r.value.key === sentinel) return out
    out.push(r.value)
  }
}

type Op =
  | { t: 'set' | 'hset'; k: number; v: number }
  | { t: 'del' | 'pop' | 'hdel' | 'compact' | 'clear'; k: number }
  | { t: 'push'; k: number; n: number }
  | { t: 'batch'; k: number; v: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('set' as const), k: fc.integer({ min: 0, max: 4 }), v: fc.integer({ min: 0, max: 99 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('push' as const), k: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('pop' as const), k: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hset' as const), k: fc.integer({ min: 0, max: 2 }), v: fc.integer({ min: 0, max: 9 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hdel' as const), k: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('batch' as const), k: fc.integer({ min: 0, max: 4 }), v: fc.integer({ min: 0, max: 99 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('compact' as const), k: fc.constant(0) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('clear' as const), k: fc.constant(0) }) },
)

async function run(w: Store<unknown>, o: Op): Promise<void> {
  // Keys with a prefix by type ('a:' plain, 'b:' lists, 'c:' hashes), so no op meets a key of another type.
  switch (o.t) {
    case 'set':
      await w.set(`a:${o.k}`, o.v)
      return
    case 'del':
      await w.delete(`a:${o.k}`)
      return
    case 'push':
      await w.rpush(`b:${o.k}`, ...Array.from({ length: o.n }, (_, i) => i))
      return
    case 'pop':
      await w.lpop(`b:${o.k}`)
      return
    case 'hset':
      await w.hset(`c:${o.k}`, { [`f${o.v % 3}`]: o.v })
      return
    case 'hdel':
      await w.hdel(`c:${o.k}`, 'f0', 'f1')
      return
    case 'batch':
      // A delete of a key that may be missing: a live feed hears of it only when it existed.
      await w.batch([
        { type: 'delete', key: `a:${(o.k + 1) % 5}` },
        { type: 'set', key: `a:${o.k}`, value: o.v },
      ])
      return
    case 'compact':
      await w.compact()
      return
    case 'clear':
      await w.clear()
  }
}

describe('watch({ fromSeq })', () => {
  it('delivers exactly the live changes after fromSeq, from a writer and from a follower, whole or by prefix', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.nat(), fc.constantFrom(undefined, 'a:', 'b:', 'c:'), async (ops, pick, prefix) => {
        const fs = new MemFs()
        const w = await Store.open({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0 })
        const truth = w.watch()
        const seqs: number[] = [0]
        let compactedAt = 0
        try {
          for (const o of ops) {
            await run(w, o)
            if (o.t === 'compact') compactedAt = w.seq
            seqs.push(w.seq)
          }
          const sentinel = `${prefix ?? ''}~end`
          await w.set(sentinel, 1)
          const all = await until(truth, sentinel)
          const fromSeq = seqs[pick % seqs.length] as number
          const want = all.filter((c) => c.version > fromSeq && (prefix === undefined || c.type === 'clear' || c.key.startsWith(prefix)))
          const f = await Store.open({ dir: DIR, fs, readOnly: true, followIntervalMs: HOUR, expirySweepIntervalMs: 0 })
          try {
            for (const store of [w, f]) {
              const feed = store.watch({ fromSeq, ...(prefix === undefined ? {} : { prefix }) })
              if (fromSeq < compactedAt) {
                // The compaction removed the segments holding what came right after fromSeq.
                expect(await codeOf(feed.next())).toBe('KV_TRIMMED')
                continue
              }
              const sentinel2 = `${prefix ?? ''}~end2`
              // A live write after the feed started comes after the history, once.
              await w.set(sentinel2, 2)
              await f.refresh()
              const got = await until(feed, sentinel2)
              expect(got.filter((c) => c.key !== sentinel)).toEqual(want)
              feed.close()
              await w.delete(sentinel2)
              await f.refresh()
            }
          } finally {
            await f.close()
          }
        } finally {
          truth.close()
          await w.close()
        }
      }),
      { numRuns: 60 },
    )
  })

  it('resumes a consumer where it stopped: the version of the last change it processed', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    for (let i = 0; i < 10; i++) await w.set(`k${i}`, i)
    const feed = w.watch({ fromSeq: 0 })
    const first: Change[] = []
    for (let i = 0; i < 4; i++) first.push((await feed.next()).value as Change)
    feed.close()
    const last = first[3]?.version as number
    const resumed = w.watch({ fromSeq: last })
    await w.set('end', true)
    const rest = await until(resumed, 'end')
    expect([...first, ...rest].map((c) => c.key)).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`))
  })

  it('checks fromSeq, and memory mode keeps no history', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    await w.set('a', 1)
    expect(() => w.watch({ fromSeq: -1 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    expect(() => w.watch({ fromSeq: 1.5 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    expect(() => w.watch({ fromSeq: 99 })).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    const mem = await Store.open({})
    open.push(mem)
    await mem.set('a', 1)
    await mem.set('b', 1)
    expect(await codeOf(mem.watch({ fromSeq: 1 }).next())).toBe('KV_TRIMMED')
    const live = mem.watch({ fromSeq: 2 })
    await mem.set('c', 1)
    expect((await live.next()).value).toMatchObject({ key: 'c', version: 3 })
  })

  it('on a follower behind fromSeq, starts with the first change after it', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    await w.set('a', 1)
    const f = await Store.open({ dir: DIR, fs, readOnly: true, followIntervalMs: HOUR, expirySweepIntervalMs: 0 })
    open.push(f)
    await w.set('b', 2)
    await w.set('c', 3)
    // The follower is at seq 1; the consumer already processed up to 2 elsewhere.
    const feed = f.watch({ fromSeq: 2 })
    await f.refresh()
    expect((await feed.next()).value).toMatchObject({ key: 'c', version: 3 })
  })
})
