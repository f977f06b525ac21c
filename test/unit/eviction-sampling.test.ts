import { describe, expect, it } from 'vitest'
import { CandidatePool, POOL_SIZE } from '../../src/eviction/candidate-pool.js'
import { LFU_INIT, LFU_MAX, lfuDecayed, lfuIncremented, lfuStamp } from '../../src/eviction/lfu-counter.js'
import { Memtable } from '../../src/memtable.js'
import { rng } from '../../bench/lib/data.js'

describe('Memtable.randomPosition', () => {
  it('is -1 when empty and picks every key of a one-chunk table', () => {
    const mt = new Memtable()
    expect(mt.randomPosition(Math.random)).toBe(-1)
    for (const k of ['a', 'b', 'c']) mt.set(k, 1, 1, 0)
    const seen = new Set<string>()
    const r = rng(1)
    for (let i = 0; i < 200; i++) seen.add(mt.keyAt(mt.randomPosition(r)))
    expect([...seen].sort()).toEqual(['a', 'b', 'c'])
  })

  it('is uniform over keys whatever the chunk sizes (rejection sampling)', () => {
    const mt = new Memtable({ chunkSize: 8 })
    // Uneven chunks: a dense run of keys, then deletions thin out the first chunks.
    for (let i = 0; i < 400; i++) mt.set(`k${String(i).padStart(4, '0')}`, i, 1, 0)
    for (let i = 0; i < 120; i += 2) mt.delete(`k${String(i).padStart(4, '0')}`)
    const counts = new Map<string, number>()
    const r = rng(7)
    const draws = 340 * 300
    for (let i = 0; i < draws; i++) {
      const k = mt.keyAt(mt.randomPosition(r))
      counts.set(k, (counts.get(k) ?? 0) + 1)
    }
    expect(counts.size).toBe(mt.size)
    // Each key expects 300 draws; chi-square over 339 degrees of freedom stays near 339.
    let chi = 0
    for (const c of counts.values()) chi += (c - 300) ** 2 / 300
    expect(chi).toBeLessThan(339 * 1.4)
  })
})

describe('CandidatePool', () => {
  it('keeps the best POOL_SIZE candidates and hands out the best first', () => {
    const pool = new CandidatePool()
    for (let i = 0; i < 40; i++) pool.offer(`k${i}`, i, i)
    expect(pool.size).toBe(POOL_SIZE)
    expect(pool.take()).toEqual({ key: 'k39', stamp: 39 })
    pool.offer('k0', 0, 0) // worse than all held: dropped
    pool.offer('k38', 100, 7) // re-offered with a new score: replaces its entry
    expect(pool.take()).toEqual({ key: 'k38', stamp: 7 })
    expect(pool.take()?.key).toBe('k37')
    pool.clear()
    expect(pool.take()).toBeUndefined()
  })
})

describe('LFU counter', () => {
  it('grows logarithmically, saturates at 255 and decays one per idle minute', () => {
    const r = rng(3)
    let c = LFU_INIT
    for (let i = 0; i < 1000; i++) c = lfuIncremented(c, r())
    expect(c).toBeGreaterThan(LFU_INIT + 5)
    expect(c).toBeLessThan(40) // a thousand hits buy a few dozen steps, not a thousand
    expect(lfuIncremented(LFU_MAX, 0)).toBe(LFU_MAX)
    expect(lfuDecayed(lfuStamp(20, 100), 100)).toBe(20)
    expect(lfuDecayed(lfuStamp(20, 100), 107)).toBe(13)
    expect(lfuDecayed(lfuStamp(20, 100), 1000)).toBe(0)
  })
})
