// Errors and codes: every rejection is a StoreError with a stable code, raised before
// anything is applied, so a rejected call leaves the store unchanged.
import { describe, expect, it } from 'vitest'
import { isStoreError, StoreError } from '../../src/index.js'
import { backends } from './backends.js'
import { codeOf, collect, dump, type StoreLike } from './harness.js'

const cyclic = (): unknown => {
  const o: Record<string, unknown> = { a: 1 }
  o.self = o
  return o
}
const cyclicArray = (): unknown => {
  const a: unknown[] = [1]
  a.push([a])
  return a
}
class Point {
  x = 1
}

/** Every call that takes a key, with `key` in the key position. */
const keyed = (s: StoreLike, key: string): [string, () => unknown][] => {
  const calls: [string, () => unknown][] = [
    ['get', () => s.get(key)],
    ['getEntry', () => s.getEntry(key)],
    ['version', () => s.version(key)],
    ['has', () => s.has(key)],
    ['type', () => s.type(key)],
    ['set', () => s.set(key, 1)],
    ['delete', () => s.delete(key)],
    ['update', () => s.update(key, () => 1)],
    ['expire', () => s.expire(key, 10)],
    ['expireAt', () => s.expireAt(key, Date.now() + 1000)],
    ['persist', () => s.persist(key)],
    ['ttl', () => s.ttl(key)],
    ['touch', () => s.touch(key, 10)],
    ['incr', () => s.incr(key)],
    ['decr', () => s.decr(key)],
    ['batch', () => s.batch([{ type: 'set', key, value: 1 }])],
  ]
  return calls
}

const collectionCalls = (s: StoreLike, key: string, caps: { lists: boolean; hashes: boolean }): [string, () => unknown][] => {
  const calls: [string, () => unknown][] = []
  if (caps.lists) {
    calls.push(
      ['lpush', () => s.lpush(key, 1)],
      ['rpush', () => s.rpush(key, 1)],
      ['lpop', () => s.lpop(key)],
      ['lrange', () => s.lrange(key)],
      ['llen', () => s.llen(key)],
      ['lindex', () => s.lindex(key, 0)],
      ['ltrim', () => s.ltrim(key, 0, 1)],
    )
  }
  if (caps.hashes) {
    calls.push(
      ['hset', () => s.hset(key, { f: 1 })],
      ['hget', () => s.hget(key, 'f')],
      ['hdel', () => s.hdel(key, 'f')],
      ['hgetall', () => s.hgetall(key)],
      ['hlen', () => s.hlen(key)],
      ['hexists', () => s.hexists(key, 'f')],
    )
  }
  return calls
}

describe.each(backends)('errors: $name', (backend) => {
  const caps = backend.capabilities

  it('rejections are StoreErrors with a stable code, recognised by isStoreError', async () => {
    const s = await backend.open()
    let caught: unknown
    try {
      await s.set('', 1)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(StoreError)
    expect(caught).toBeInstanceOf(Error)
    expect(isStoreError(caught)).toBe(true)
    expect(isStoreError(caught, 'KV_INVALID_KEY')).toBe(true)
    expect(isStoreError(caught, 'KV_INVALID_VALUE')).toBe(false)
    expect((caught as StoreError).name).toBe('StoreError')
    expect((caught as StoreError).code).toBe('KV_INVALID_KEY')
    expect(typeof (caught as StoreError).message).toBe('string')
    expect(isStoreError(new Error('x'))).toBe(false)
  })

  it.each([
    ['the empty string', ''],
    ['a number', 1],
    ['null', null],
    ['undefined', undefined],
    ['an object', {}],
    ['a lone high surrogate', 'a\ud800'],
    ['a lone low surrogate', '\udc00b'],
    ['a reversed pair', '\udc00\ud800'],
    ['a key over 64 KiB of UTF-8', 'x'.repeat(65_537)],
    ['a key of 21,846 three-byte characters', '\u20ac'.repeat(21_846)],
  ])('rejects %s as a key with KV_INVALID_KEY everywhere, changing nothing', async (_what, key) => {
    const s = await backend.open()
    await s.set('keep', 1)
    const before = await dump(s)
    for (const [name, call] of [...keyed(s, key as string), ...collectionCalls(s, key as string, caps)]) {
      expect([name, await codeOf(call)]).toEqual([name, 'KV_INVALID_KEY'])
    }
    expect(await dump(s)).toEqual(before)
  })

  it('accepts a key of exactly 64 KiB of UTF-8, and the maxKeyBytes option counts UTF-8 bytes', async () => {
    const s = await backend.open()
    const key = '\u00e9'.repeat(32_768) // 2 bytes each
    await s.set(key, 1)
    expect(await s.get(key)).toBe(1)
    const small = await backend.open({ maxKeyBytes: 8 })
    expect(await small.set('x'.repeat(8), 1)).toBe(true)
    expect(await codeOf(() => small.set('x'.repeat(9), 1))).toBe('KV_INVALID_KEY')
    expect(await small.set('\u00e9'.repeat(4), 1)).toBe(true) // 4 characters, 8 bytes
    expect(await codeOf(() => small.set('\u00e9'.repeat(5), 1))).toBe('KV_INVALID_KEY') // 5 characters, 10 bytes
    expect(await codeOf(() => small.get('\u{1F600}\u{1F600}\u{1F600}'))).toBe('KV_INVALID_KEY') // 6 code units, 12 bytes
    expect(await small.keys()).toEqual(['xxxxxxxx', '\u00e9\u00e9\u00e9\u00e9'])
  })

  it('accepts unusual but well-formed keys', async () => {
    const s = await backend.open()
    const keys = [' ', '\u0000', '\n', '*', '[', '\\', '\u{1F600}', '\uffff', 'a'.repeat(1000)]
    for (const k of keys) expect(await s.set(k, k)).toBe(true)
    for (const k of keys) expect(await s.get(k)).toBe(k)
  })

  it.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a bigint', 10n],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['a cycle', cyclic()],
    ['a cycle through an array', cyclicArray()],
    ['a Date', new Date(0)],
    ['a Map', new Map([[1, 2]])],
    ['a Set', new Set([1])],
    ['a class instance', new Point()],
    ['a string with a lone surrogate', 'bad \ud800 string'],
    ['an object key with a lone surrogate', { ['\udfff']: 1 }],
    ['a nested undefined', { a: [1, undefined] }],
    ['a nested function', { f: () => 1 }],
    ['a nested NaN', [Number.NaN]],
    ['a nested Uint8Array', { b: new Uint8Array(1) }],
    ['a Uint8Array in an array', [new Uint8Array(1)]],
  ])('rejects %s as a value with KV_INVALID_VALUE everywhere, changing nothing', async (_what, value) => {
    const s = await backend.open()
    await s.set('k', 'old')
    const before = await dump(s)
    const calls: [string, () => unknown][] = [
      ['set', () => s.set('k', value)],
      ['set new', () => s.set('new', value)],
      ['batch', () => s.batch([{ type: 'set', key: 'new', value }])],
    ]
    // update's fn returning undefined means "delete" (documented), so only other values apply.
    if (value !== undefined) calls.push(['update', () => s.update('k', () => value as never)])
    if (caps.lists) calls.push(['rpush', () => s.rpush('new', value)])
    if (caps.hashes) calls.push(['hset', () => s.hset('new', { f: value })])
    if (caps.atomic) calls.push(['atomic', () => s.atomic().set('new', value).commit()])
    for (const [name, call] of calls) expect([name, await codeOf(call)]).toEqual([name, 'KV_INVALID_VALUE'])
    expect(await dump(s)).toEqual(before)
  })

  it('rejects a value deeper than the nesting limit, and accepts a deep one within it', async () => {
    const s = await backend.open()
    let deep: unknown = 1
    for (let i = 0; i < 200; i++) deep = [deep]
    await s.set('ok', deep)
    expect(await s.get('ok')).toEqual(deep)
    let tooDeep: unknown = 1
    for (let i = 0; i < 1000; i++) tooDeep = { a: tooDeep }
    expect(await codeOf(() => s.set('bad', tooDeep))).toBe('KV_INVALID_VALUE')
    expect(await s.has('bad')).toBe(false)
  })

  it('rejects values over maxValueBytes with KV_VALUE_TOO_LARGE and accepts them up to the limit', async () => {
    const s = await backend.open({ maxValueBytes: 16 })
    expect(await s.set('s', 'x'.repeat(16))).toBe(true)
    expect(await s.set('b', new Uint8Array(16))).toBe(true)
    const before = await dump(s)
    const calls: [string, () => unknown][] = [
      ['string', () => s.set('s', 'x'.repeat(17))],
      ['multibyte string', () => s.set('s', '\u00e9'.repeat(9))],
      ['bytes', () => s.set('b', new Uint8Array(17))],
      ['json', () => s.set('j', { text: 'x'.repeat(20) })],
      ['batch', () => s.batch([{ type: 'set', key: 'n', value: 1 }, { type: 'set', key: 'big', value: 'y'.repeat(100) }])],
      ['update', () => s.update('s', () => 'z'.repeat(17))],
    ]
    if (caps.lists) calls.push(['rpush', () => s.rpush('l', 'x'.repeat(17))])
    if (caps.hashes) calls.push(['hset', () => s.hset('h', { f: 'x'.repeat(17) })])
    if (caps.atomic) calls.push(['atomic', () => s.atomic().set('a', 'x'.repeat(17)).commit()])
    for (const [name, call] of calls) expect([name, await codeOf(call)]).toEqual([name, 'KV_VALUE_TOO_LARGE'])
    expect(await dump(s)).toEqual(before)
  })

  it('rejects bad and misspelt options with KV_INVALID_ARGUMENT, changing nothing', async () => {
    const s = await backend.open()
    await s.set('k', 'old')
    const before = await dump(s)
    const calls: [string, () => unknown][] = [
      ['set option typo', () => s.set('k', 'new', { ttlMs: 10 } as never)],
      ['set options not an object', () => s.set('k', 'new', 'nx' as never)],
      ['expire non-number', () => s.expire('k', '10' as never)],
      ['keys non-string', () => s.keys(5 as never)],
      ['scan option typo', () => collect(s.scan({ prefx: 'a' } as never))],
      ['incr by non-integer', () => s.incr('n', 0.5)],
      ['popMany negative', () => (caps.lists ? s.popMany('l', -1) : Promise.reject(new StoreError('KV_INVALID_ARGUMENT', 'stand-in')))],
    ]
    for (const [name, call] of calls) expect([name, await codeOf(call)]).toEqual([name, 'KV_INVALID_ARGUMENT'])
    expect(await dump(s)).toEqual(before)
  })

  it('after close every call rejects with KV_CLOSED; close is idempotent', async () => {
    const s = await backend.open()
    await s.set('k', 1)
    expect(s.closed).toBe(false)
    const first = s.close()
    expect(s.close()).toBe(first) // the same promise
    await first
    await s.close()
    expect(s.closed).toBe(true)
    const calls: [string, () => unknown][] = [
      ...keyed(s, 'k'),
      ...collectionCalls(s, 'k', caps),
      ['keys', () => s.keys()],
      ['scan', () => collect(s.scan())],
      ['count', () => s.count()],
      ['clear', () => s.clear()],
      ['compact', () => s.compact()],
      ['snapshot', () => s.snapshot(backend.scratchPath?.('closed.kvs') ?? 'closed.kvs')],
      ['load', () => s.load(backend.scratchPath?.('closed.kvs') ?? 'closed.kvs')],
    ]
    if (caps.transactions) calls.push(['transaction', () => s.transaction(() => 1)])
    if (caps.atomic) calls.push(['atomic', () => s.atomic().set('a', 1).commit()])
    if (caps.watch) calls.push(['watch', () => s.watch()])
    for (const [name, call] of calls) expect([name, await codeOf(call)]).toEqual([name, 'KV_CLOSED'])
    expect(() => s.stats()).not.toThrow() // stats never throws
  })

  it('close waits for writes issued before it; calls issued after it are refused', async () => {
    const s = await backend.open()
    const writes = [s.set('a', 1), s.incr('n'), s.batch([{ type: 'set', key: 'b', value: 2 }])]
    const closing = s.close()
    const late = codeOf(() => s.set('late', 1))
    expect(await Promise.all(writes)).toEqual([true, 1, undefined])
    await closing
    expect(await late).toBe('KV_CLOSED')
  })

  it('a scan already running when the store closes ends or rejects with KV_CLOSED, never returns garbage', async () => {
    const s = await backend.open()
    await s.batch(Array.from({ length: 10 }, (_, i) => ({ type: 'set' as const, key: `k${i}`, value: i })))
    const it = s.scan()
    expect((await it.next()).value).toEqual(['k0', 0])
    await s.close()
    const code = await codeOf(async () => {
      for await (const [k, v] of it) expect(k).toBe(`k${v as number}`)
    })
    expect(['resolved', 'KV_CLOSED']).toContain(code)
  })
})
