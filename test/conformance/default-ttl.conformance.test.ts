// defaultTtlMs on every backend: which writes get the default expiry and which do not.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, openWithClock } from './harness.js'

describe.each(backends)('defaultTtlMs: $name', (backend) => {
  it('gives plain values written without an expiry the default one', async () => {
    const { store: s, clock } = await openWithClock(backend, { defaultTtlMs: 1000 })
    await s.set('set', 1)
    await s.batch([{ type: 'set', key: 'batch', value: 2 }])
    if (backend.capabilities.transactions) await s.transaction((tx) => tx.set('tx', 3))
    if (backend.capabilities.atomic) await s.atomic().set('atomic', 4).commit()
    const written = ['set', 'batch', ...(backend.capabilities.transactions ? ['tx'] : []), ...(backend.capabilities.atomic ? ['atomic'] : [])]
    for (const k of written) expect(await s.ttl(k), k).toBe(1000)
    clock.advance(1001)
    for (const k of written) expect(await s.has(k), k).toBe(false)
  })

  it('leaves explicit expiries, keepTtl, counters and collections alone', async () => {
    const { store: s } = await openWithClock(backend, { defaultTtlMs: 1000 })
    await s.set('ttl', 1, { ttl: 50 })
    await s.set('kept', 1, { ttl: 70 })
    await s.set('kept', 2, { keepTtl: true })
    await s.incr('n')
    expect([await s.ttl('ttl'), await s.ttl('kept'), await s.ttl('n')]).toEqual([50, 70, -1])
    if (backend.capabilities.lists) {
      await s.rpush('l', 1)
      expect(await s.ttl('l')).toBe(-1)
    }
  })

  it('is off by default and rejects a bad value', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    expect(await s.ttl('a')).toBe(-1)
    expect(await codeOf(() => backend.open({ defaultTtlMs: -1 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => backend.open({ defaultTtlMs: 1.5 }))).toBe('KV_INVALID_ARGUMENT')
  })
})
