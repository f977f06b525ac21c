import { describe, expect, it } from 'vitest'
import { createSession, Store, type Reply } from '../../src/index.js'

const text = (r: Reply): string => (r.type === 'bulk' ? (r.value ?? '') : JSON.stringify(r))
const words = (r: Reply): (string | null)[] => (r.type === 'array' && r.value !== null ? r.value.map((x) => (x.type === 'bulk' ? x.value : JSON.stringify(x))) : [])

describe('INFO and CONFIG for the memory budget', () => {
  it('INFO has a # Memory section with the budget, usage, policy and evictions', async () => {
    const store = await Store.open({ maxMemoryBytes: 1000, evictionPolicy: 'allkeys-lru' })
    const s = createSession(store)
    for (let i = 0; i < 20; i++) await s.execute(['SET', `k${i}`, 'x'.repeat(50)])
    const info = text(await s.execute(['INFO']))
    const memory = info.slice(info.indexOf('# Memory')).split('\n').slice(0, 5)
    const st = store.stats()
    expect(memory).toEqual(['# Memory', `used_memory:${st.memoryBytes}`, 'maxmemory:1000', 'maxmemory_policy:allkeys-lru', `evicted_keys:${st.evictedKeys}`])
    expect(st.evictedKeys).toBeGreaterThan(0)
  })

  it('CONFIG GET reads maxmemory and maxmemory-policy, by name or trailing-* pattern', async () => {
    const s = createSession(await Store.open({ maxMemoryBytes: 4096 }))
    expect(words(await s.execute(['CONFIG', 'GET', 'maxmemory']))).toEqual(['maxmemory', '4096'])
    expect(words(await s.execute(['config', 'get', 'MAXMEMORY*']))).toEqual(['maxmemory', '4096', 'maxmemory-policy', 'noeviction'])
    expect(words(await s.execute(['CONFIG', 'GET', 'save']))).toEqual([])
  })

  it('CONFIG SET changes the budget (Redis units) and the policy at runtime', async () => {
    const store = await Store.open()
    const s = createSession(store)
    expect(await s.execute(['CONFIG', 'SET', 'maxmemory', '64mb', 'maxmemory-policy', 'ALLKEYS-LFU'])).toEqual({ type: 'status', value: 'OK' })
    expect(store.stats()).toMatchObject({ maxMemoryBytes: 64 * 1024 * 1024, evictionPolicy: 'allkeys-lfu' })
    await s.execute(['CONFIG', 'SET', 'maxmemory', '2k'])
    expect(store.stats().maxMemoryBytes).toBe(2000)
    await s.execute(['CONFIG', 'SET', 'maxmemory-policy', 'noeviction'])
    for (let i = 0; i < 40; i++) await s.execute(['SET', `k${i}`, 'x'.repeat(50)])
    const oom = await s.execute(['SET', 'one-more', 'x'.repeat(50)])
    expect(oom).toMatchObject({ type: 'error', kvCode: 'KV_OUT_OF_MEMORY' })
  })

  it('CONFIG SET refuses bad values and unknown parameters, changing nothing', async () => {
    const store = await Store.open({ maxMemoryBytes: 100 })
    const s = createSession(store)
    expect(await s.execute(['CONFIG', 'SET', 'maxmemory', '12qb'])).toMatchObject({ type: 'error', message: expect.stringMatching(/memory value/) })
    expect(await s.execute(['CONFIG', 'SET', 'maxmemory', '-1'])).toMatchObject({ type: 'error' })
    expect(await s.execute(['CONFIG', 'SET', 'maxmemory-policy', 'lru'])).toMatchObject({ type: 'error', kvCode: 'KV_INVALID_ARGUMENT' })
    expect(await s.execute(['CONFIG', 'SET', 'appendonly', 'yes'])).toMatchObject({ type: 'error', message: expect.stringMatching(/Unknown option/) })
    expect(await s.execute(['CONFIG', 'SET', 'maxmemory'])).toMatchObject({ type: 'error' })
    expect(await s.execute(['CONFIG', 'RESETSTAT'])).toMatchObject({ type: 'error' })
    expect(store.stats()).toMatchObject({ maxMemoryBytes: 100, evictionPolicy: 'noeviction' })
  })
})
