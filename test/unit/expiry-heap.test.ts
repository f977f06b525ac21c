// The expiry heap must pop in ascending time order: active expiry stops at the first
// entry that is not yet due, so an unordered heap hides due keys behind later ones.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ExpiryHeap } from '../../src/expiry-heap.js'
import { Store } from '../../src/index.js'
import { Keyspace } from '../../src/keyspace.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** Push `times` (key = `k<time>#<index>`), then pop everything; returns popped times. */
function drain(times: readonly number[]): number[] {
  const h = new ExpiryHeap()
  const timeOf = new Map<string, number>()
  times.forEach((t, i) => {
    const key = `k${t}#${i}`
    timeOf.set(key, t)
    h.push(t, key)
  })
  const out: number[] = []
  while (h.size > 0) {
    const before = h.peekTime()
    const key = h.pop()
    const t = timeOf.get(key) as number
    // The key popped is the one peekTime announced.
    expect(t).toBe(before)
    timeOf.delete(key)
    out.push(t)
  }
  expect(timeOf.size).toBe(0)
  return out
}

describe('ExpiryHeap', () => {
  it('is empty at first: size 0, peekTime Infinity', () => {
    const h = new ExpiryHeap()
    expect(h.size).toBe(0)
    expect(h.peekTime()).toBe(Infinity)
  })

  it('pops [50,10,40,20,30,60,5,70] in ascending order', () => {
    expect(drain([50, 10, 40, 20, 30, 60, 5, 70])).toEqual([5, 10, 20, 30, 40, 50, 60, 70])
  })

  it('returns the matching key for each time, and tracks size and peekTime', () => {
    const h = new ExpiryHeap()
    h.push(30, 'c')
    h.push(10, 'a')
    h.push(20, 'b')
    expect(h.size).toBe(3)
    expect(h.peekTime()).toBe(10)
    expect(h.pop()).toBe('a')
    expect(h.size).toBe(2)
    expect(h.peekTime()).toBe(20)
    expect(h.pop()).toBe('b')
    expect(h.pop()).toBe('c')
    expect(h.size).toBe(0)
    expect(h.peekTime()).toBe(Infinity)
  })

  it('clear empties it and it is usable afterwards', () => {
    const h = new ExpiryHeap()
    for (const t of [3, 1, 2]) h.push(t, `k${t}`)
    h.clear()
    expect(h.size).toBe(0)
    expect(h.peekTime()).toBe(Infinity)
    h.push(7, 'x')
    expect(h.pop()).toBe('x')
  })

  it('property: any sequence of pushes pops sorted', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 200 }), (times) => {
        expect(drain(times)).toEqual([...times].sort((a, b) => a - b))
      }),
    )
  })

  it('property: interleaved pushes and pops always pop the current minimum', () => {
    const step = fc.oneof(fc.integer({ min: 0, max: 100 }), fc.constant('pop' as const))
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), (steps) => {
        const h = new ExpiryHeap()
        const model: number[] = []
        let id = 0
        for (const s of steps) {
          if (s === 'pop') {
            if (model.length === 0) continue
            model.sort((a, b) => a - b)
            const min = model.shift() as number
            expect(h.peekTime()).toBe(min)
            expect(h.pop().startsWith(`${min}:`)).toBe(true)
          } else {
            h.push(s, `${s}:${id++}`)
            model.push(s)
          }
          expect(h.size).toBe(model.length)
        }
      }),
    )
  })
})

describe('active expiry through the heap', () => {
  it('count() after 320 ms leaves exactly the 4 keys with TTL > 320', async () => {
    const clock = new FakeClock()
    const s = await Store.open<string>({ clock, expirySweepIntervalMs: 0 })
    const ttls = [500, 100, 400, 200, 300, 600, 50, 700, 250, 150]
    for (const [i, ttl] of ttls.entries()) await s.set(`k${i}`, `v${ttl}`, { ttl })
    expect(await s.count()).toBe(10)
    clock.advance(320)
    expect(await s.count()).toBe(4)
    expect((await s.keys()).sort()).toEqual(['k0', 'k2', 'k5', 'k7'])
    expect(s.stats().expiredRemoved).toBe(6)
    await s.close()
  })
})

describe('ExpiryHeap.rebuild', () => {
  it('heapifies any contents: popping gives ascending times, every key once', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 300 }), (times) => {
        const h = new ExpiryHeap()
        h.push(5, 'old') // replaced by the rebuild
        h.rebuild(times.map((t, i) => [`k${i}`, t] as const))
        expect(h.size).toBe(times.length)
        const out: number[] = []
        const seen = new Set<string>()
        while (h.size > 0) {
          const t = h.peekTime()
          const k = h.pop()
          expect(times[Number(k.slice(1))]).toBe(t)
          seen.add(k)
          out.push(t)
        }
        expect(out).toEqual([...times].sort((a, b) => a - b))
        expect(seen.size).toBe(times.length)
      }),
    )
  })
})

describe('expiry heap size under rewrites', () => {
  it('stays near the keys with a TTL when the same keys are rewritten with new TTLs, and still expires them', () => {
    const clock = new FakeClock()
    const ks = new Keyspace(clock)
    let seq = 0
    // 10 keys rewritten 2,000 times each with a fresh TTL: 20,000 pushes, 10 live entries.
    for (let round = 0; round < 2000; round++) {
      for (let i = 0; i < 10; i++) ks.apply({ t: 'set', key: `k${i}`, value: 'v', expiresAt: clock.now() + 60_000 + round }, ++seq)
      expect(ks.expiryHeapSize).toBeLessThanOrEqual(2 * 10 + 1024 + 1)
    }
    ks.apply({ t: 'set', key: 'plain', value: 'v', expiresAt: 0 }, ++seq)
    clock.advance(60_000 + 1998)
    expect(ks.purgeExpired(Infinity)).toBe(0)
    clock.advance(1)
    expect(ks.purgeExpired(Infinity)).toBe(10)
    expect(ks.table.size).toBe(1)
    expect(ks.expiryHeapSize).toBe(0)
  })

  it('stays bounded when few of many keys expire, rebuilding from its own entries (one per key, repeats dropped)', () => {
    const clock = new FakeClock()
    const ks = new Keyspace(clock)
    let seq = 0
    for (let i = 0; i < 5000; i++) ks.apply({ t: 'set', key: `p${i}`, value: 'v', expiresAt: 0 }, ++seq)
    const end = clock.now() + 60_000
    // 10 keys with a TTL among 5,010: odd ones rewritten with the same expiry every round, so
    // their stale entries look live; a rebuild must keep one per key or the heap never shrinks.
    for (let round = 0; round < 2000; round++) {
      for (let i = 0; i < 10; i++) ks.apply({ t: 'set', key: `k${i}`, value: 'v', expiresAt: i % 2 === 1 ? end : end - 1999 + round }, ++seq)
      expect(ks.expiryHeapSize).toBeLessThanOrEqual(2 * 10 + 1024 + 1)
    }
    ks.apply({ t: 'set', key: 'k0', value: 'kept', expiresAt: 0 }, ++seq)
    expect(ks.table.expiringCount).toBe(9)
    clock.advance(60_000 - 1)
    expect(ks.purgeExpired(Infinity)).toBe(0)
    clock.advance(1)
    expect(ks.purgeExpired(Infinity)).toBe(9)
    expect(ks.table.size).toBe(5001)
    expect(ks.table.get('k0')).toBe('kept')
    expect(ks.expiryHeapSize).toBe(0)
  })
})
