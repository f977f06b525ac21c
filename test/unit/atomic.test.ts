// Atomic check-and-set: version and absence checks, all-or-nothing commits as one
// WAL record, argument validation at build time.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { tmpDir } from '../helpers/tmp.js'
import { codeOf } from '../helpers/codes.js'

function syncCodeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return err instanceof StoreError ? err.code : `not a StoreError: ${String(err)}`
  }
  return 'returned'
}

async function versionOf(s: Store<unknown>, key: string): Promise<number> {
  const e = await s.getEntry(key)
  if (e === undefined) throw new Error(`no entry for ${key}`)
  return e.version
}

describe('atomic check-and-set', () => {
  it('writes when the checked version is current and resolves with the new version', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const v = await versionOf(s, 'a')
    const r = await s.atomic().check('a', v).set('a', 2).commit()
    expect(r).toEqual({ ok: true, version: v + 1 })
    expect(await s.getEntry('a')).toEqual({ value: 2, version: v + 1 })
  })

  it('changes nothing and reports the key when the checked version is stale', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const stale = await versionOf(s, 'a')
    await s.set('a', 1) // same value, new version
    const seq = s.stats().seq
    const r = await s.atomic().check('a', stale).set('a', 99).set('other', 1).commit()
    expect(r).toEqual({ ok: false, failed: ['a'] })
    expect(await s.get('a')).toBe(1)
    expect(await s.has('other')).toBe(false)
    expect(s.stats().seq).toBe(seq)
  })

  it('treats a null check as "the key does not exist"', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock, expirySweepIntervalMs: 0 })
    expect(await s.atomic().check('k', null).set('k', 1).commit()).toMatchObject({ ok: true })
    expect(await s.atomic().check('k', null).set('k', 2).commit()).toEqual({ ok: false, failed: ['k'] })
    expect(await s.get('k')).toBe(1)
    await s.delete('k')
    expect(await s.atomic().check('k', null).set('k', 3).commit()).toMatchObject({ ok: true })
    // An expired key counts as absent.
    await s.set('t', 1, { ttl: 10 })
    expect(await s.atomic().check('t', null).set('t', 2).commit()).toEqual({ ok: false, failed: ['t'] })
    clock.advance(10)
    expect(await s.atomic().check('t', null).set('t', 3).commit()).toMatchObject({ ok: true })
    expect(await s.get('t')).toBe(3)
  })

  it('fails a version check on a key that was deleted or has expired', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock, expirySweepIntervalMs: 0 })
    await s.set('d', 1)
    await s.set('t', 1, { ttl: 10 })
    const vd = await versionOf(s, 'd')
    const vt = await versionOf(s, 't')
    await s.delete('d')
    clock.advance(10)
    expect(await s.atomic().check('d', vd).check('t', vt).set('x', 1).commit()).toEqual({ ok: false, failed: ['d', 't'] })
    expect(await s.has('x')).toBe(false)
  })

  it('applies nothing when one of several checks fails, and names exactly that key', async () => {
    const s = await Store.open<number>()
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'b', value: 2 },
      { type: 'set', key: 'c', value: 3 },
    ])
    const va = await versionOf(s, 'a')
    const vc = await versionOf(s, 'c')
    await s.set('b', 20)
    const vb = await versionOf(s, 'b')
    const seq = s.stats().seq
    const r = await s
      .atomic()
      .check('a', va)
      .check('b', vb - 1)
      .check('c', vc)
      .check('new', null)
      .set('a', 10)
      .set('new', 4)
      .delete('c')
      .commit()
    expect(r).toEqual({ ok: false, failed: ['b'] })
    expect([await s.get('a'), await s.get('b'), await s.get('c'), await s.get('new')]).toEqual([1, 20, 3, undefined])
    expect(s.stats().seq).toBe(seq)
    // Every failing check is listed, in the order the checks were added.
    await s.set('new', 0)
    expect(await s.atomic().check('new', null).check('a', va).check('b', 1).commit()).toEqual({ ok: false, failed: ['new', 'b'] })
  })

  it('commits sets and deletes of many keys as one record: seq grows by exactly 1 per successful commit', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<number>({ dir })
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'b', value: 2 },
    ])
    const seq0 = s.stats().seq
    const va = await versionOf(s, 'a')
    const r1 = await s.atomic().check('a', va).check('n', null).set('a', 10).set('n', 1).set('m', 2).delete('b').commit()
    expect(r1).toEqual({ ok: true, version: seq0 + 1 })
    expect(s.stats().seq).toBe(seq0 + 1)
    const walAfterOne = s.stats().walBytes
    expect(await s.atomic().check('a', va).set('a', 0).commit()).toMatchObject({ ok: false })
    expect(s.stats().seq).toBe(seq0 + 1)
    expect(s.stats().walBytes).toBe(walAfterOne) // a failed commit logs nothing
    const r2 = await s.atomic().check('a', seq0 + 1).set('a', 11).commit()
    expect(r2).toEqual({ ok: true, version: seq0 + 2 })
    await s.close()
    const again = await Store.open<number>({ dir })
    expect(again.stats().seq).toBe(seq0 + 2)
    expect(await again.getEntry('a')).toEqual({ value: 11, version: seq0 + 2 })
    expect(await again.getEntry('n')).toEqual({ value: 1, version: seq0 + 1 })
    expect(await again.getEntry('m')).toEqual({ value: 2, version: seq0 + 1 })
    expect(await again.has('b')).toBe(false)
    await again.close()
  })

  it('fails a check made before load replaced the key, even when the loaded key carries the same version number', async () => {
    // Another store whose 'k' has version 1 too, but a different value.
    const other = await Store.open<string>()
    await other.set('k', 'theirs')
    const file = join(tmpDir(), 'other.kvs')
    await other.snapshot(file)
    const s = await Store.open<string>()
    await s.set('k', 'mine')
    const read = await s.getEntry('k')
    await s.load(file)
    expect(await s.get('k')).toBe('theirs')
    // The value the caller read is gone: compare-and-set must not overwrite 'theirs'.
    const r = await s.atomic().check('k', read?.version ?? null).set('k', 'mine, updated').commit()
    expect(r).toEqual({ ok: false, failed: ['k'] })
    expect(await s.get('k')).toBe('theirs')
  })

  it('lets exactly one of two racing commits built from the same version win', async () => {
    const s = await Store.open<number>()
    await s.set('a', 0)
    const v = await versionOf(s, 'a')
    const first = s.atomic().check('a', v).set('a', 1)
    const second = s.atomic().check('a', v).set('a', 2)
    const results = await Promise.all([first.commit(), second.commit()])
    expect(results.map((r) => r.ok)).toEqual([true, false])
    expect(await s.get('a')).toBe(1)
  })

  it('implements a lost-update-free counter when callers retry on failure', async () => {
    const s = await Store.open<number>()
    const bump = async (): Promise<number> => {
      for (let attempts = 1; ; attempts++) {
        const e = await s.getEntry('c')
        await Promise.resolve() // let the other callers interleave
        const r = await s.atomic().check('c', e?.version ?? null).set('c', (e?.value ?? 0) + 1).commit()
        if (r.ok) return attempts
      }
    }
    const attempts = await Promise.all(Array.from({ length: 10 }, bump))
    expect(await s.get('c')).toBe(10)
    expect(Math.max(...attempts)).toBeGreaterThan(1) // the race really happened
  })

  it('checks keys of any type through their version (lists and hashes too)', async () => {
    const s = await Store.open<number>()
    await s.rpush('l', 1)
    const v = (await s.version('l')) as number
    expect(await s.atomic().check('l', v).set('flag', 1).commit()).toMatchObject({ ok: true })
    await s.rpush('l', 2)
    expect(await s.atomic().check('l', v).set('flag', 2).commit()).toEqual({ ok: false, failed: ['l'] })
    // A set through atomic replaces a list like a plain set does.
    expect(await s.atomic().set('l', 5).commit()).toMatchObject({ ok: true })
    expect(await s.get('l')).toBe(5)
  })

  it('keeps a ttl given to set', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock })
    const r = await s.atomic().set('t', 1, { ttl: 100 }).commit()
    expect(await s.getEntry('t')).toEqual({ value: 1, version: r.ok ? r.version : -1, expiresAt: clock.now() + 100 })
  })

  it('succeeds without a new version when it only checks', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const seq = s.stats().seq
    expect(await s.atomic().check('a', seq).commit()).toMatchObject({ ok: true })
    expect(await s.atomic().commit()).toMatchObject({ ok: true })
    expect(s.stats().seq).toBe(seq)
  })

  it('throws KV_INVALID_ARGUMENT when committed twice, after success or failure', async () => {
    const s = await Store.open<number>()
    const ok = s.atomic().set('a', 1)
    expect(await ok.commit()).toMatchObject({ ok: true })
    expect(await codeOf(ok.commit())).toBe('KV_INVALID_ARGUMENT')
    const bad = s.atomic().check('a', null).set('a', 2)
    expect(await bad.commit()).toEqual({ ok: false, failed: ['a'] })
    expect(await codeOf(bad.commit())).toBe('KV_INVALID_ARGUMENT')
    // Two commits issued together: the second still throws, the first still applies once.
    const twice = s.atomic().set('b', 1)
    const results = await Promise.allSettled([twice.commit(), twice.commit()])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected'])
    expect(await s.version('b')).toBe(s.stats().seq)
  })

  it('throws at set, delete and check for bad keys, values, ttls and versions', async () => {
    const s = await Store.open<unknown>()
    const op = s.atomic()
    expect(syncCodeOf(() => op.set('', 1))).toBe('KV_INVALID_KEY')
    expect(syncCodeOf(() => op.set(1 as unknown as string, 1))).toBe('KV_INVALID_KEY')
    expect(syncCodeOf(() => op.set('\udc00', 1))).toBe('KV_INVALID_KEY')
    expect(syncCodeOf(() => op.set('k', undefined))).toBe('KV_INVALID_VALUE')
    expect(syncCodeOf(() => op.set('k', () => 1))).toBe('KV_INVALID_VALUE')
    expect(syncCodeOf(() => op.set('k', 10n))).toBe('KV_INVALID_VALUE')
    expect(syncCodeOf(() => op.set('k', new Date()))).toBe('KV_INVALID_VALUE')
    expect(syncCodeOf(() => op.set('k', Infinity))).toBe('KV_INVALID_VALUE')
    expect(syncCodeOf(() => op.set('k', 1, { ttl: 0 }))).toBe('KV_INVALID_ARGUMENT')
    expect(syncCodeOf(() => op.set('k', 1, { ttl: 1.5 }))).toBe('KV_INVALID_ARGUMENT')
    expect(syncCodeOf(() => op.delete(''))).toBe('KV_INVALID_KEY')
    expect(syncCodeOf(() => op.check('', null))).toBe('KV_INVALID_KEY')
    for (const bad of [0, -1, 1.5, Number.NaN, '3', undefined]) {
      expect(syncCodeOf(() => op.check('k', bad as unknown as number))).toBe('KV_INVALID_ARGUMENT')
    }
    const small = await Store.open<string>({ maxValueBytes: 10 })
    expect(syncCodeOf(() => small.atomic().set('k', 'x'.repeat(11)))).toBe('KV_VALUE_TOO_LARGE')
    // The rejected calls added nothing: the operation still commits cleanly and empty.
    expect(await op.commit()).toMatchObject({ ok: true })
    expect(await s.count()).toBe(0)
  })

  it('rejects with KV_BATCH_TOO_LARGE and writes nothing when the writes exceed maxBatchBytes', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    const op = s.atomic()
    for (let i = 0; i < 10; i++) op.set(`k${i}`, 'x'.repeat(200))
    expect(await codeOf(op.commit())).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(0)
  })

  it('fails with KV_CLOSED once the store is closed', async () => {
    const s = await Store.open<number>()
    const op = s.atomic().set('a', 1)
    await s.close()
    expect(await codeOf(op.commit())).toBe('KV_CLOSED')
    expect(syncCodeOf(() => s.atomic())).toBe('KV_CLOSED')
  })
})
