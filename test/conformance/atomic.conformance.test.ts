// atomic().check(key, version | null).set(…).delete(…).commit(): compare-and-set on many keys.
import { describe, expect } from 'vitest'
import { backends } from './backends.js'
import { codeOf, dump, failsWithStoreError, openWithClock, itWhen } from './harness.js'

describe.each(backends)('atomic: $name', (backend) => {
  const atomic = backend.capabilities.atomic
  const seqs = backend.capabilities.versionsAreSeqs

  itWhen(atomic)('commits when the checked version is current and resolves with the new version', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const v = (await s.getEntry('a'))?.version as number
    const r = await s.atomic().check('a', v).set('a', 2).commit()
    expect(r.ok).toBe(true)
    const version = r.ok ? r.version : -1
    expect(version).toBeGreaterThan(v)
    if (seqs) expect(version).toBe(v + 1)
    else expect(Number.isSafeInteger(version)).toBe(true)
    expect(await s.getEntry('a')).toEqual({ value: 2, version })
  })

  itWhen(atomic)('a stale check changes nothing and names the key', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const stale = (await s.version('a')) as number
    await s.set('a', 1) // same value, new version
    const before = await dump(s)
    const r = await s.atomic().check('a', stale).set('a', 99).set('other', 1).delete('a').commit()
    expect(r).toEqual({ ok: false, failed: ['a'] })
    expect(await dump(s)).toEqual(before)
  })

  itWhen(atomic)('a null check means "must not exist"', async () => {
    const s = await backend.open()
    expect(await s.atomic().check('k', null).set('k', 1).commit()).toMatchObject({ ok: true })
    expect(await s.atomic().check('k', null).set('k', 2).commit()).toEqual({ ok: false, failed: ['k'] })
    expect(await s.get('k')).toBe(1)
    await s.delete('k')
    expect(await s.atomic().check('k', null).set('k', 3).commit()).toMatchObject({ ok: true })
    expect(await s.get('k')).toBe(3)
  })

  itWhen(atomic)('an expired key counts as missing; a check of its old version fails', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('t', 1, { ttl: 10 })
    const v = (await s.version('t')) as number
    expect(await s.atomic().check('t', null).set('t', 2).commit()).toEqual({ ok: false, failed: ['t'] })
    if (backend.capabilities.fakeClock) clock.advance(10)
    else await new Promise((r) => setTimeout(r, 40))
    expect(await s.atomic().check('t', v).set('t', 2).commit()).toEqual({ ok: false, failed: ['t'] })
    expect(await s.atomic().check('t', null).set('t', 3).commit()).toMatchObject({ ok: true })
    expect(await s.get('t')).toBe(3)
  })

  itWhen(atomic)('one failing check of several applies nothing and names exactly the failed keys', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.set('b', 1)
    const va = (await s.version('a')) as number
    const vb = (await s.version('b')) as number
    await s.set('b', 2)
    const before = await dump(s)
    const r = await s.atomic().check('a', va).check('b', vb).check('new', null).check('a', va).set('a', 10).set('new', 1).delete('b').commit()
    expect(r).toEqual({ ok: false, failed: ['b'] })
    expect(await dump(s)).toEqual(before)
    expect(await s.atomic().check('new', null).check('a', va + 1000).check('b', vb).commit()).toEqual({ ok: false, failed: ['a', 'b'] })
  })

  itWhen(atomic)('sets and deletes of many keys commit together with one version', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.set('b', 1)
    const va = (await s.version('a')) as number
    const r = await s.atomic().check('a', va).check('n', null).set('a', 10).set('n', 1).set('m', { x: 2 }).delete('b').commit()
    expect(r.ok).toBe(true)
    const version = r.ok ? r.version : -1
    expect(await s.keys()).toEqual(['a', 'm', 'n'])
    expect([await s.version('a'), await s.version('m'), await s.version('n')]).toEqual([version, version, version])
    expect(await s.get('m')).toEqual({ x: 2 })
  })

  itWhen(atomic)('keeps a ttl given to set', async () => {
    const { store: s, clock } = await openWithClock(backend)
    expect(await s.atomic().set('t', 1, { ttl: 100 }).commit()).toMatchObject({ ok: true })
    if (backend.capabilities.fakeClock) {
      expect(await s.ttl('t')).toBe(100)
      clock.advance(100)
      expect(await s.has('t')).toBe(false)
    } else {
      const ttl = await s.ttl('t')
      expect(ttl > 0 && ttl <= 100).toBe(true)
    }
  })

  itWhen(atomic)('only one of two racing commits built from the same version wins', async () => {
    const s = await backend.open()
    await s.set('c', 0)
    const v = (await s.version('c')) as number
    const results = await Promise.all([s.atomic().check('c', v).set('c', 'first').commit(), s.atomic().check('c', v).set('c', 'second').commit()])
    expect(results.map((r) => r.ok).sort()).toEqual([false, true])
    expect(await s.get('c')).toBe(results[0]?.ok ? 'first' : 'second')
  })

  itWhen(atomic)('a counter built on check-and-retry loses no increment', async () => {
    const s = await backend.open()
    const bump = async (): Promise<void> => {
      for (;;) {
        const e = await s.getEntry('c')
        const r = await s.atomic().check('c', e?.version ?? null).set('c', ((e?.value as number | undefined) ?? 0) + 1).commit()
        if (r.ok) return
      }
    }
    await Promise.all(Array.from({ length: 10 }, bump))
    expect(await s.get('c')).toBe(10)
  })

  itWhen(atomic)('checks keys of any type through their version', async () => {
    const s = await backend.open()
    if (backend.capabilities.lists) await s.rpush('l', 1)
    else await s.set('l', 'stand-in')
    const v = (await s.version('l')) as number
    expect(await s.atomic().check('l', v).set('flag', 1).commit()).toMatchObject({ ok: true })
    if (backend.capabilities.lists) await s.rpush('l', 2)
    else await s.set('l', 'changed')
    expect(await s.atomic().check('l', v).set('flag', 2).commit()).toEqual({ ok: false, failed: ['l'] })
    expect(await s.get('flag')).toBe(1)
  })

  itWhen(atomic)('a commit with only checks succeeds and writes nothing', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const before = await dump(s)
    const seq = s.stats().seq
    expect(await s.atomic().check('a', (await s.version('a')) as number).commit()).toMatchObject({ ok: true })
    expect(await s.atomic().commit()).toMatchObject({ ok: true })
    expect(await dump(s)).toEqual(before)
    expect(s.stats().seq).toBe(seq)
  })

  itWhen(atomic)('refuses a second commit, bad keys, values, ttls and versions with coded errors', async () => {
    const s = await backend.open()
    const op = s.atomic().set('a', 1)
    expect(await op.commit()).toMatchObject({ ok: true })
    expect(await codeOf(() => op.commit())).toBe('KV_INVALID_ARGUMENT')
    const failed = s.atomic().check('a', null)
    expect(await failed.commit()).toEqual({ ok: false, failed: ['a'] })
    expect(await codeOf(() => failed.commit())).toBe('KV_INVALID_ARGUMENT')
    const b = s.atomic()
    expect(await codeOf(() => b.set('', 1))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => b.delete('\udc00'))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => b.check('', null))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => b.set('x', undefined))).toBe('KV_INVALID_VALUE')
    expect(await codeOf(() => b.set('x', 1, { ttl: 0 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => b.check('x', 0))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => b.check('x', 1.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => b.check('x', -1))).toBe('KV_INVALID_ARGUMENT')
    // What was added before the bad calls still commits.
    expect(await b.set('y', 2).commit()).toMatchObject({ ok: true })
    expect(await s.keys()).toEqual(['a', 'y'])
  })

  itWhen(atomic)('rejects writes over maxBatchBytes with KV_BATCH_TOO_LARGE and applies nothing', async () => {
    const s = await backend.open({ maxBatchBytes: 256 })
    const op = s.atomic()
    for (let i = 0; i < 10; i++) op.set(`k${i}`, 'x'.repeat(50))
    expect(await codeOf(() => op.commit())).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(0)
  })

  itWhen(!atomic)('without atomic operations, atomic() or its commit fails with a StoreError and writes nothing', async () => {
    const s = await backend.open()
    expect(await failsWithStoreError(() => s.atomic().set('a', 1).commit())).toBe(true)
    expect(await s.count()).toBe(0)
  })
})
