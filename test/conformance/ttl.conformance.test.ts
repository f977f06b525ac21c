// TTL: set { ttl, expiresAt }, expire, expireAt, persist, touch, ttl(); expired keys are
// invisible to every read. On a fake clock, so nothing sleeps.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, collect, dump, openWithClock, scanKeys, sleep, itWhen } from './harness.js'

describe.each(backends)('TTL: $name', (backend) => {
  const fake = backend.capabilities.fakeClock

  itWhen(fake)('hides an expired key from every read at the exact millisecond', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('k', 'v', { ttl: 100 })
    await s.set('other', 1)
    expect(await s.ttl('k')).toBe(100)
    clock.advance(99)
    expect(await s.get('k')).toBe('v')
    expect(await s.ttl('k')).toBe(1)
    clock.advance(1)
    expect(await s.get('k')).toBeUndefined()
    expect(await s.getEntry('k')).toBeUndefined()
    expect(await s.version('k')).toBeUndefined()
    expect(await s.has('k')).toBe(false)
    expect(await s.type('k')).toBeUndefined()
    expect(await s.ttl('k')).toBe(-2)
    expect(await s.keys()).toEqual(['other'])
    expect(await s.keys('k')).toEqual([])
    expect(await scanKeys(s)).toEqual(['other'])
    expect(await s.count()).toBe(1)
    expect(await s.delete('k')).toBe(false)
  })

  itWhen(fake)('set with expiresAt uses the absolute time, and wins over ttl', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('a', 1, { expiresAt: clock.now() + 500 })
    await s.set('b', 1, { expiresAt: clock.now() + 500, ttl: 10 })
    expect(await s.getEntry('a')).toMatchObject({ expiresAt: clock.now() + 500 })
    expect(await s.ttl('b')).toBe(500)
    clock.advance(10)
    expect(await s.has('b')).toBe(true)
    clock.advance(490)
    expect(await s.has('a')).toBe(false)
    expect(await s.has('b')).toBe(false)
  })

  itWhen(fake)('a set with an expiry already in the past leaves nothing visible', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('k', 'old')
    await s.set('k', 'new', { expiresAt: clock.now() - 1 })
    expect(await s.has('k')).toBe(false)
    expect(await s.get('k')).toBeUndefined()
    expect(await s.keys()).toEqual([])
  })

  itWhen(fake)('expire, expireAt, persist, ttl and touch follow Redis PEXPIRE/PEXPIREAT/PERSIST/PTTL', async () => {
    const { store: s, clock } = await openWithClock(backend)
    expect(await s.expire('missing', 10)).toBe(false)
    expect(await s.expireAt('missing', clock.now() + 10)).toBe(false)
    expect(await s.persist('missing')).toBe(false)
    expect(await s.touch('missing', 10)).toBe(false)
    expect(await s.has('missing')).toBe(false)
    await s.set('k', 'v')
    expect(await s.ttl('k')).toBe(-1)
    expect(await s.persist('k')).toBe(false) // no expiry to remove
    expect(await s.expire('k', 50)).toBe(true)
    expect(await s.ttl('k')).toBe(50)
    expect(await s.persist('k')).toBe(true)
    expect(await s.ttl('k')).toBe(-1)
    expect(await s.expireAt('k', clock.now() + 30)).toBe(true)
    expect(await s.ttl('k')).toBe(30)
    clock.advance(20)
    expect(await s.touch('k', 100)).toBe(true) // sliding: now + 100
    expect(await s.ttl('k')).toBe(100)
    clock.advance(99)
    expect(await s.get('k')).toBe('v')
    clock.advance(1)
    expect(await s.get('k')).toBeUndefined()
    expect(await s.expire('k', 100)).toBe(false) // expired counts as missing
    expect(await s.persist('k')).toBe(false)
  })

  itWhen(fake)('touch gives a fresh expiry to a key that had none', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('k', 1)
    expect(await s.touch('k', 40)).toBe(true)
    expect(await s.ttl('k')).toBe(40)
    clock.advance(40)
    expect(await s.has('k')).toBe(false)
  })

  itWhen(fake)('expire(0) and expireAt(past) delete at once', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('a', 1)
    await s.set('b', 1)
    expect(await s.expire('a', 0)).toBe(true)
    expect(await s.expireAt('b', clock.now() - 1000)).toBe(true)
    expect(await s.has('a')).toBe(false)
    expect(await s.has('b')).toBe(false)
    expect(await s.count()).toBe(0)
  })

  itWhen(fake)('a plain set clears the expiry; keepTtl, incr and decr keep it', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('k', 1, { ttl: 1000 })
    await s.incr('k')
    expect(await s.ttl('k')).toBe(1000)
    await s.decr('k', 5)
    expect(await s.ttl('k')).toBe(1000)
    clock.advance(100)
    await s.set('k', 2, { keepTtl: true })
    expect(await s.ttl('k')).toBe(900)
    await s.set('k', 3)
    expect(await s.ttl('k')).toBe(-1)
    await s.set('k', 4, { ttl: 10 })
    await s.set('k', 5, { ttl: 2000 }) // a new ttl replaces the old one
    expect(await s.ttl('k')).toBe(2000)
  })

  itWhen(fake)('an expired key is absent for NX, XX and keepTtl', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('nx', 'old', { ttl: 10 })
    await s.set('xx', 'old', { ttl: 10 })
    await s.set('keep', 'old', { ttl: 10 })
    clock.advance(10)
    expect(await s.set('nx', 'new', { ifNotExists: true })).toBe(true)
    expect(await s.get('nx')).toBe('new')
    expect(await s.ttl('nx')).toBe(-1)
    expect(await s.set('xx', 'new', { ifExists: true })).toBe(false)
    expect(await s.has('xx')).toBe(false)
    await s.set('keep', 'new', { keepTtl: true })
    expect(await s.ttl('keep')).toBe(-1) // the dead key's expiry is not inherited
    expect(await s.get('keep')).toBe('new')
  })

  itWhen(fake)('incr on an expired key starts again at 0 without an expiry', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('n', 41, { ttl: 10 })
    clock.advance(10)
    expect(await s.incr('n')).toBe(1)
    expect(await s.ttl('n')).toBe(-1)
  })

  itWhen(fake)('scan yields a key until the millisecond it expires, and never after', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('a', 1, { ttl: 50 })
    await s.set('b', 2)
    clock.advance(49)
    expect(await collect(s.scan())).toEqual([
      ['a', 1],
      ['b', 2],
    ])
    clock.advance(1)
    expect(await collect(s.scan())).toEqual([['b', 2]])
  })

  itWhen(fake)('count sweeps expired keys, and the key is really gone (delete says false)', async () => {
    const { store: s, clock } = await openWithClock(backend, { expirySweepIntervalMs: 0 })
    for (let i = 0; i < 10; i++) await s.set(`t${i}`, i, { ttl: 10 + i })
    await s.set('stay', 1)
    clock.advance(15) // t0..t5 expire
    expect(await s.count()).toBe(5)
    expect(await s.keys()).toEqual(['stay', 't6', 't7', 't8', 't9'])
    expect(await s.delete('t0')).toBe(false)
    clock.advance(100)
    expect(await s.count()).toBe(1)
  })

  itWhen(fake)('list and hash keys expire too; a write after expiry starts a fresh one', async () => {
    const { store: s, clock } = await openWithClock(backend)
    const caps = backend.capabilities
    if (caps.lists) {
      await s.rpush('l', 'a', 'b')
      expect(await s.expire('l', 10)).toBe(true)
      await s.rpush('l', 'c') // a push keeps the expiry
      expect(await s.ttl('l')).toBe(10)
    } else await s.set('l', 'stand-in', { ttl: 10 })
    if (caps.hashes) {
      await s.hset('h', { f: 1 })
      expect(await s.expire('h', 10)).toBe(true)
      await s.hset('h', { g: 2 })
      expect(await s.ttl('h')).toBe(10)
    } else await s.set('h', 'stand-in', { ttl: 10 })
    clock.advance(10)
    expect(await s.has('l')).toBe(false)
    expect(await s.has('h')).toBe(false)
    expect(await s.keys()).toEqual([])
    if (caps.lists) {
      expect(await s.lrange('l')).toEqual([])
      expect(await s.llen('l')).toBe(0)
      expect(await s.rpush('l', 'z')).toBe(1)
      expect(await s.lrange('l')).toEqual(['z'])
      expect(await s.ttl('l')).toBe(-1)
    }
    if (caps.hashes) {
      expect(await s.hgetall('h')).toEqual(new Map())
      expect(await s.hset('h', { z: 1 })).toBe(1)
      expect(await s.hgetall('h')).toEqual(new Map([['z', 1]]))
      expect(await s.ttl('h')).toBe(-1)
    }
  })

  itWhen(fake)('slidingTtlMs refreshes a key with an expiry on every successful read', async () => {
    const { store: s, clock } = await openWithClock(backend, { slidingTtlMs: 100 })
    await s.set('sliding', 1, { ttl: 100 })
    await s.set('forever', 2)
    const v = (await s.version('sliding')) as number
    clock.advance(30)
    const e = await s.getEntry('sliding') // getEntry refreshes too, and reports the new expiry
    expect(e?.expiresAt).toBe(clock.now() + 100)
    expect(await s.version('sliding')).toBeGreaterThan(v) // the refresh is a write
    for (let i = 0; i < 5; i++) {
      clock.advance(60)
      expect(await s.get('sliding')).toBe(1)
    }
    expect(await s.ttl('forever')).toBe(-1) // keys without expiry are left alone
    expect(await s.get('forever')).toBe(2)
    expect(await s.ttl('forever')).toBe(-1)
    clock.advance(100)
    expect(await s.get('sliding')).toBeUndefined()
  })

  it('rejects bad ttls with KV_INVALID_ARGUMENT and changes nothing', async () => {
    const { store: s } = await openWithClock(backend)
    await s.set('k', 'old')
    const before = await dump(s)
    for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null, Number.MAX_SAFE_INTEGER]) {
      expect([ttl, await codeOf(() => s.set('k', 'new', { ttl: ttl as number }))]).toEqual([ttl, 'KV_INVALID_ARGUMENT'])
    }
    for (const at of [0, -5, 1.5, '1']) {
      expect([at, await codeOf(() => s.set('k', 'new', { expiresAt: at as number }))]).toEqual([at, 'KV_INVALID_ARGUMENT'])
    }
    for (const ttl of [-1, 1.5, Number.NaN, '10']) {
      expect([ttl, await codeOf(() => s.expire('k', ttl as number))]).toEqual([ttl, 'KV_INVALID_ARGUMENT'])
      expect([ttl, await codeOf(() => s.touch('k', ttl as number))]).toEqual([ttl, 'KV_INVALID_ARGUMENT'])
      expect([ttl, await codeOf(() => s.expireAt('k', ttl as number))]).toEqual([ttl, 'KV_INVALID_ARGUMENT'])
    }
    expect(await dump(s)).toEqual(before)
  })

  itWhen(!fake)('without a fake clock, a short ttl still expires on the real clock', async () => {
    const s = await backend.open()
    await s.set('k', 1, { ttl: 50 })
    const left = await s.ttl('k')
    expect(left > 0 && left <= 50).toBe(true)
    await sleep(120)
    expect(await s.has('k')).toBe(false)
    expect(await s.ttl('k')).toBe(-2)
  })
})
