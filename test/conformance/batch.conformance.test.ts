// batch(ops): many writes applied all or nothing, in order, as one commit.
import { describe, expect, it } from 'vitest'
import type { BatchOp } from '../../src/index.js'
import { backends } from './backends.js'
import { codeOf, dump, openWithClock } from './harness.js'

describe.each(backends)('batch: $name', (backend) => {
  it('applies sets and deletes in order', async () => {
    const s = await backend.open()
    await s.set('gone', 0)
    await s.set('kept', 0)
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'b', value: { x: [1] } },
      { type: 'delete', key: 'gone' },
      { type: 'set', key: 'a', value: 2 }, // later op on the same key wins
      { type: 'set', key: 'c', value: 'c' },
      { type: 'delete', key: 'c' },
      { type: 'delete', key: 'never-existed' },
      { type: 'delete', key: 'd' },
      { type: 'set', key: 'd', value: 'back' },
    ])
    expect(await s.keys()).toEqual(['a', 'b', 'd', 'kept'])
    expect(await s.get('a')).toBe(2)
    expect(await s.get('b')).toEqual({ x: [1] })
    expect(await s.get('d')).toBe('back')
  })

  it('gives every key of the batch the same version', async () => {
    const s = await backend.open()
    await s.set('before', 1)
    const v0 = (await s.version('before')) as number
    await s.batch([
      { type: 'set', key: 'b1', value: 1 },
      { type: 'set', key: 'b2', value: 2 },
      { type: 'set', key: 'b3', value: 3 },
    ])
    const versions = [await s.version('b1'), await s.version('b2'), await s.version('b3')]
    expect(new Set(versions).size).toBe(1)
    expect(versions[0]).toBeGreaterThan(v0)
    if (backend.capabilities.versionsAreSeqs) {
      expect(versions[0]).toBe(v0 + 1)
      expect(s.stats().seq).toBe(v0 + 1)
    } else {
      expect(Number.isSafeInteger(versions[0])).toBe(true)
    }
  })

  it('an empty batch resolves and changes nothing', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const before = await dump(s)
    await s.batch([])
    expect(await dump(s)).toEqual(before)
  })

  it('sets a ttl per op', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.batch([
      { type: 'set', key: 't', value: 1, ttl: 1000 },
      { type: 'set', key: 'p', value: 2 },
    ])
    expect(await s.ttl('p')).toBe(-1)
    if (backend.capabilities.fakeClock) {
      expect(await s.ttl('t')).toBe(1000)
      clock.advance(1000)
      expect(await s.has('t')).toBe(false)
    } else {
      const ttl = await s.ttl('t')
      expect(ttl > 0 && ttl <= 1000).toBe(true)
    }
    expect(await s.get('p')).toBe(2)
  })

  const bad: [string, BatchOp<unknown>, string][] = [
    ['an invalid key', { type: 'set', key: '', value: 1 }, 'KV_INVALID_KEY'],
    ['a non-string key', { type: 'delete', key: 7 as unknown as string }, 'KV_INVALID_KEY'],
    ['a function value', { type: 'set', key: 'x', value: () => 1 }, 'KV_INVALID_VALUE'],
    ['an undefined value', { type: 'set', key: 'x', value: undefined }, 'KV_INVALID_VALUE'],
    ['NaN', { type: 'set', key: 'x', value: Number.NaN }, 'KV_INVALID_VALUE'],
    ['a bad ttl', { type: 'set', key: 'x', value: 1, ttl: -5 }, 'KV_INVALID_ARGUMENT'],
    ['an unknown op type', { type: 'put', key: 'x', value: 1 } as unknown as BatchOp<unknown>, 'KV_INVALID_ARGUMENT'],
    ['an unknown op field', { type: 'set', key: 'x', value: 1, ttll: 5 } as unknown as BatchOp<unknown>, 'KV_INVALID_ARGUMENT'],
    ['a null op', null as unknown as BatchOp<unknown>, 'KV_INVALID_ARGUMENT'],
  ]
  it.each(bad)('a batch with %s rejects as a whole and applies nothing', async (_what, op, code) => {
    const s = await backend.open()
    await s.set('keep', 1)
    await s.set('doomed', 1)
    const before = await dump(s)
    const seq = s.stats().seq
    const ops: BatchOp<unknown>[] = [
      { type: 'set', key: 'keep', value: 'changed' },
      { type: 'delete', key: 'doomed' },
      { type: 'set', key: 'new', value: 1 },
      op,
      { type: 'set', key: 'after', value: 1 },
    ]
    expect(await codeOf(() => s.batch(ops))).toBe(code)
    expect(await dump(s)).toEqual(before)
    expect(s.stats().seq).toBe(seq)
  })

  it('rejects a non-array with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    for (const ops of [null, {}, 'ops', { type: 'set', key: 'a', value: 1 }]) {
      expect(await codeOf(() => s.batch(ops as never))).toBe('KV_INVALID_ARGUMENT')
    }
    expect(await s.count()).toBe(0)
  })

  it('rejects a batch over maxBatchBytes with KV_BATCH_TOO_LARGE and applies nothing', async () => {
    const s = await backend.open({ maxBatchBytes: 256 })
    const big = Array.from({ length: 10 }, (_, i) => ({ type: 'set' as const, key: `k${i}`, value: 'x'.repeat(50) }))
    expect(await codeOf(() => s.batch(big))).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(0)
    await s.batch(big.slice(0, 1))
    expect(await s.keys()).toEqual(['k0'])
  })

  it('a batch over maxBatchOps rejects with KV_BATCH_TOO_LARGE and writes nothing; one of that size applies', async () => {
    const s = await backend.open()
    const max = backend.capabilities.maxBatchOps
    // Backends without an op limit are checked with 1000 ops applied at once.
    const n = Number.isFinite(max) ? max : 1000
    const ops = Array.from({ length: n + 1 }, (_, i) => ({ type: 'set' as const, key: `b${String(i).padStart(4, '0')}`, value: i }))
    if (Number.isFinite(max)) {
      expect(await codeOf(() => s.batch(ops))).toBe('KV_BATCH_TOO_LARGE')
      expect(await s.count()).toBe(0)
    } else {
      await s.batch(ops)
      expect(await s.count()).toBe(n + 1)
      await s.clear()
    }
    await s.batch(ops.slice(0, n))
    expect(await s.count()).toBe(n)
    expect(await s.get(`b${String(n - 1).padStart(4, '0')}`)).toBe(n - 1)
  })
})
