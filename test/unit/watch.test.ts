// The change feed: commit order, filters, change kinds, ending, and bounded buffering.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, StoreError, type Change, type ChangeFeed } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { tmpDir } from '../helpers/tmp.js'

function syncCodeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return err instanceof StoreError ? err.code : `not a StoreError: ${String(err)}`
  }
  return 'returned'
}

/** Everything buffered right now. */
async function drain(feed: ChangeFeed): Promise<Change[]> {
  const out: Change[] = []
  while (feed.pending > 0) {
    const r = await feed.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

const brief = (cs: readonly Change[]): [string, string][] => cs.map((c) => [c.type, c.key])

describe('watch', () => {
  it('delivers every committed change in commit order with ascending versions', async () => {
    const s = await Store.open<number>()
    const feed = s.watch()
    await s.set('b', 1)
    await s.set('a', 2)
    await s.batch([
      { type: 'set', key: 'z', value: 3 },
      { type: 'set', key: 'c', value: 4 },
    ])
    await s.incr('a')
    await s.delete('b')
    await s.transaction((tx) => {
      tx.set('y', 5)
      tx.set('x', 6)
    })
    await s.atomic().set('w', 7).commit()
    const got = await drain(feed)
    expect(brief(got)).toEqual([
      ['set', 'b'],
      ['set', 'a'],
      ['set', 'z'],
      ['set', 'c'],
      ['set', 'a'],
      ['delete', 'b'],
      ['set', 'y'],
      ['set', 'x'],
      ['set', 'w'],
    ])
    expect(got.map((c) => c.version)).toEqual([1, 2, 3, 3, 4, 5, 6, 6, 7])
    // The last change to each key carries the version the store now reports for it.
    const last = new Map(got.map((c) => [c.key, c]))
    for (const [key, c] of last) expect(await s.version(key)).toBe(c.type === 'set' ? c.version : undefined)
  })

  it('carries the new value in set changes and none in delete changes', async () => {
    const s = await Store.open<unknown>()
    const feed = s.watch()
    await s.set('o', { a: [1] })
    await s.set('n', null)
    await s.set('b', new Uint8Array([1, 2]))
    await s.incr('i', 5)
    await s.delete('o')
    const got = await drain(feed)
    expect(got).toEqual([
      { type: 'set', key: 'o', value: { a: [1] }, version: 1 },
      { type: 'set', key: 'n', value: null, version: 2 },
      { type: 'set', key: 'b', value: new Uint8Array([1, 2]), version: 3 },
      { type: 'set', key: 'i', value: 5, version: 4 },
      { type: 'delete', key: 'o', version: 5, reason: 'deleted' },
    ])
    expect('value' in (got[4] as Change)).toBe(false)
  })

  it('hands out values that cannot change what is stored', async () => {
    const s = await Store.open<unknown>()
    const feed = s.watch()
    await s.set('b', new Uint8Array([1, 2, 3]))
    await s.set('o', { n: [1] })
    const [bytes, obj] = await drain(feed)
    ;((bytes as { value: Uint8Array }).value)[0] = 9
    expect(() => ((obj as { value: { n: number[] } }).value.n.push(2))).toThrow(TypeError)
    expect(await s.get('b')).toEqual(new Uint8Array([1, 2, 3]))
    expect(await s.get('o')).toEqual({ n: [1] })
  })

  it('filters by exact key', async () => {
    const s = await Store.open<number>()
    const feed = s.watch({ key: 'n' })
    await s.set('n2', 1) // shares the prefix, not the key
    await s.set('m', 1)
    await s.set('n', 1)
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'n', value: 2 },
    ])
    await s.delete('n')
    expect(await drain(feed)).toEqual([
      { type: 'set', key: 'n', value: 1, version: 3 },
      { type: 'set', key: 'n', value: 2, version: 4 },
      { type: 'delete', key: 'n', version: 5, reason: 'deleted' },
    ])
  })

  it('filters by prefix', async () => {
    const s = await Store.open<number>()
    const feed = s.watch({ prefix: 'user:' })
    await s.set('user', 1)
    await s.set('user:1', 1)
    await s.set('users:1', 1)
    await s.set('xuser:1', 1)
    await s.set('user:2', 2)
    await s.delete('user:1')
    expect(brief(await drain(feed))).toEqual([
      ['set', 'user:1'],
      ['set', 'user:2'],
      ['delete', 'user:1'],
    ])
  })

  it('reports list and hash operations as update, and a collection emptied by them as delete', async () => {
    const s = await Store.open<number>()
    const feed = s.watch()
    await s.rpush('l', 1, 2)
    await s.lpush('l', 0)
    await s.lset('l', 0, 9)
    await s.ltrim('l', 0, 1)
    await s.lpop('l')
    await s.hset('h', { f: 1, g: 2 })
    await s.hdel('h', 'f')
    await s.rpop('l') // empties the list
    await s.hdel('h', 'g') // empties the hash
    const got = await drain(feed)
    expect(brief(got)).toEqual([
      ['update', 'l'],
      ['update', 'l'],
      ['update', 'l'],
      ['update', 'l'],
      ['update', 'l'],
      ['update', 'h'],
      ['update', 'h'],
      ['delete', 'l'],
      ['delete', 'h'],
    ])
    expect(got.map((c) => c.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  it('reports clear and load as clear changes that pass every filter', async () => {
    const s = await Store.open<number>()
    const byKey = s.watch({ key: 'a' })
    const byPrefix = s.watch({ prefix: 'p:' })
    await s.set('a', 1)
    await s.clear()
    const file = join(tmpDir(), 'snap.kvs')
    await s.snapshot(file)
    await s.load(file)
    const k = await drain(byKey)
    expect(brief(k)).toEqual([
      ['set', 'a'],
      ['clear', ''],
      ['clear', ''],
    ])
    expect(k[1]?.version).toBe(2)
    expect(brief(await drain(byPrefix))).toEqual([
      ['clear', ''],
      ['clear', ''],
    ])
  })

  it('reports keys removed by expiry as expire changes', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock, expirySweepIntervalMs: 0 })
    const feed = s.watch()
    await s.set('t', 1, { ttl: 10 })
    clock.advance(10)
    expect(await s.count()).toBe(0) // count sweeps due keys
    expect(await drain(feed)).toEqual([
      { type: 'set', key: 't', value: 1, version: 1 },
      { type: 'expire', key: 't', version: 1, reason: 'expired' },
    ])
  })

  it('reports nothing for writes that changed nothing or failed', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const feed = s.watch()
    await s.set('a', 2, { ifNotExists: true })
    await s.delete('missing')
    await s.atomic().check('a', null).set('a', 3).commit()
    await s.transaction(() => {
      throw new Error('no')
    }).catch(() => undefined)
    await s.batch([{ type: 'set', key: 'x', value: (() => 1) as unknown as number }]).catch(() => undefined)
    expect(feed.pending).toBe(0)
  })

  it('hands a change to a waiting next() at once', async () => {
    const s = await Store.open<number>()
    const feed = s.watch()
    const waiting = feed.next()
    await s.set('a', 1)
    expect(await waiting).toEqual({ value: { type: 'set', key: 'a', value: 1, version: 1 }, done: false })
    expect(feed.pending).toBe(0)
  })

  it('works with for await, ending the loop when the feed is closed', async () => {
    const s = await Store.open<number>()
    const feed = s.watch({ prefix: 'k' })
    const seen: string[] = []
    const consumer = (async () => {
      for await (const c of feed) {
        seen.push(c.key)
        if (seen.length === 3) break // break calls return()
      }
    })()
    for (let i = 0; i < 5; i++) await s.set(`k${i}`, i)
    await consumer
    expect(seen).toEqual(['k0', 'k1', 'k2'])
    await s.set('k9', 9)
    expect(feed.pending).toBe(0)
    expect(await feed.next()).toEqual({ value: undefined, done: true })
  })

  it('ends on return() and close(): a pending next() resolves done, buffered changes are dropped', async () => {
    const s = await Store.open<number>()
    const a = s.watch()
    const pending = a.next()
    expect(await a.return()).toEqual({ value: undefined, done: true })
    expect(await pending).toEqual({ value: undefined, done: true })
    const b = s.watch()
    await s.set('x', 1)
    expect(b.pending).toBe(1)
    b.close()
    expect(b.pending).toBe(0)
    expect(await b.next()).toEqual({ value: undefined, done: true })
    await s.set('y', 2)
    expect(b.pending).toBe(0)
    expect(await b.next()).toEqual({ value: undefined, done: true })
  })

  it('ends a pending next() with done when the store closes, after delivering what was buffered', async () => {
    const s = await Store.open<number>({ dir: join(tmpDir(), 'db') })
    const idle = s.watch()
    const busy = s.watch()
    const pending = idle.next()
    await s.set('a', 1)
    expect(await pending).toMatchObject({ value: { key: 'a' }, done: false })
    const second = idle.next()
    await s.set('b', 2)
    await s.set('c', 3)
    await s.close()
    expect(await second).toMatchObject({ value: { key: 'b' }, done: false })
    expect(await idle.next()).toMatchObject({ value: { key: 'c' }, done: false })
    expect(await idle.next()).toEqual({ value: undefined, done: true })
    const last = await drain(busy)
    expect(brief(last)).toEqual([
      ['set', 'a'],
      ['set', 'b'],
      ['set', 'c'],
    ])
    expect(await busy.next()).toEqual({ value: undefined, done: true })
    // A next() already waiting on an idle feed when the store closes.
    const s2 = await Store.open<number>()
    const f2 = s2.watch()
    const waiting = f2.next()
    await s2.close()
    expect(await waiting).toEqual({ value: undefined, done: true })
  })

  it('fails a slow consumer with KV_OVERFLOW after its buffered changes, never holding more than highWaterMark', async () => {
    const s = await Store.open<number>()
    const feed = s.watch({ highWaterMark: 3 })
    let maxPending = 0
    for (let i = 0; i < 10; i++) {
      await s.set(`k${i}`, i)
      maxPending = Math.max(maxPending, feed.pending)
    }
    expect(maxPending).toBe(3)
    const first = [await feed.next(), await feed.next(), await feed.next()]
    expect(first.map((r) => (r.value as Change).key)).toEqual(['k0', 'k1', 'k2'])
    const err = await feed.next().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_OVERFLOW')
    expect(await feed.next()).toEqual({ value: undefined, done: true })
    await s.set('later', 1)
    expect(feed.pending).toBe(0)
  })

  it('stays bounded under a long burst, and other feeds are unaffected', async () => {
    const s = await Store.open<number>()
    const slow = s.watch({ highWaterMark: 100 })
    const fast = s.watch()
    let fastCount = 0
    const consumer = (async () => {
      for await (const c of fast) {
        fastCount++
        if (c.key === 'last') break
      }
    })()
    let maxPending = 0
    for (let i = 0; i < 5000; i++) {
      await s.set(`k${i % 50}`, i)
      maxPending = Math.max(maxPending, slow.pending)
    }
    await s.set('last', 0)
    await consumer
    expect(maxPending).toBeLessThanOrEqual(100)
    expect(fastCount).toBe(5001)
    expect(await drain(slow)).toHaveLength(100)
    expect(await slow.next().catch((e: unknown) => (e as StoreError).code)).toBe('KV_OVERFLOW')
  })

  it('rejects invalid options with KV_INVALID_ARGUMENT, and watching a closed store with KV_CLOSED', async () => {
    const s = await Store.open<number>()
    const bad: unknown[] = [
      null,
      'key',
      { key: 5 },
      { prefix: {} },
      { highWaterMark: 0 },
      { highWaterMark: -1 },
      { highWaterMark: 1.5 },
      { highWaterMark: '10' },
      { highWaterMark: Infinity },
    ]
    for (const options of bad) {
      expect(syncCodeOf(() => s.watch(options as never))).toBe('KV_INVALID_ARGUMENT')
    }
    // None of the rejected feeds was registered.
    const ok = s.watch({ key: 'a', highWaterMark: 1 })
    await s.set('a', 1)
    expect(ok.pending).toBe(1)
    await s.close()
    expect(syncCodeOf(() => s.watch())).toBe('KV_CLOSED')
  })
})
