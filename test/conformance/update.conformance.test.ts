// update(key, fn): atomic read-modify-write.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, dump, gate } from './harness.js'

describe.each(backends)('update: $name', (backend) => {
  it('passes the old value (undefined when missing) and stores and resolves the new one', async () => {
    const s = await backend.open()
    const seen: unknown[] = []
    expect(
      await s.update('k', (old) => {
        seen.push(old)
        return { n: 1 }
      }),
    ).toEqual({ n: 1 })
    expect(
      await s.update('k', (old) => {
        seen.push(old)
        return { n: (old as { n: number }).n + 1 }
      }),
    ).toEqual({ n: 2 })
    expect(seen).toEqual([undefined, { n: 1 }])
    expect(await s.get('k')).toEqual({ n: 2 })
  })

  it('accepts an async function', async () => {
    const s = await backend.open()
    await s.set('k', 1)
    const r = await s.update('k', async (old) => {
      await new Promise((r) => setTimeout(r, 5))
      return (old as number) * 10
    })
    expect(r).toBe(10)
    expect(await s.get('k')).toBe(10)
  })

  it('deletes the key when fn returns undefined', async () => {
    const s = await backend.open()
    await s.set('k', 1)
    expect(await s.update('k', () => undefined)).toBeUndefined()
    expect(await s.has('k')).toBe(false)
    expect(await s.update('missing', () => undefined)).toBeUndefined()
    expect(await s.has('missing')).toBe(false)
  })

  it('resolves with a value that cannot change the stored one', async () => {
    const s = await backend.open()
    const r = (await s.update('k', () => ({ list: [1] }))) as { list: number[] }
    expect(() => r.list.push(2)).toThrow(TypeError)
    const b = (await s.update('b', () => new Uint8Array([1, 2]))) as Uint8Array
    b[0] = 9
    expect([...((await s.get('b')) as Uint8Array)]).toEqual([1, 2])
  })

  it('lets no other write run between its read and its write', async () => {
    const inOrder = backend.capabilities.readsInCallOrder
    const s = await backend.open()
    await s.set('c', 0)
    const g = gate()
    const u = s.update('c', async (old) => {
      await g.wait
      return (old as number) + 1
    })
    // Issued while fn runs: they wait behind the update, and run in call order (FIFO).
    const readFirst = s.get('c')
    const setDuring = s.set('c', 100)
    const readAfter = s.get('c')
    g.open()
    expect(await u).toBe(1)
    // In call order, the read issued before the set sees the update's result only; through a
    // follower it sees at least that (never the 0 from before the update).
    if (inOrder) expect(await readFirst).toBe(1)
    else expect([1, 100]).toContain(await readFirst)
    expect(await setDuring).toBe(true)
    expect(await readAfter).toBe(100)
    expect(await s.get('c')).toBe(100)
  })

  it('concurrent updates never lose an increment', async () => {
    const s = await backend.open()
    const all = Array.from({ length: 25 }, () =>
      s.update('n', async (old) => {
        await Promise.resolve()
        return ((old as number | undefined) ?? 0) + 1
      }),
    )
    const results = await Promise.all(all)
    expect([...results].sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    expect(await s.get('n')).toBe(25)
  })

  it('writes nothing when fn throws, and rejects with what it threw', async () => {
    const s = await backend.open()
    await s.set('k', 1)
    const before = await dump(s)
    const boom = new Error('boom')
    await expect(
      s.update('k', () => {
        throw boom
      }),
    ).rejects.toBe(boom)
    await expect(s.update('k', () => Promise.reject(boom))).rejects.toBe(boom)
    expect(await dump(s)).toEqual(before)
    // The store keeps working afterwards.
    expect(await s.update('k', (old) => (old as number) + 1)).toBe(2)
  })

  it('rejects an invalid new value with KV_INVALID_VALUE and changes nothing', async () => {
    const s = await backend.open()
    await s.set('k', 1)
    const before = await dump(s)
    expect(await codeOf(() => s.update('k', () => (() => 1) as never))).toBe('KV_INVALID_VALUE')
    expect(await codeOf(() => s.update('k', () => Number.POSITIVE_INFINITY))).toBe('KV_INVALID_VALUE')
    expect(await dump(s)).toEqual(before)
  })

  it('rejects a bad key or a non-function with coded errors', async () => {
    const s = await backend.open()
    expect(await codeOf(() => s.update('', () => 1))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => s.update('k', 'nope' as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await s.count()).toBe(0)
  })
})
