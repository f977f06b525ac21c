// Model test of the memory account: after any sequence of writes (plain values, counters,
// lists, hashes, expiry, clear, batches, transactions, reopen = WAL replay, reopen under a
// smaller budget), with or without a budget that evicts, `stats().memoryBytes` equals the
// documented formula recomputed from scratch over the public contents, and stays within the
// budget; what a replay that evicted served is what the next replay, without a budget, yields.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Store, StoreError, type EvictionPolicy } from '../../src/index.js'
import { ELEMENT_OVERHEAD_BYTES, ENTRY_OVERHEAD_BYTES } from '../../src/eviction/entry-size.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { MemFs } from '../helpers/mem-fs.js'
import { numRuns } from '../helpers/runs.js'

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8')

/** The README formula for one stored plain value. */
function valueBytes(v: unknown): number {
  if (typeof v === 'string') return utf8(v)
  if (typeof v === 'number') return 8
  if (typeof v === 'boolean' || v === null) return 1
  if (v instanceof Uint8Array) return v.length
  return utf8(JSON.stringify(v))
}

/** memoryBytes recomputed from what the store shows: every key, value, element and field. */
async function recompute(s: Store<unknown>): Promise<number> {
  await s.count() // sweeps due keys: expired ones no longer count
  let total = 0
  for (const k of await s.keys()) {
    total += utf8(k) + ENTRY_OVERHEAD_BYTES
    const t = await s.type(k)
    if (t === 'list') for (const e of await s.lrange(k)) total += valueBytes(e) + ELEMENT_OVERHEAD_BYTES
    else if (t === 'hash') for (const [f, v] of await s.hgetall(k)) total += utf8(f) + valueBytes(v) + ELEMENT_OVERHEAD_BYTES
    else total += valueBytes(await s.get(k))
  }
  return total
}

const key = fc.constantFrom('a', 'b', 'ab', 'é', '\u{1F600}', 'list', 'hash', 'n')
const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -50, max: 50 }).map(String),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 8 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer())),
)

type Op =
  | { t: 'set'; k: string; v: unknown; ttl: number }
  | { t: 'del'; k: string }
  | { t: 'incr'; k: string; by: number }
  | { t: 'push'; k: string; left: boolean; vs: string[] }
  | { t: 'pop'; k: string; left: boolean; n: number }
  | { t: 'lset'; k: string; i: number; v: string }
  | { t: 'ltrim'; k: string; a: number; b: number }
  | { t: 'hset'; k: string; f: Record<string, string> }
  | { t: 'hdel'; k: string; fs: string[] }
  | { t: 'expire'; k: string; ttl: number }
  | { t: 'advance'; ms: number }
  | { t: 'get'; k: string }
  | { t: 'clear' }
  | { t: 'batch'; ops: { k: string; v: string | undefined }[] }
  | { t: 'tx'; k: string; v: string }
  | { t: 'reopen'; shrink: boolean }

const field = fc.constantFrom('f', 'g', 'hé', '')
const small = fc.string({ maxLength: 6 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('set' as const), k: key, v: value, ttl: fc.constantFrom(0, 0, 5, 50) }) },
  fc.record({ t: fc.constant('del' as const), k: key }),
  fc.record({ t: fc.constant('incr' as const), k: key, by: fc.integer({ min: -3, max: 3 }) }),
  { weight: 2, arbitrary: fc.record({ t: fc.constant('push' as const), k: key, left: fc.boolean(), vs: fc.array(small, { minLength: 1, maxLength: 3 }) }) },
  fc.record({ t: fc.constant('pop' as const), k: key, left: fc.boolean(), n: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ t: fc.constant('lset' as const), k: key, i: fc.integer({ min: -3, max: 3 }), v: small }),
  fc.record({ t: fc.constant('ltrim' as const), k: key, a: fc.integer({ min: -4, max: 4 }), b: fc.integer({ min: -4, max: 4 }) }),
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hset' as const), k: key, f: fc.dictionary(field, small, { minKeys: 1, maxKeys: 3 }) }) },
  fc.record({ t: fc.constant('hdel' as const), k: key, fs: fc.array(field, { minLength: 1, maxLength: 3 }) }),
  fc.record({ t: fc.constant('expire' as const), k: key, ttl: fc.constantFrom(5, 50) }),
  fc.record({ t: fc.constant('advance' as const), ms: fc.constantFrom(1, 10, 60) }),
  fc.record({ t: fc.constant('get' as const), k: key }),
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
  fc.record({ t: fc.constant('batch' as const), ops: fc.array(fc.record({ k: key, v: fc.option(small, { nil: undefined }) }), { minLength: 1, maxLength: 4 }) }),
  fc.record({ t: fc.constant('tx' as const), k: key, v: small }),
  { weight: 3, arbitrary: fc.record({ t: fc.constant('reopen' as const), shrink: fc.boolean() }) },
)

async function run(s: Store<unknown>, o: Op, clock: FakeClock): Promise<void> {
  switch (o.t) {
    case 'set': return void (await s.set(o.k, o.v, o.ttl > 0 ? { ttl: o.ttl } : {}))
    case 'del': return void (await s.delete(o.k))
    case 'incr': return void (await s.incr(o.k, o.by))
    case 'push': return void (await (o.left ? s.lpush(o.k, ...o.vs) : s.rpush(o.k, ...o.vs)))
    case 'pop': return void (await s.popMany(o.k, o.n, o.left))
    case 'lset': return void (await s.lset(o.k, o.i, o.v))
    case 'ltrim': return void (await s.ltrim(o.k, o.a, o.b))
    case 'hset': return void (await s.hset(o.k, o.f))
    case 'hdel': return void (await s.hdel(o.k, ...o.fs))
    case 'expire': return void (await s.expire(o.k, o.ttl))
    case 'advance': return void clock.advance(o.ms)
    case 'get': return void (await s.get(o.k))
    case 'clear': return s.clear()
    case 'batch': return s.batch(o.ops.map((b) => (b.v === undefined ? { type: 'delete', key: b.k } : { type: 'set', key: b.k, value: b.v })))
    case 'tx': return void (await s.transaction(async (tx) => {
      const old = await tx.get(o.k)
      tx.set(o.k, typeof old === 'string' ? old + o.v : o.v)
    }))
    case 'reopen': return
  }
}

/** Every key with what it holds, in order. */
async function contents(s: Store<unknown>): Promise<[string, unknown][]> {
  const out: [string, unknown][] = []
  for (const k of await s.keys()) {
    const t = await s.type(k)
    out.push([k, t === 'list' ? await s.lrange(k) : t === 'hash' ? await s.hgetall(k) : await s.get(k)])
  }
  return out
}

const budgets = fc.oneof(
  fc.constant({ maxMemoryBytes: 0, evictionPolicy: 'noeviction' as EvictionPolicy }),
  fc.record({
    maxMemoryBytes: fc.integer({ min: 200, max: 1500 }),
    evictionPolicy: fc.constantFrom<EvictionPolicy>('noeviction', 'allkeys-lru', 'volatile-lru', 'allkeys-lfu', 'volatile-lfu', 'volatile-ttl', 'allkeys-random'),
  }),
)

describe('memory accounting (model)', () => {
  it('memoryBytes equals a recomputation from scratch after every op, and never exceeds an evicting budget', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40, size: 'medium' }), budgets, async (ops, budget) => {
        const clock = new FakeClock()
        const fs = new MemFs()
        const options = { dir: '/db', fs, clock, expirySweepIntervalMs: 0, ...budget }
        let served: [string, unknown][] = []
        let s = await Store.open<unknown>(options)
        try {
          for (const o of ops) {
            if (o.t === 'reopen') {
              const used = s.stats().memoryBytes ?? 0
              await s.close()
              // A smaller budget makes replay evict; a later plain reopen must see what was served.
              if (o.shrink && options.maxMemoryBytes > 0) options.maxMemoryBytes = Math.max(100, used >> 1)
              s = await Store.open<unknown>(options)
              if (o.shrink) {
                served = await contents(s)
                await s.close()
                s = await Store.open<unknown>({ ...options, maxMemoryBytes: 0 })
                expect(await contents(s)).toEqual(served)
                await s.close()
                s = await Store.open<unknown>(options)
              }
            } else {
              try {
                await run(s, o, clock)
              } catch (err) {
                // Wrong types, bad indexes, non-integers and a full noeviction store refuse the op.
                if (!(err instanceof StoreError)) throw err
              }
            }
            const expected = await recompute(s) // sweeps due keys first
            const reported = s.stats().memoryBytes
            expect(reported, `after ${JSON.stringify(o)}`).toBe(expected)
            if (budget.maxMemoryBytes > 0 && budget.evictionPolicy.startsWith('allkeys')) {
              expect(reported).toBeLessThanOrEqual(budget.maxMemoryBytes)
            }
          }
        } finally {
          await s.close()
        }
      }),
      { numRuns: numRuns(60) },
    )
  }, 120_000)
})
