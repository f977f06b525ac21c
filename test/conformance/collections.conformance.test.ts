// Lists and hashes, with Redis semantics: push order, pops, index rules, wrong types,
// and an emptied collection deleting its key.
import { describe, expect } from 'vitest'
import { backends } from './backends.js'
import { codeOf, collect, dump, failsWithStoreError, itWhen } from './harness.js'

describe.each(backends)('lists: $name', (backend) => {
  const lists = backend.capabilities.lists

  itWhen(lists)('lpush pushes one by one (last value first), rpush appends; both resolve the length', async () => {
    const s = await backend.open()
    expect(await s.lpush('l', 'a', 'b', 'c')).toBe(3)
    expect(await s.rpush('l', 'd', 'e')).toBe(5)
    expect(await s.lpush('l', 'z')).toBe(6)
    expect(await s.lrange('l')).toEqual(['z', 'c', 'b', 'a', 'd', 'e'])
    expect(await s.llen('l')).toBe(6)
    expect(await s.type('l')).toBe('list')
    expect(await s.has('l')).toBe(true)
  })

  itWhen(lists)('holds values of every kind, copied in and out', async () => {
    const s = await backend.open()
    const bytes = new Uint8Array([1, 2])
    await s.rpush('l', 'str', 0, -0, true, null, { a: [1] }, [2], bytes)
    bytes[0] = 9
    const got = await s.lrange('l')
    expect(got).toEqual(['str', 0, -0, true, null, { a: [1] }, [2], new Uint8Array([1, 2])])
    expect(Object.is(got[2], -0)).toBe(true)
    expect(Object.isFrozen(got[5])).toBe(true)
    ;(got[7] as Uint8Array)[1] = 9
    expect(await s.lindex('l', -1)).toEqual(new Uint8Array([1, 2]))
  })

  itWhen(lists)('lpop and rpop take from either end; popMany takes up to count', async () => {
    const s = await backend.open()
    await s.rpush('l', 1, 2, 3, 4, 5, 6)
    expect(await s.lpop('l')).toBe(1)
    expect(await s.rpop('l')).toBe(6)
    expect(await s.popMany('l', 2)).toEqual([2, 3])
    expect(await s.popMany('l', 1, false)).toEqual([5])
    expect(await s.lrange('l')).toEqual([4])
    expect(await s.popMany('l', 0)).toEqual([])
    expect(await s.lrange('l')).toEqual([4])
    expect(await s.popMany('l', 10)).toEqual([4])
    await s.rpush('r', 'a', 'b', 'c')
    expect(await s.popMany('r', 5, false)).toEqual(['c', 'b', 'a']) // tail first
  })

  itWhen(lists)('popping the last element deletes the key; pops of a missing key give nothing', async () => {
    const s = await backend.open()
    await s.rpush('l', 'only')
    expect(await s.rpop('l')).toBe('only')
    expect(await s.has('l')).toBe(false)
    expect(await s.type('l')).toBeUndefined()
    expect(await s.keys()).toEqual([])
    expect(await s.count()).toBe(0)
    expect(await s.lpop('l')).toBeUndefined()
    expect(await s.rpop('l')).toBeUndefined()
    expect(await s.popMany('l', 3)).toEqual([])
    expect(await s.llen('l')).toBe(0)
    expect(await s.lrange('l')).toEqual([])
    expect(await s.lindex('l', 0)).toBeUndefined()
    await s.rpush('m', 1, 2)
    expect(await s.popMany('m', 2)).toEqual([1, 2])
    expect(await s.has('m')).toBe(false)
  })

  itWhen(lists)('lrange follows Redis index rules', async () => {
    const s = await backend.open()
    await s.rpush('l', 'a', 'b', 'c', 'd', 'e')
    const cases: [number, number, string[]][] = [
      [0, -1, ['a', 'b', 'c', 'd', 'e']],
      [0, 0, ['a']],
      [1, 3, ['b', 'c', 'd']],
      [-2, -1, ['d', 'e']],
      [-100, 1, ['a', 'b']], // start clamped to 0
      [3, 100, ['d', 'e']], // stop clamped to the end
      [-100, 100, ['a', 'b', 'c', 'd', 'e']],
      [3, 1, []], // start after stop
      [5, 10, []], // start past the end
      [-1, -2, []],
      [0, -6, []], // stop before the start
      [-3, 2, ['c']],
    ]
    for (const [start, stop, want] of cases) expect([start, stop, await s.lrange('l', start, stop)]).toEqual([start, stop, want])
    expect(await s.lrange('l', 2)).toEqual(['c', 'd', 'e']) // stop defaults to -1
  })

  itWhen(lists)('lindex counts from either end and is undefined out of range', async () => {
    const s = await backend.open()
    await s.rpush('l', 'a', 'b', 'c')
    expect(await s.lindex('l', 0)).toBe('a')
    expect(await s.lindex('l', 2)).toBe('c')
    expect(await s.lindex('l', -1)).toBe('c')
    expect(await s.lindex('l', -3)).toBe('a')
    expect(await s.lindex('l', 3)).toBeUndefined()
    expect(await s.lindex('l', -4)).toBeUndefined()
  })

  itWhen(lists)('lset replaces one element; out of range or a missing key is KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    await s.rpush('l', 'a', 'b', 'c')
    await s.lset('l', 1, 'B')
    await s.lset('l', -1, { c: true })
    expect(await s.lrange('l')).toEqual(['a', 'B', { c: true }])
    const before = await dump(s)
    expect(await codeOf(() => s.lset('l', 3, 'x'))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lset('l', -4, 'x'))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lset('missing', 0, 'x'))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lset('l', 0, undefined))).toBe('KV_INVALID_VALUE')
    expect(await dump(s)).toEqual(before)
    expect(await s.has('missing')).toBe(false)
  })

  itWhen(lists)('ltrim keeps start..stop (Redis rules); trimming to nothing deletes the key', async () => {
    const s = await backend.open()
    await s.rpush('l', 0, 1, 2, 3, 4, 5)
    await s.ltrim('l', 1, -2)
    expect(await s.lrange('l')).toEqual([1, 2, 3, 4])
    await s.ltrim('l', -3, 100)
    expect(await s.lrange('l')).toEqual([2, 3, 4])
    await s.ltrim('l', 0, 0)
    expect(await s.lrange('l')).toEqual([2])
    await s.ltrim('l', 1, 0) // empty range
    expect(await s.has('l')).toBe(false)
    await s.ltrim('missing', 0, 1) // a no-op
    expect(await s.has('missing')).toBe(false)
    await s.rpush('m', 1, 2)
    await s.ltrim('m', 5, 10)
    expect(await s.has('m')).toBe(false)
  })

  itWhen(lists)('rejects bad list arguments with KV_INVALID_ARGUMENT and changes nothing', async () => {
    const s = await backend.open()
    await s.rpush('l', 1, 2)
    const before = await dump(s)
    expect(await codeOf(() => s.rpush('l'))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lpush('new'))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lrange('l', 0.5, 1))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lrange('l', 0, Number.NaN))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lindex('l', 1.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.lset('l', 0.5, 1))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.ltrim('l', 0, 1.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.popMany('l', -1))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.popMany('l', 1.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.rpush('l', 3, () => 4))).toBe('KV_INVALID_VALUE')
    expect(await codeOf(() => s.lpush('l', Number.NaN))).toBe('KV_INVALID_VALUE')
    expect(await dump(s)).toEqual(before)
    expect(await s.has('new')).toBe(false)
  })

  itWhen(lists)('list operations on another type fail with KV_WRONG_TYPE and change nothing; get on a list too', async () => {
    const s = await backend.open()
    await s.set('str', 'x')
    await s.rpush('list', 'a')
    const before = await dump(s)
    for (const op of [
      () => s.lpush('str', 'y'),
      () => s.rpush('str', 'y'),
      () => s.lpop('str'),
      () => s.rpop('str'),
      () => s.popMany('str', 1),
      () => s.lrange('str'),
      () => s.llen('str'),
      () => s.lindex('str', 0),
      () => s.lset('str', 0, 'y'),
      () => s.ltrim('str', 0, 0),
      () => s.get('list'),
      () => s.getEntry('list'),
      () => s.incr('list'),
    ]) {
      expect(await codeOf(op)).toBe('KV_WRONG_TYPE')
    }
    expect(await dump(s)).toEqual(before)
  })

  itWhen(lists)('a list is a key: keys, count, has, version, delete and set see it; scan skips it', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.rpush('l', 1, 2)
    await s.set('z', 2)
    expect(await s.keys()).toEqual(['a', 'l', 'z'])
    expect(await s.count()).toBe(3)
    expect(await s.version('l')).toBeGreaterThan(0)
    expect(await collect(s.scan())).toEqual([
      ['a', 1],
      ['z', 2],
    ])
    expect(await collect(s.scan({ limit: 2 }))).toEqual([
      ['a', 1],
      ['z', 2],
    ])
    expect(await collect(s.scan({ reverse: true, limit: 1 }))).toEqual([['z', 2]])
    await s.set('l', 'now a string')
    expect(await s.get('l')).toBe('now a string')
    await s.rpush('l2', 1)
    expect(await s.delete('l2')).toBe(true)
    expect(await s.llen('l2')).toBe(0)
    await s.rpush('l3', 1)
    await s.clear()
    expect(await s.llen('l3')).toBe(0)
  })

  itWhen(lists)('every list write is a new version of the key', async () => {
    const s = await backend.open()
    await s.rpush('l', 1, 2, 3)
    const versions = [(await s.version('l')) as number]
    for (const write of [() => s.lpush('l', 0), () => s.lset('l', 0, 9), () => s.ltrim('l', 0, 2), () => s.lpop('l')]) {
      await write()
      versions.push((await s.version('l')) as number)
    }
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as number)
    // A pop of nothing, a trim of a missing key, is no write.
    const v = await s.version('l')
    await s.popMany('l', 0)
    expect(await s.version('l')).toBe(v)
  })

  itWhen(!lists)('without lists, list operations reject with a StoreError and write nothing', async () => {
    const s = await backend.open()
    for (const op of [() => s.lpush('l', 1), () => s.rpush('l', 1), () => s.lpop('l'), () => s.lrange('l'), () => s.llen('l')]) {
      expect(await failsWithStoreError(op)).toBe(true)
    }
    expect(await s.count()).toBe(0)
  })
})

describe.each(backends)('hashes: $name', (backend) => {
  const hashes = backend.capabilities.hashes

  itWhen(hashes)('hset resolves the number of new fields; hget, hlen, hexists, hgetall read them', async () => {
    const s = await backend.open()
    expect(await s.hset('h', { a: 1, b: 'two' })).toBe(2)
    expect(await s.hset('h', { a: 3, c: { x: [1] } })).toBe(1) // a is replaced, c is new
    expect(await s.hset('h', new Map<string, unknown>([['d', null]]))).toBe(1)
    expect(await s.hget('h', 'a')).toBe(3)
    expect(await s.hget('h', 'c')).toEqual({ x: [1] })
    expect(await s.hget('h', 'd')).toBeNull()
    expect(await s.hget('h', 'nope')).toBeUndefined()
    expect(await s.hlen('h')).toBe(4)
    expect(await s.hexists('h', 'b')).toBe(true)
    expect(await s.hexists('h', 'd')).toBe(true) // a null value is a field
    expect(await s.hexists('h', 'nope')).toBe(false)
    expect(await s.hgetall('h')).toEqual(
      new Map<string, unknown>([
        ['a', 3],
        ['b', 'two'],
        ['c', { x: [1] }],
        ['d', null],
      ]),
    )
    expect(await s.type('h')).toBe('hash')
  })

  itWhen(hashes)('treats __proto__ and constructor as ordinary fields', async () => {
    const s = await backend.open()
    expect(await s.hset('h', new Map<string, unknown>([['__proto__', 1], ['constructor', 2]]))).toBe(2)
    expect(await s.hget('h', '__proto__')).toBe(1)
    expect(await s.hget('h', 'constructor')).toBe(2)
    expect(await s.hexists('h', 'toString')).toBe(false)
    expect(await s.hget('h', 'hasOwnProperty')).toBeUndefined()
    expect(await s.hlen('h')).toBe(2)
  })

  itWhen(hashes)('hash values are copied in and out', async () => {
    const s = await backend.open()
    const bytes = new Uint8Array([1, 2])
    await s.hset('h', { b: bytes, o: { n: [1] } })
    bytes[0] = 9
    const b = (await s.hget('h', 'b')) as Uint8Array
    expect([...b]).toEqual([1, 2])
    b[1] = 9
    const all = await s.hgetall('h')
    expect([...(all.get('b') as Uint8Array)]).toEqual([1, 2])
    expect(() => (all.get('o') as { n: number[] }).n.push(2)).toThrow(TypeError)
    all.set('new', 1) // the Map is the caller's own
    expect(await s.hlen('h')).toBe(2)
  })

  itWhen(hashes)('hdel resolves how many fields existed; deleting the last field deletes the key', async () => {
    const s = await backend.open()
    await s.hset('h', { a: 1, b: 2, c: 3 })
    expect(await s.hdel('h', 'a', 'zz')).toBe(1)
    expect(await s.hdel('h', 'a')).toBe(0)
    expect(await s.hlen('h')).toBe(2)
    expect(await s.hdel('h', 'b', 'c')).toBe(2)
    expect(await s.has('h')).toBe(false)
    expect(await s.keys()).toEqual([])
    expect(await s.hdel('h', 'a')).toBe(0)
    expect(await s.hdel('missing', 'a')).toBe(0)
    expect(await s.hgetall('missing')).toEqual(new Map())
    expect(await s.hlen('missing')).toBe(0)
    expect(await s.hexists('missing', 'a')).toBe(false)
    expect(await s.hget('missing', 'a')).toBeUndefined()
  })

  itWhen(hashes)('rejects bad hash arguments and changes nothing', async () => {
    const s = await backend.open()
    await s.hset('h', { a: 1 })
    const before = await dump(s)
    expect(await codeOf(() => s.hset('h', {}))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.hset('h', null as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.hset('h', [1] as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.hset('h', new Map([[1 as unknown as string, 1]])))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.hset('h', { ['\ud800']: 1 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.hset('h', { b: 2, c: undefined }))).toBe('KV_INVALID_VALUE')
    expect(await codeOf(() => s.hset('h', { b: Number.NaN }))).toBe('KV_INVALID_VALUE')
    expect(await codeOf(() => s.hset('new', {}))).toBe('KV_INVALID_ARGUMENT')
    expect(await dump(s)).toEqual(before)
    expect(await s.has('new')).toBe(false)
  })

  itWhen(hashes)('hash operations on another type fail with KV_WRONG_TYPE and change nothing; get on a hash too', async () => {
    const s = await backend.open()
    await s.set('str', 'x')
    await s.hset('hash', { f: 1 })
    if (backend.capabilities.lists) await s.rpush('list', 1)
    const before = await dump(s)
    const ops = [
      () => s.hset('str', { f: 1 }),
      () => s.hget('str', 'f'),
      () => s.hdel('str', 'f'),
      () => s.hgetall('str'),
      () => s.hlen('str'),
      () => s.hexists('str', 'f'),
      () => s.get('hash'),
      () => s.getEntry('hash'),
      () => s.incr('hash'),
    ]
    if (backend.capabilities.lists) ops.push(() => s.hset('list', { f: 1 }), () => s.lrange('hash'), () => s.rpush('hash', 1))
    for (const op of ops) expect(await codeOf(op)).toBe('KV_WRONG_TYPE')
    expect(await dump(s)).toEqual(before)
  })

  itWhen(hashes)('a hash is a key: keys, count, has, delete, clear and set see it; scan skips it', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.hset('h', { f: 1 })
    expect(await s.keys()).toEqual(['a', 'h'])
    expect(await s.count()).toBe(2)
    expect(await collect(s.scan())).toEqual([['a', 1]])
    await s.set('h', 'plain')
    expect(await s.get('h')).toBe('plain')
    await s.hset('h2', { f: 1 })
    expect(await s.delete('h2')).toBe(true)
    expect(await s.hlen('h2')).toBe(0)
    await s.hset('h3', { f: 1 })
    await s.clear()
    expect(await s.hlen('h3')).toBe(0)
  })

  itWhen(!hashes)('without hashes, hash operations reject with a StoreError and write nothing', async () => {
    const s = await backend.open()
    for (const op of [() => s.hset('h', { f: 1 }), () => s.hget('h', 'f'), () => s.hgetall('h'), () => s.hlen('h')]) {
      expect(await failsWithStoreError(op)).toBe(true)
    }
    expect(await s.count()).toBe(0)
  })
})
