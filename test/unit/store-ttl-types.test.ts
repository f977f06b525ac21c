// TTL on a fake clock, active expiry, integers, lists and hashes (Redis semantics).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { tmpDir } from '../helpers/tmp.js'

async function open(clock = new FakeClock(), extra: Parameters<typeof Store.open>[0] = {}) {
  return { clock, s: await Store.open<unknown>({ clock, expirySweepIntervalMs: 0, ...extra }) }
}

describe('TTL', () => {
  it('hides an expired key from every read at once', async () => {
    const { clock, s } = await open()
    await s.set('k', 'v', { ttl: 100 })
    await s.set('other', 1)
    expect(await s.ttl('k')).toBe(100)
    clock.advance(99)
    expect(await s.get('k')).toBe('v')
    clock.advance(1)
    expect(await s.get('k')).toBeUndefined()
    expect(await s.has('k')).toBe(false)
    expect(await s.type('k')).toBeUndefined()
    expect(await s.getEntry('k')).toBeUndefined()
    expect(await s.keys()).toEqual(['other'])
    const scanned: string[] = []
    for await (const [k] of s.scan()) scanned.push(k)
    expect(scanned).toEqual(['other'])
    expect(await s.count()).toBe(1)
    expect(await s.ttl('k')).toBe(-2)
  })

  it('expire, expireAt, persist, ttl and touch follow Redis', async () => {
    const { clock, s } = await open()
    expect(await s.expire('missing', 10)).toBe(false)
    await s.set('k', 'v')
    expect(await s.ttl('k')).toBe(-1)
    expect(await s.expire('k', 50)).toBe(true)
    expect(await s.persist('k')).toBe(true)
    expect(await s.persist('k')).toBe(false)
    expect(await s.expireAt('k', clock.now() + 30)).toBe(true)
    clock.advance(20)
    expect(await s.touch('k', 100)).toBe(true)
    clock.advance(50)
    expect(await s.get('k')).toBe('v')
    expect(await s.expireAt('k', clock.now() - 1)).toBe(true)
    expect(await s.has('k')).toBe(false)
  })

  it('set clears a TTL unless keepTtl; incr keeps it', async () => {
    const { s } = await open()
    await s.set('k', 1, { ttl: 1000 })
    await s.incr('k')
    expect(await s.ttl('k')).toBe(1000)
    await s.set('k', 2, { keepTtl: true })
    expect(await s.ttl('k')).toBe(1000)
    await s.set('k', 3)
    expect(await s.ttl('k')).toBe(-1)
  })

  it.each([0, -1, 1.5, Number.NaN, '10'])('rejects ttl %s with KV_INVALID_ARGUMENT and changes nothing', async (ttl) => {
    const { s } = await open()
    await s.set('k', 'old')
    await expect(s.set('k', 'new', { ttl: ttl as number })).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
    expect(await s.get('k')).toBe('old')
  })

  it('never resurrects or extends a key across reopen, compaction and snapshot/load', async () => {
    const dir = join(tmpDir(), 'db')
    const clock = new FakeClock()
    let s = await Store.open<string>({ dir, clock, expirySweepIntervalMs: 0 })
    await s.set('short', 'x', { ttl: 100 })
    await s.set('long', 'y', { ttl: 10_000 })
    await s.rpush('list', 'a')
    await s.expire('list', 100)
    await s.close()
    clock.advance(150)
    s = await Store.open<string>({ dir, clock, expirySweepIntervalMs: 0 })
    expect(await s.keys()).toEqual(['long'])
    expect(await s.ttl('long')).toBe(9_850)
    // A push after expiry starts a fresh list, also after replay.
    await s.rpush('list', 'b')
    await s.compact()
    const file = join(tmpDir(), 'copy.kvs')
    await s.snapshot(file)
    await s.close()
    s = await Store.open<string>({ dir, clock, expirySweepIntervalMs: 0 })
    expect(await s.lrange('list')).toEqual(['b'])
    expect(await s.ttl('long')).toBe(9_850)
    clock.advance(10_000)
    const loaded = await Store.open<string>({ clock, expirySweepIntervalMs: 0 })
    await loaded.load(file)
    expect(await loaded.keys()).toEqual(['list'])
    await s.close()
  })

  it('active expiry removes due keys in the background and counts them', async () => {
    const clock = new FakeClock()
    const s = await Store.open({ clock, expirySweepIntervalMs: 5 })
    for (let i = 0; i < 100; i++) await s.set(`k${i}`, i, { ttl: 10 })
    await s.set('stay', 1)
    clock.advance(20)
    for (let i = 0; i < 50 && s.stats().keys > 1; i++) await new Promise((r) => setTimeout(r, 10))
    expect(s.stats().keys).toBe(1)
    expect(s.stats().expiredRemoved).toBe(100)
    await s.close()
  })

  it('expires a million keys in slices that let other work run in between', async () => {
    const s = await Store.open({ expirySweepIntervalMs: 10 })
    for (let i = 0; i < 1_000_000; i += 10_000) {
      await s.batch(Array.from({ length: 10_000 }, (_, j) => ({ type: 'set' as const, key: `k${i + j}`, value: 1, ttl: 1500 + ((i + j) % 50) })))
    }
    await s.keys('x*') // sort the bulk load in before measuring
    // A 20 ms timer samples the key count while the sweep runs. No wall-clock bound (the
    // machines are shared; pause lengths belong in the bench): a sweep that is sliced lets the
    // timer in between slices, so it sees the count fall in many steps. One that is not
    // removes the keys of each 10 ms interval at once, 5 steps for this 50 ms spread of expiries.
    const seen = new Set<number>()
    const deadline = Date.now() + 30_000
    while (s.stats().keys > 0 && Date.now() < deadline) {
      seen.add(s.stats().keys)
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(s.stats().keys).toBe(0)
    const falling = [...seen].filter((n) => n < 1_000_000)
    expect(falling.length).toBeGreaterThanOrEqual(20)
    await s.close()
  }, 60_000)
})

describe('integers', () => {
  it('incr/decr create at 0, accept decimal strings, and reject non-integers without changing them', async () => {
    const { s } = await open()
    expect(await s.incr('n')).toBe(1)
    expect(await s.incr('n', 41)).toBe(42)
    expect(await s.decr('n', 2)).toBe(40)
    await s.set('str', '17')
    expect(await s.incr('str')).toBe(18)
    for (const bad of ['1.5', 'abc', '01', ' 1', 1.5, { a: 1 }]) {
      await s.set('bad', bad)
      await expect(s.incr('bad')).rejects.toMatchObject({ code: 'KV_NOT_INTEGER' })
      expect(await s.get('bad')).toEqual(bad)
    }
    await s.set('big', Number.MAX_SAFE_INTEGER)
    await expect(s.incr('big')).rejects.toMatchObject({ code: 'KV_NOT_INTEGER' })
    expect(await s.get('big')).toBe(Number.MAX_SAFE_INTEGER)
    await s.rpush('l', 1)
    await expect(s.incr('l')).rejects.toMatchObject({ code: 'KV_WRONG_TYPE' })
    await expect(s.incr('n', 1.5)).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
  })
})

describe('lists and hashes', () => {
  it('lists follow Redis push order, index rules and empty-list deletion', async () => {
    const { s } = await open()
    expect(await s.lpush('l', 'a', 'b', 'c')).toBe(3)
    expect(await s.rpush('l', 'd')).toBe(4)
    expect(await s.lrange('l')).toEqual(['c', 'b', 'a', 'd'])
    expect(await s.lrange('l', -2, -1)).toEqual(['a', 'd'])
    expect(await s.lrange('l', 2, 100)).toEqual(['a', 'd'])
    expect(await s.lrange('l', 3, 1)).toEqual([])
    expect(await s.lindex('l', -1)).toBe('d')
    expect(await s.lindex('l', 9)).toBeUndefined()
    expect(await s.lpop('l')).toBe('c')
    expect(await s.rpop('l')).toBe('d')
    expect(await s.popMany('l', 5)).toEqual(['b', 'a'])
    expect(await s.has('l')).toBe(false)
    expect(await s.llen('l')).toBe(0)
    expect(await s.lpop('l')).toBeUndefined()
  })

  it('list values are copied, never shared', async () => {
    const { s } = await open()
    const bytes = new Uint8Array([1, 2])
    await s.rpush('l', bytes, { a: 1 })
    bytes[0] = 9
    const [b, o] = (await s.lrange('l')) as [Uint8Array, { a: number }]
    expect(b).toEqual(new Uint8Array([1, 2]))
    expect(Object.isFrozen(o)).toBe(true)
  })

  it('hashes: new-field counts, deletes, empty-hash deletion, __proto__ as a field', async () => {
    const { s } = await open()
    expect(await s.hset('h', { a: 1, b: 2 })).toBe(2)
    expect(await s.hset('h', new Map([['a', 3], ['__proto__', 4]]))).toBe(1)
    expect(await s.hget('h', '__proto__')).toBe(4)
    expect(await s.hlen('h')).toBe(3)
    expect(await s.hexists('h', 'b')).toBe(true)
    expect([...(await s.hgetall('h')).entries()]).toEqual([['a', 3], ['b', 2], ['__proto__', 4]])
    expect(await s.hdel('h', 'a', 'b', 'zz')).toBe(2)
    expect(await s.hdel('h', '__proto__')).toBe(1)
    expect(await s.has('h')).toBe(false)
  })

  it('wrong types fail with KV_WRONG_TYPE and change nothing', async () => {
    const { s } = await open()
    await s.set('str', 'x')
    await s.rpush('list', 'a')
    await s.hset('hash', { f: 1 })
    await expect(s.lpush('str', 'y')).rejects.toMatchObject({ code: 'KV_WRONG_TYPE' })
    await expect(s.hset('list', { f: 1 })).rejects.toMatchObject({ code: 'KV_WRONG_TYPE' })
    await expect(s.lrange('hash')).rejects.toMatchObject({ code: 'KV_WRONG_TYPE' })
    await expect(s.get('list')).rejects.toMatchObject({ code: 'KV_WRONG_TYPE' })
    expect(await s.get('str')).toBe('x')
    expect(await s.lrange('list')).toEqual(['a'])
    expect(await s.type('hash')).toBe('hash')
  })

  it('logs one element per push, not the whole list, and replays exactly', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<string>({ dir, sync: 'never', compactThresholdBytes: 0 })
    for (let i = 0; i < 100_000; i += 1000) await s.rpush('l', ...Array.from({ length: 1000 }, (_, j) => `e${i + j}`))
    for (let i = 0; i < 1000; i++) await s.hset('h', { [`f${i}`]: 'v' })
    let before = s.stats().walBytes
    await s.rpush('l', 'one more')
    expect(s.stats().walBytes - before).toBeLessThan(100)
    before = s.stats().walBytes
    await s.hset('h', { extra: 'v' })
    expect(s.stats().walBytes - before).toBeLessThan(100)
    await s.lpop('l')
    await s.ltrim('l', 0, 49_999)
    await s.lset('l', -1, 'last')
    await s.hdel('h', 'f3')
    const list = await s.lrange('l')
    const hash = await s.hgetall('h')
    await s.close()
    const again = await Store.open<string>({ dir })
    expect(await again.lrange('l')).toEqual(list)
    expect(await again.hgetall('h')).toEqual(hash)
    await again.close()
  })

  it('a snapshot taken while pushes continue holds the list as it was', async () => {
    const { s } = await open()
    await s.rpush('l', 'a', 'b')
    const file = join(tmpDir(), 'snap.kvs')
    const snap = s.snapshot(file)
    await s.rpush('l', 'c')
    await snap
    const copy = await Store.open<string>()
    await copy.load(file)
    expect(await copy.lrange('l')).toEqual(['a', 'b'])
    expect(await s.lrange('l')).toEqual(['a', 'b', 'c'])
  })
})

describe('sliding expiry (slidingTtlMs)', () => {
  it('refreshes a key with an expiry on every read, durably, and leaves others alone', async () => {
    const dir = join(tmpDir(), 'db')
    const clock = new FakeClock()
    const s = await Store.open<string>({ dir, clock, expirySweepIntervalMs: 0, slidingTtlMs: 100 })
    await s.set('session', 'x', { ttl: 100 })
    await s.set('plain', 'y')
    for (let i = 0; i < 5; i++) {
      clock.advance(80)
      expect(await s.get('session')).toBe('x')
    }
    expect(await s.ttl('session')).toBe(100)
    expect(await s.ttl('plain')).toBe(-1)
    expect((await s.getEntry('session'))?.expiresAt).toBe(clock.now() + 100)
    await s.close()
    const again = await Store.open<string>({ dir, clock, expirySweepIntervalMs: 0 })
    expect(await again.ttl('session')).toBe(100)
    clock.advance(101)
    expect(await again.get('session')).toBeUndefined()
    await again.close()
  })

  it('rejects a negative slidingTtlMs', async () => {
    await expect(Store.open({ slidingTtlMs: -1 })).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
  })
})
