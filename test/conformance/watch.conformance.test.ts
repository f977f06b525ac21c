// watch(): committed changes, in commit order, filtered by key or prefix; ends on close.
import { describe, expect } from 'vitest'
import type { Change } from '../../src/index.js'
import { backends } from './backends.js'
import { codeOf, collect, drain, failsWithStoreError, openWithClock, itWhen } from './harness.js'

const brief = (cs: readonly Change[]): [string, string][] => cs.map((c) => [c.type, c.key])

describe.each(backends)('watch: $name', (backend) => {
  const watch = backend.capabilities.watch
  const seqs = backend.capabilities.versionsAreSeqs

  itWhen(watch)('delivers every committed change in commit order, with the versions the store reports', async () => {
    const s = await backend.open()
    const feed = s.watch()
    await s.set('b', 1)
    await s.set('a', 2)
    await s.batch([
      { type: 'set', key: 'z', value: 3 },
      { type: 'set', key: 'c', value: 4 },
    ])
    await s.incr('a')
    await s.delete('b')
    if (backend.capabilities.transactions) {
      await s.transaction((t) => {
        t.set('y', 5)
        t.set('x', 6)
      })
    } else await s.batch([{ type: 'set', key: 'y', value: 5 }, { type: 'set', key: 'x', value: 6 }])
    if (backend.capabilities.atomic) await s.atomic().set('w', 7).commit()
    else await s.set('w', 7)
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
    const versions = got.map((c) => c.version)
    if (seqs) expect(versions).toEqual([1, 2, 3, 3, 4, 5, 6, 6, 7])
    else {
      expect(versions[2]).toBe(versions[3])
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThanOrEqual(versions[i - 1] as number)
    }
    // The last change to each live key carries the version the store reports for it.
    for (const [key, c] of new Map(got.map((c) => [c.key, c]))) {
      expect([key, await s.version(key)]).toEqual([key, c.type === 'set' ? c.version : undefined])
    }
  })

  itWhen(watch)('set changes carry the new value, copied; delete changes carry none', async () => {
    const s = await backend.open()
    const feed = s.watch()
    await s.set('o', { a: [1] })
    await s.set('n', null)
    await s.set('b', new Uint8Array([1, 2]))
    await s.incr('i', 5)
    await s.delete('o')
    const got = await drain(feed)
    expect(got.map((c) => ({ ...c, version: 0 }))).toEqual([
      { type: 'set', key: 'o', value: { a: [1] }, version: 0 },
      { type: 'set', key: 'n', value: null, version: 0 },
      { type: 'set', key: 'b', value: new Uint8Array([1, 2]), version: 0 },
      { type: 'set', key: 'i', value: 5, version: 0 },
      { type: 'delete', key: 'o', version: 0, reason: 'deleted' },
    ])
    expect('value' in (got[4] as Change)).toBe(false)
    ;((got[2] as { value: Uint8Array }).value)[0] = 9
    expect(() => ((got[0] as { value: { a: number[] } }).value.a.push(2))).toThrow(TypeError)
    expect([...((await s.get('b')) as Uint8Array)]).toEqual([1, 2])
  })

  itWhen(watch)('filters by exact key and by prefix', async () => {
    const s = await backend.open()
    const byKey = s.watch({ key: 'user:1' })
    const byPrefix = s.watch({ prefix: 'user:' })
    await s.set('user', 0)
    await s.set('user:1', 1)
    await s.set('user:10', 10) // shares the key as a prefix
    await s.set('users:1', 1)
    await s.set('xuser:1', 1)
    await s.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'user:2', value: 2 },
      { type: 'set', key: 'user:1', value: 11 },
    ])
    await s.delete('user:1')
    expect(brief(await drain(byKey))).toEqual([
      ['set', 'user:1'],
      ['set', 'user:1'],
      ['delete', 'user:1'],
    ])
    expect(brief(await drain(byPrefix))).toEqual([
      ['set', 'user:1'],
      ['set', 'user:10'],
      ['set', 'user:2'],
      ['set', 'user:1'],
      ['delete', 'user:1'],
    ])
  })

  itWhen(watch)('list and hash writes are updates; one that empties the collection is a delete', async () => {
    const s = await backend.open()
    const feed = s.watch()
    const want: [string, string][] = []
    if (backend.capabilities.lists) {
      await s.rpush('l', 1, 2)
      await s.lset('l', 0, 9)
      await s.lpop('l')
      await s.rpop('l')
      want.push(['update', 'l'], ['update', 'l'], ['update', 'l'], ['delete', 'l'])
    }
    if (backend.capabilities.hashes) {
      await s.hset('h', { f: 1, g: 2 })
      await s.hdel('h', 'f')
      await s.hdel('h', 'g')
      want.push(['update', 'h'], ['update', 'h'], ['delete', 'h'])
    }
    await s.set('end', 1)
    want.push(['set', 'end'])
    expect(brief(await drain(feed))).toEqual(want)
  })

  itWhen(watch)('clear is one clear change that passes every filter', async () => {
    const s = await backend.open()
    const byKey = s.watch({ key: 'a' })
    const byPrefix = s.watch({ prefix: 'p:' })
    await s.set('a', 1)
    await s.clear()
    await s.set('b', 1)
    expect(brief(await drain(byKey))).toEqual([
      ['set', 'a'],
      ['clear', ''],
    ])
    expect(brief(await drain(byPrefix))).toEqual([['clear', '']])
  })

  itWhen(watch)('keys removed by expiry are reported as expire changes', async () => {
    const { store: s, clock } = await openWithClock(backend, { expirySweepIntervalMs: 0 })
    const feed = s.watch()
    await s.set('t', 1, { ttl: 10 })
    await s.set('stay', 1)
    if (backend.capabilities.fakeClock) clock.advance(10)
    else await new Promise((r) => setTimeout(r, 40))
    expect(await s.count()).toBe(1) // count removes the keys that are due
    expect(brief(await drain(feed))).toEqual([
      ['set', 't'],
      ['set', 'stay'],
      ['expire', 't'],
    ])
  })

  itWhen(watch)('writes that change nothing or fail report nothing', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const feed = s.watch()
    await s.set('a', 2, { ifNotExists: true })
    await s.set('b', 2, { ifExists: true })
    await s.delete('missing')
    await codeOf(() => s.set('', 1))
    await codeOf(() => s.batch([{ type: 'set', key: 'x', value: 1 }, { type: 'set', key: 'y', value: undefined }]))
    if (backend.capabilities.atomic) await s.atomic().check('a', null).set('a', 3).commit()
    if (backend.capabilities.transactions) {
      await codeOf(() =>
        s.transaction((t) => {
          t.set('a', 4)
          throw new Error('no')
        }),
      )
    }
    await s.set('last', 1)
    expect(brief(await drain(feed))).toEqual([['set', 'last']])
  })

  itWhen(watch)('a feed waits for the next change when nothing is buffered', async () => {
    const s = await backend.open()
    const feed = s.watch({ key: 'k' })
    const next = feed.next()
    await s.set('other', 1)
    await s.set('k', 1)
    expect(await next).toMatchObject({ done: false, value: { type: 'set', key: 'k', value: 1 } })
  })

  itWhen(watch)('closing the store delivers what is buffered, then ends every feed', async () => {
    const s = await backend.open()
    const a = s.watch()
    const b = s.watch({ prefix: 'x' })
    const waiting = b.next()
    await s.set('k1', 1)
    await s.set('k2', 2)
    await s.close()
    expect(brief(await collect(a))).toEqual([
      ['set', 'k1'],
      ['set', 'k2'],
    ])
    expect(await waiting).toEqual({ done: true, value: undefined })
    expect(await b.next()).toEqual({ done: true, value: undefined })
  })

  itWhen(watch)('closing the feed ends it and drops what is buffered; the store keeps working', async () => {
    const s = await backend.open()
    const feed = s.watch()
    const other = s.watch()
    await s.set('a', 1)
    feed.close()
    await s.set('b', 2)
    expect(await feed.next()).toEqual({ done: true, value: undefined })
    expect(brief(await drain(other))).toEqual([
      ['set', 'a'],
      ['set', 'b'],
    ])
    // `for await` with break ends the feed too.
    const looped = s.watch()
    await s.set('c', 3)
    for await (const c of looped) {
      expect(c.key).toBe('c')
      break
    }
    await s.set('d', 4)
    expect(await looped.next()).toEqual({ done: true, value: undefined })
  })

  itWhen(watch)('a consumer more than highWaterMark changes behind fails with KV_OVERFLOW', async () => {
    const s = await backend.open()
    const feed = s.watch({ highWaterMark: 3 })
    for (let i = 0; i < 5; i++) await s.set(`k${i}`, i)
    const got: string[] = []
    const code = await codeOf(async () => {
      for await (const c of feed) got.push(c.key)
    })
    expect(code).toBe('KV_OVERFLOW')
    expect(got).toEqual(['k0', 'k1', 'k2'])
  })

  itWhen(watch)('rejects bad watch options with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    for (const options of [{ key: 1 }, { prefix: null }, { highWaterMark: 0 }, { highWaterMark: 1.5 }, { keys: 'a' }]) {
      expect([options, await codeOf(() => s.watch(options as never))]).toEqual([options, 'KV_INVALID_ARGUMENT'])
    }
  })

  itWhen(!watch)('without watch, watch() fails with a StoreError', async () => {
    const s = await backend.open()
    expect(await failsWithStoreError(() => s.watch().next())).toBe(true)
  })
})
