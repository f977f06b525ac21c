import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (err instanceof StoreError) return err.code
    return `not a StoreError: ${String(err)}`
  }
  return 'resolved'
}

describe('Store (in memory)', () => {
  it('returns undefined for a missing key', async () => {
    const s = await Store.open()
    expect(await s.get('nope')).toBeUndefined()
    expect(await s.has('nope')).toBe(false)
  })

  it('stores and returns strings, numbers, booleans, null, JSON and bytes', async () => {
    const s = await Store.open()
    const values: unknown[] = ['Alice', '', 42, -0, 1.5, true, false, null, { a: [1, { b: 'c' }] }, [1, 2], new Uint8Array([1, 2, 3])]
    for (const [i, v] of values.entries()) await s.set(`k${i}`, v)
    for (const [i, v] of values.entries()) expect(await s.get(`k${i}`)).toEqual(v)
    expect(Object.is(await s.get('k3'), -0)).toBe(true)
  })

  it('treats __proto__ and constructor as ordinary keys', async () => {
    const s = await Store.open()
    await s.set('__proto__', 'x')
    await s.set('constructor', 'y')
    expect(await s.get('__proto__')).toBe('x')
    expect(await s.keys('*')).toEqual(['__proto__', 'constructor'])
  })

  it('never lets a caller change a stored value', async () => {
    const s = await Store.open<{ n: number[] } | Uint8Array>()
    const obj = { n: [1, 2] }
    await s.set('o', obj)
    obj.n.push(3)
    const got = (await s.get('o')) as { n: number[] }
    expect(got).toEqual({ n: [1, 2] })
    expect(() => got.n.push(4)).toThrow(TypeError)
    const bytes = new Uint8Array([1, 2])
    await s.set('b', bytes)
    bytes[0] = 9
    const b1 = (await s.get('b')) as Uint8Array
    b1[1] = 9
    expect(await s.get('b')).toEqual(new Uint8Array([1, 2]))
  })

  it('delete reports whether the key existed', async () => {
    const s = await Store.open()
    await s.set('a', 1)
    expect(await s.delete('a')).toBe(true)
    expect(await s.delete('a')).toBe(false)
    expect(await s.get('a')).toBeUndefined()
  })

  it('keys matches Redis globs in key order', async () => {
    const s = await Store.open()
    for (const k of ['user:2', 'user:1', 'user:10', 'order:1', 'user', 'users:1']) await s.set(k, k)
    expect(await s.keys('user:*')).toEqual(['user:1', 'user:10', 'user:2'])
    expect(await s.keys('user:?')).toEqual(['user:1', 'user:2'])
    expect(await s.keys('*:1')).toEqual(['order:1', 'user:1', 'users:1'])
    expect(await s.keys('user')).toEqual(['user'])
    expect(await s.keys('nothing')).toEqual([])
    expect(await s.keys()).toHaveLength(6)
  })

  it('scans ranges, prefixes, reverse and limits', async () => {
    const s = await Store.open<number>()
    for (let i = 0; i < 20; i++) await s.set(`k${String(i).padStart(2, '0')}`, i)
    await s.set('other', -1)
    const keys = async (o: Parameters<typeof s.scan>[0]) => (await collect(s.scan(o))).map(([k]) => k)
    expect(await keys({ prefix: 'k1', limit: 3 })).toEqual(['k10', 'k11', 'k12'])
    expect(await keys({ gte: 'k05', lt: 'k08' })).toEqual(['k05', 'k06', 'k07'])
    expect(await keys({ gt: 'k05', lte: 'k08' })).toEqual(['k06', 'k07', 'k08'])
    expect(await keys({ prefix: 'k0', reverse: true, limit: 2 })).toEqual(['k09', 'k08'])
    expect(await keys({ prefix: 'k', gte: 'k18' })).toEqual(['k18', 'k19'])
    expect(await keys({ limit: 0 })).toEqual([])
    expect((await collect(s.scan({ prefix: 'oth' })))).toEqual([['other', -1]])
  })

  it('scan sees a point-in-time view while writes continue', async () => {
    const s = await Store.open<number>()
    for (let i = 0; i < 1000; i++) await s.set(`k${String(i).padStart(4, '0')}`, i)
    const seen: string[] = []
    for await (const [k] of s.scan()) {
      seen.push(k)
      if (seen.length === 10) {
        await s.delete('k0500')
        await s.set('k0500x', 1)
        await s.clear()
      }
    }
    expect(seen).toHaveLength(1000)
    expect(await s.count()).toBe(0)
  })

  it('count and clear', async () => {
    const s = await Store.open()
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'b', value: 2 },
    ])
    expect(await s.count()).toBe(2)
    await s.clear()
    expect(await s.count()).toBe(0)
  })

  it('batch applies nothing when any op is invalid', async () => {
    const s = await Store.open()
    await s.set('keep', 1)
    const bad = s.batch([
      { type: 'delete', key: 'keep' },
      { type: 'set', key: 'x', value: () => 1 },
    ])
    expect(await codeOf(bad)).toBe('KV_INVALID_VALUE')
    expect(await s.get('keep')).toBe(1)
    expect(await s.has('x')).toBe(false)
  })

  it.each([
    ['empty key', ''],
    ['number key', 1],
    ['null key', null],
    ['undefined key', undefined],
    ['object key', {}],
    ['lone surrogate', '\ud800'],
    ['key over 64 KiB', 'x'.repeat(65_537)],
  ])('rejects %s with KV_INVALID_KEY and changes nothing', async (_name, key) => {
    const s = await Store.open()
    expect(await codeOf(s.set(key as string, 1))).toBe('KV_INVALID_KEY')
    expect(await codeOf(s.get(key as string))).toBe('KV_INVALID_KEY')
    expect(await s.count()).toBe(0)
  })

  it('accepts a key of exactly 64 KiB in UTF-8', async () => {
    const s = await Store.open()
    const key = 'é'.repeat(32_768)
    await s.set(key, 1)
    expect(await s.get(key)).toBe(1)
    expect(await codeOf(s.set(`${key}x`, 1))).toBe('KV_INVALID_KEY')
  })

  const circular: Record<string, unknown> = {}
  circular.self = circular
  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a bigint', 1n],
    ['NaN', Number.NaN],
    ['Infinity', Infinity],
    ['a circular object', circular],
    ['a Date', new Date()],
    ['a Map', new Map()],
    ['nested undefined', { a: undefined }],
    ['a lone surrogate string', 'a\udc00'],
    ['nested NaN', [1, Number.NaN]],
  ])('rejects %s with KV_INVALID_VALUE and changes nothing', async (_name, value) => {
    const s = await Store.open()
    await s.set('k', 'old')
    expect(await codeOf(s.set('k', value))).toBe('KV_INVALID_VALUE')
    expect(await s.get('k')).toBe('old')
  })

  it('rejects values over maxValueBytes with KV_VALUE_TOO_LARGE', async () => {
    const s = await Store.open({ maxValueBytes: 10 })
    await s.set('ok', 'x'.repeat(10))
    expect(await codeOf(s.set('big', 'x'.repeat(11)))).toBe('KV_VALUE_TOO_LARGE')
    expect(await s.has('big')).toBe(false)
  })

  it('rejects bad options with KV_INVALID_ARGUMENT', async () => {
    expect(await codeOf(Store.open({ sync: 'yes' as never }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ maxValueBytes: -1 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ maxKeyBytes: Number.NaN }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: 'a', file: 'b' }))).toBe('KV_INVALID_ARGUMENT')
  })

  it('rejects every call after close with KV_CLOSED', async () => {
    const s = await Store.open()
    await s.set('a', 1)
    await s.close()
    expect(await codeOf(s.get('a'))).toBe('KV_CLOSED')
    expect(await codeOf(s.set('a', 2))).toBe('KV_CLOSED')
    expect(await codeOf(s.keys())).toBe('KV_CLOSED')
    expect(await codeOf(s.count())).toBe('KV_CLOSED')
    expect(() => s.scan()).toThrow(StoreError)
    expect(s.closed).toBe(true)
    await s.close() // idempotent
  })

  it('supports await using', async () => {
    let store: Store | undefined
    {
      await using s = await Store.open()
      store = s
      await s.set('a', 1)
    }
    expect(store.closed).toBe(true)
  })

  it('update is atomic with respect to concurrent writes', async () => {
    const s = await Store.open<number>()
    await s.set('n', 0)
    const slow = s.update('n', async (old) => {
      await new Promise((r) => setTimeout(r, 5))
      return (old ?? 0) + 1
    })
    const racing = s.set('n', 100)
    await Promise.all([slow, racing])
    // The set queued behind the update, so it wins last.
    expect(await s.get('n')).toBe(100)
    expect(await s.update('n', (v) => (v ?? 0) + 1)).toBe(101)
    expect(await s.update('n', () => undefined)).toBeUndefined()
    expect(await s.has('n')).toBe(false)
  })

  it('set with ifNotExists / ifExists / keepTtl follows Redis NX / XX / KEEPTTL', async () => {
    const s = await Store.open()
    expect(await s.set('a', 1, { ifExists: true })).toBe(false)
    expect(await s.set('a', 1, { ifNotExists: true })).toBe(true)
    expect(await s.set('a', 2, { ifNotExists: true })).toBe(false)
    expect(await s.get('a')).toBe(1)
    await s.expire('a', 10_000)
    await s.set('a', 3, { keepTtl: true })
    expect(await s.ttl('a')).toBeGreaterThan(0)
    await s.set('a', 4)
    expect(await s.ttl('a')).toBe(-1)
  })

  it('stats counts keys and reports the mode', async () => {
    const s = await Store.open()
    await s.set('a', 1)
    expect(s.stats()).toMatchObject({ mode: 'memory', keys: 1, seq: 1, recovery: undefined })
  })
})

describe('transaction commit', () => {
  it('applies a committed transaction exactly once and resolves after it', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    let runs = 0
    const r = await s.transaction(async (tx) => {
      runs++
      tx.set('a', ((await tx.get('a')) ?? 0) + 1)
      return 'done'
    })
    expect(r).toBe('done')
    expect(runs).toBe(1)
    expect(await s.get('a')).toBe(2)
    expect(s.stats().seq).toBe(2)
  })
})
