// getMany on every backend: order, missing and expired keys, wrong types, bad arguments.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, openWithClock } from './harness.js'

describe.each(backends)('getMany: $name', (backend) => {
  it('returns values in the order asked, undefined where missing, repeats included', async () => {
    const s = await backend.open()
    await s.batch([{ type: 'set', key: 'a', value: 1 }, { type: 'set', key: 'b', value: { x: [2] } }])
    expect(await s.getMany(['b', 'nope', 'a', 'b'])).toEqual([{ x: [2] }, undefined, 1, { x: [2] }])
    expect(await s.getMany([])).toEqual([])
  })

  it('reads an expired key as undefined', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('t', 'v', { ttl: 100 })
    await s.set('p', 'w')
    clock.advance(101)
    expect(await s.getMany(['t', 'p'])).toEqual([undefined, 'w'])
  })

  it('rejects a non-array, a bad key and a list key with stable codes', async () => {
    const s = await backend.open()
    expect(await codeOf(() => s.getMany('a' as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.getMany(['a', ''] as never))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => s.getMany([1] as never))).toBe('KV_INVALID_KEY')
    if (backend.capabilities.lists) {
      await s.rpush('l', 1)
      expect(await codeOf(() => s.getMany(['l']))).toBe('KV_WRONG_TYPE')
    }
  })

  it('does not see a change made to the keys array after the call', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const keys = ['a']
    const p = s.getMany(keys)
    keys[0] = 'b'
    expect(await p).toEqual([1])
  })
})
