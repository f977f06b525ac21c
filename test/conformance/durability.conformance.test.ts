// Durability: where a backend is `persistent`, everything written is there after reopen
// (values, TTLs, lists, hashes, versions, order) and versions keep growing; after a crash,
// what `survivesCrashWithoutSnapshot` promises. Where it is not, the data is declared gone.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, collect, dump, FakeClock, openWithClock, type Backend, type OpenOptions, type StoreLike, itWhen } from './harness.js'

/** `backend.reopen`, which a persistent backend must have. */
function reopener(backend: Backend): (s: StoreLike, o?: OpenOptions) => Promise<StoreLike> {
  const reopen = backend.reopen
  if (reopen === undefined) throw new Error(`${backend.name} declares persistent but has no reopen`)
  return (s, o) => reopen.call(backend, s, o)
}

function crasher(backend: Backend): (s: StoreLike) => Promise<StoreLike> {
  const crash = backend.crash
  if (crash === undefined) throw new Error(`${backend.name} declares persistent but has no crash`)
  return (s) => crash.call(backend, s)
}

/** A workload touching every kind of write; returns nothing, the state is read back with dump(). */
async function writeEverything(s: StoreLike, backend: Backend): Promise<void> {
  const caps = backend.capabilities
  await s.set('str', 'héllo \u{1F600}')
  await s.set('num', -0)
  await s.set('float', 0.1 + 0.2)
  await s.set('bool', false)
  await s.set('nul', null)
  await s.set('obj', JSON.parse('{"a":[1,{"b":"c"}],"__proto__":{"p":1},"e":{}}') as unknown)
  await s.set('bytes', new Uint8Array([0, 1, 2, 253, 254, 255]))
  await s.set('empty-bytes', new Uint8Array(0))
  await s.set('overwritten', 1)
  await s.set('overwritten', 2)
  await s.set('deleted', 1)
  await s.delete('deleted')
  await s.set('ttl', 'soon', { ttl: 60_000 })
  await s.set('ttl-abs', 'later', { expiresAt: 1_800_000_000_000 })
  await s.set('persisted', 1, { ttl: 1000 })
  await s.persist('persisted')
  await s.set('expired-later', 1, { ttl: 1000 })
  await s.expire('expired-later', 90_000)
  await s.incr('counter', 41)
  await s.incr('counter')
  await s.set('strnum', '17')
  await s.incr('strnum')
  await s.batch([
    { type: 'set', key: 'b:1', value: 1 },
    { type: 'set', key: 'b:2', value: 2, ttl: 30_000 },
    { type: 'delete', key: 'overwritten' },
  ])
  for (const k of ['\u0000', 'a\u0000', '\uffff', '\u{1F600}', '\uff5e', 'Z', 'a']) await s.set(k, k)
  if (caps.lists) {
    await s.rpush('list', 1, 'two', { three: 3 }, new Uint8Array([4]))
    await s.lpush('list', 0)
    await s.lset('list', 1, 'one')
    await s.rpop('list')
    await s.rpush('trimmed', 1, 2, 3, 4)
    await s.ltrim('trimmed', 1, 2)
    await s.rpush('emptied', 1)
    await s.lpop('emptied')
    await s.rpush('list-ttl', 1)
    await s.expire('list-ttl', 45_000)
  }
  if (caps.hashes) {
    await s.hset('hash', { a: 1, b: { deep: [true] }, c: 'x' })
    await s.hset('hash', new Map<string, unknown>([['__proto__', 'p'], ['', 'empty field']]))
    await s.hdel('hash', 'c')
    await s.hset('hash-emptied', { f: 1 })
    await s.hdel('hash-emptied', 'f')
  }
  if (caps.transactions) {
    await s.transaction(async (t) => {
      t.set('tx:a', (await t.get('counter')) as number)
      t.delete('b:1')
    })
  }
  if (caps.atomic) await s.atomic().check('atomic', null).set('atomic', 'cas').commit()
}

describe.each(backends)('durability: $name', (backend) => {
  const caps = backend.capabilities

  it('declares reopen and crash exactly when it is persistent', () => {
    expect(typeof backend.reopen === 'function').toBe(caps.persistent)
    expect(typeof backend.crash === 'function').toBe(caps.persistent)
    // A backend that keeps nothing cannot keep it without a snapshot.
    if (!caps.persistent) expect(caps.survivesCrashWithoutSnapshot).toBe(false)
    else expect(typeof caps.survivesCrashWithoutSnapshot).toBe('boolean')
  })

  itWhen(!caps.persistent)('keeps nothing: a store opened after another one starts empty', async () => {
    const first = await backend.open()
    await first.set('a', 1)
    await first.close()
    const second = await backend.open()
    expect(await second.count()).toBe(0)
    expect(await second.get('a')).toBeUndefined()
    if (caps.versionsAreSeqs) expect(second.stats().seq).toBe(0)
    else expect(await second.keys()).toEqual([])
  })

  itWhen(caps.persistent)('everything written is there after reopen: values, types, TTLs, versions, key order', async () => {
    const reopen = reopener(backend)
    const clock = new FakeClock()
    let s = await backend.open({ clock })
    await writeEverything(s, backend)
    const before = await dump(s)
    const seq = s.stats().seq
    expect(before.length).toBeGreaterThan(20)
    const scanned = await collect(s.scan())
    s = await reopen(s)
    expect(await dump(s)).toEqual(before)
    expect(await collect(s.scan())).toEqual(scanned)
    expect(await collect(s.scan({ reverse: true }))).toEqual([...scanned].reverse())
    expect(Object.is(await s.get('num'), -0)).toBe(true)
    expect(Object.keys((await s.get('obj')) as object)).toEqual(['a', '__proto__', 'e'])
    if (caps.versionsAreSeqs) expect(s.stats().seq).toBe(seq)
    else expect(await s.count()).toBe(before.length)
    // And again: a reopen of a reopened store loses nothing either.
    s = await reopen(s)
    expect(await dump(s)).toEqual(before)
  })

  itWhen(caps.persistent)('versions keep growing across reopen, even when the last write was a delete or clear', async () => {
    const reopen = reopener(backend)
    let s = await backend.open()
    await s.set('a', 1)
    await s.set('b', 1)
    await s.set('gone', 1)
    const high = (await s.version('gone')) as number
    await s.delete('gone') // the newest commit is a delete: no key carries its version
    const seq = s.stats().seq
    s = await reopen(s)
    await s.set('c', 1)
    const vc = (await s.version('c')) as number
    expect(vc).toBeGreaterThan(high)
    if (caps.versionsAreSeqs) expect(vc).toBe(seq + 1)
    else expect(Number.isSafeInteger(vc)).toBe(true)
    await s.clear()
    const cleared = s.stats().seq
    s = await reopen(s)
    expect(await s.count()).toBe(0)
    await s.set('d', 1)
    const vd = (await s.version('d')) as number
    expect(vd).toBeGreaterThan(vc)
    if (caps.versionsAreSeqs) expect(vd).toBe(cleared + 1)
    else expect(Number.isSafeInteger(vd)).toBe(true)
  })

  itWhen(caps.persistent)('an atomic check made before a reopen still passes after it (versions are kept exactly)', async () => {
    const reopen = reopener(backend)
    let s = await backend.open()
    await s.set('k', 'v1')
    const v = (await s.version('k')) as number
    s = await reopen(s)
    expect(await s.version('k')).toBe(v)
    if (caps.atomic) expect(await s.atomic().check('k', v).set('k', 'v2').commit()).toMatchObject({ ok: true })
    else await s.set('k', 'v2')
    expect(await s.get('k')).toBe('v2')
  })

  itWhen(caps.persistent)('TTLs keep their absolute expiry: a key due while closed is gone, others keep their exact time left', async () => {
    const reopen = reopener(backend)
    const clock = new FakeClock()
    let s = await backend.open({ clock })
    await s.set('short', 'x', { ttl: 100 })
    await s.set('long', 'y', { ttl: 10_000 })
    await s.set('none', 'z')
    if (caps.lists) {
      await s.rpush('list', 'a')
      await s.expire('list', 100)
    }
    if (caps.hashes) {
      await s.hset('hash', { f: 1 })
      await s.expire('hash', 5000)
    }
    await s.close()
    clock.advance(150)
    s = await reopen(s)
    if (caps.fakeClock) {
      expect(await s.keys()).toEqual(caps.hashes ? ['hash', 'long', 'none'] : ['long', 'none'])
      expect(await s.ttl('long')).toBe(9_850)
      if (caps.hashes) expect(await s.ttl('hash')).toBe(4_850)
      expect(await s.has('short')).toBe(false)
      expect(await s.has('list')).toBe(false)
      clock.advance(10_000)
      s = await reopen(s)
      expect(await s.keys()).toEqual(['none'])
    } else {
      // On the real clock nothing was due yet: every key is back with an expiry.
      expect(await s.ttl('long')).toBeGreaterThan(0)
      expect(await s.ttl('none')).toBe(-1)
    }
  })

  itWhen(caps.persistent)('large values survive reopen byte for byte', async () => {
    const reopen = reopener(backend)
    let s = await backend.open()
    const bytes = new Uint8Array(1 << 18).map((_, i) => (i * 7919) & 0xff)
    const text = '\u00e9\u{1F600}x'.repeat(30_000)
    await s.set('bytes', bytes)
    await s.set('text', text)
    await s.set('json', { rows: Array.from({ length: 2000 }, (_, i) => ({ i, s: `row ${i}` })) })
    s = await reopen(s)
    const got = (await s.get('bytes')) as Uint8Array
    expect(got.length).toBe(bytes.length)
    expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0)
    expect(await s.get('text')).toBe(text)
    expect(((await s.get('json')) as { rows: unknown[] }).rows[1999]).toEqual({ i: 1999, s: 'row 1999' })
  })

  itWhen(caps.persistent && caps.fakeClock)('a sliding-expiry refresh is a write: it survives reopen', async () => {
    const reopen = reopener(backend)
    const clock = new FakeClock()
    let s = await backend.open({ clock, slidingTtlMs: 1000 })
    await s.set('k', 1, { ttl: 1000 })
    clock.advance(900)
    expect(await s.get('k')).toBe(1) // pushes the expiry to now + 1000
    const at = (await s.getEntry('k'))?.expiresAt
    expect(at).toBe(clock.now() + 1000)
    s = await reopen(s, { clock }) // without sliding expiry this time
    clock.advance(500) // past the first expiry, before the refreshed one
    expect(await s.get('k')).toBe(1)
    expect((await s.getEntry('k'))?.expiresAt).toBe(at)
  })

  itWhen(caps.persistent)('close waits for writes issued before it and keeps them; a write issued after is refused and not kept', async () => {
    const reopen = reopener(backend)
    let s = await backend.open()
    const writes = [s.set('a', 1), s.incr('n'), s.batch([{ type: 'set', key: 'b', value: 2 }]), s.delete('a'), s.set('c', 3)]
    const closing = s.close()
    const late = codeOf(() => s.set('late', 1))
    await Promise.all(writes)
    await closing
    expect(await late).toBe('KV_CLOSED')
    s = await reopen(s)
    expect(await s.keys()).toEqual(['b', 'c', 'n'])
  })

  itWhen(caps.persistent)('rejected writes leave nothing behind, also after reopen', async () => {
    const reopen = reopener(backend)
    let s = await backend.open({ maxValueBytes: 64 })
    await s.set('keep', 1)
    const seq = s.stats().seq
    for (const bad of [
      () => s.set('', 1),
      () => s.set('k', undefined),
      () => s.set('k', 'x'.repeat(100)),
      () => s.set('k', 1, { ttl: -1 }),
      () => s.batch([{ type: 'set', key: 'ok', value: 1 }, { type: 'set', key: 'k', value: Number.NaN }]),
      () => s.incr('keep', 0.5),
      () => s.update('keep', () => {
        throw new Error('no')
      }),
    ]) {
      expect(await codeOf(bad)).not.toBe('resolved')
    }
    expect(s.stats().seq).toBe(seq)
    s = await reopen(s)
    expect(await s.keys()).toEqual(['keep'])
    expect(await s.get('keep')).toBe(1)
    if (caps.versionsAreSeqs) expect(s.stats().seq).toBe(seq)
    else expect(await s.count()).toBe(1)
  })

  itWhen(caps.persistent)('after a crash: what the last snapshot saved is there, later writes as survivesCrashWithoutSnapshot declares', async () => {
    const crash = crasher(backend)
    const s = await backend.open()
    await s.set('saved', 1)
    if (caps.lists) await s.rpush('saved-list', 1, 2)
    if (caps.ownSnapshot) await s.snapshot()
    else await s.compact()
    await s.set('later', 2)
    await s.set('saved', 'changed')
    await s.delete('saved-list')
    const after = await crash(s)
    const saved = caps.lists ? ['saved', 'saved-list'] : ['saved']
    if (caps.survivesCrashWithoutSnapshot) {
      expect(await after.keys()).toEqual(['later', 'saved'])
      expect(await after.get('saved')).toBe('changed')
    } else if (caps.ownSnapshot) {
      expect(await after.keys()).toEqual(saved)
      expect(await after.get('saved')).toBe(1)
      if (caps.lists) expect(await after.lrange('saved-list')).toEqual([1, 2])
    } else {
      expect(await after.keys()).toEqual([])
    }
    // The crashed image is a working store.
    await after.set('new', 1)
    expect(await after.get('new')).toBe(1)
  })

  itWhen(caps.persistent)('after a crash with no snapshot at all, resolved writes survive only when declared', async () => {
    const crash = crasher(backend)
    const s = await backend.open()
    await s.set('a', 1)
    await s.batch([
      { type: 'set', key: 'b', value: 2 },
      { type: 'set', key: 'c', value: 3 },
    ])
    await s.delete('c')
    await s.incr('n')
    const v = (await s.version('a')) as number
    const seq = s.stats().seq
    const after = await crash(s)
    if (caps.survivesCrashWithoutSnapshot) {
      expect(await after.keys()).toEqual(['a', 'b', 'n'])
      expect(await after.version('a')).toBe(v)
      await after.set('d', 1)
      const vd = (await after.version('d')) as number
      if (caps.versionsAreSeqs) expect(vd).toBe(seq + 1)
      else expect(vd).toBeGreaterThan(v)
    } else {
      expect(await after.keys()).toEqual([])
    }
  })

  itWhen(caps.persistent)('many small writes issued without awaiting all survive reopen and, when declared, a crash', async () => {
    const reopen = reopener(backend)
    const crash = crasher(backend)
    let s = await backend.open()
    const writes: Promise<unknown>[] = []
    for (let i = 0; i < 200; i++) writes.push(s.set(`k${String(i).padStart(3, '0')}`, i))
    await Promise.all(writes)
    const crashed = await crash(s)
    expect(await crashed.count()).toBe(caps.survivesCrashWithoutSnapshot ? 200 : 0)
    s = await reopen(s)
    expect(await s.count()).toBe(200)
    expect(await s.get('k199')).toBe(199)
  })

  // Regression: swept expired keys are not logged, so a list or hash write that recreates the key
  // must log a delete first, or replay applies it to the old expired value.
  itWhen(caps.persistent && caps.fakeClock)(
    'a list or hash written after its expired predecessor was removed survives reopen',
    async () => {
      const reopen = reopener(backend)
      const clock = new FakeClock()
      let s = await backend.open({ clock, expirySweepIntervalMs: 0 })
      const want: [string, unknown][] = []
      const writeOld = async (): Promise<void> => {
        if (caps.lists) await s.rpush('list', 'old')
        else await s.set('list', 'stand-in')
        if (caps.hashes) await s.hset('hash', { old: 1 })
        else await s.set('hash', 'stand-in')
        await s.expire('list', 100)
        await s.expire('hash', 100)
      }
      const writeNew = async (tag: string): Promise<void> => {
        if (caps.lists) await s.rpush('list', tag)
        else await s.set('list', [tag])
        if (caps.hashes) await s.hset('hash', { [tag]: 2 })
        else await s.set('hash', { [tag]: 2 })
      }
      const read = async (): Promise<[string, unknown][]> => [
        ['list', caps.lists ? await s.lrange('list') : await s.get('list')],
        ['hash', caps.hashes ? Object.fromEntries(await s.hgetall('hash')) : await s.get('hash')],
      ]
      // 1. Expired and removed while running (count() removes due keys), then written again.
      await writeOld()
      clock.advance(100)
      expect(await s.count()).toBe(0)
      await writeNew('new')
      want.push(['list', ['new']], ['hash', { new: 2 }])
      expect(await read()).toEqual(want)
      s = await reopen(s)
      expect(await read()).toEqual(want)
      // 2. Expired while closed (open removes it), then written again.
      await s.clear()
      await writeOld()
      await s.close()
      clock.advance(100)
      s = await reopen(s)
      expect(await s.count()).toBe(0)
      await writeNew('again')
      s = await reopen(s)
      expect(await read()).toEqual([
        ['list', ['again']],
        ['hash', { again: 2 }],
      ])
    },
  )

  // Regression: swept expired keys are not logged, so a list or hash write that recreates the key
  // must log a delete first, or replay applies it to the old expired value.
  // (there the reopen fails with KV_CORRUPT: the logged push meets the old plain value).
  itWhen(caps.persistent && caps.fakeClock)(
    'a list or hash written onto a key whose expired plain value was removed reopens as that collection',
    async () => {
      const reopen = reopener(backend)
      const clock = new FakeClock()
      let s = await backend.open({ clock, expirySweepIntervalMs: 0 })
      await s.set('k', 'plain', { ttl: 100 })
      clock.advance(100)
      expect(await s.count()).toBe(0)
      if (caps.lists) expect(await s.rpush('k', 'a')).toBe(1)
      else if (caps.hashes) expect(await s.hset('k', { a: 1 })).toBe(1)
      else await s.set('k', ['a'])
      s = await reopen(s)
      if (caps.lists) expect(await s.lrange('k')).toEqual(['a'])
      else if (caps.hashes) expect(await s.hgetall('k')).toEqual(new Map([['a', 1]]))
      else expect(await s.get('k')).toEqual(['a'])
    },
  )

  itWhen(!(caps.persistent && caps.fakeClock))('(companion of the two above) without reopen or a fake clock, a rewrite after expiry holds in the running store', async () => {
    const { store: s, clock } = await openWithClock(backend, { expirySweepIntervalMs: 0 })
    await s.set('k', 'plain', { ttl: 100 })
    if (caps.fakeClock) clock.advance(100)
    else await new Promise((r) => setTimeout(r, 150))
    expect(await s.count()).toBe(0)
    if (caps.lists) {
      expect(await s.rpush('k', 'a')).toBe(1)
      expect(await s.lrange('k')).toEqual(['a'])
    } else {
      await s.set('k', ['a'])
      expect(await s.get('k')).toEqual(['a'])
    }
  })
})
