// transaction(fn): optimistic and serializable: snapshot reads plus own writes, conflict
// detection (phantoms included) with retries, all-or-nothing commit, throw discards.
import { describe, expect } from 'vitest'
import { backends } from './backends.js'
import { codeOf, collect, dump, failsWithStoreError, gate, openWithClock, itWhen } from './harness.js'

describe.each(backends)('transactions: $name', (backend) => {
  const tx = backend.capabilities.transactions

  itWhen(tx)('resolves with what fn returns and commits its writes together', async () => {
    const s = await backend.open()
    await s.set('gone', 1)
    const r = await s.transaction(async (t) => {
      t.set('a', 1)
      t.set('b', { x: 2 })
      t.delete('gone')
      return 'done'
    })
    expect(r).toBe('done')
    expect(await s.keys()).toEqual(['a', 'b'])
    expect(await s.get('b')).toEqual({ x: 2 })
    const va = await s.version('a')
    expect(await s.version('b')).toBe(va)
    if (backend.capabilities.versionsAreSeqs) expect(s.stats().seq).toBe(va)
    else expect(Number.isSafeInteger(va)).toBe(true)
  })

  itWhen(tx)('reads its own writes in get, has, keys and scan, merged in key order', async () => {
    const s = await backend.open()
    await s.batch([
      { type: 'set', key: 'k:b', value: 2 },
      { type: 'set', key: 'k:d', value: 4 },
      { type: 'set', key: 'k:f', value: 6 },
      { type: 'set', key: 'other', value: 0 },
    ])
    const seen = await s.transaction(async (t) => {
      t.set('k:a', 1)
      t.set('k:d', 40)
      t.delete('k:f')
      t.set('k:c', 3)
      t.delete('k:c') // a later delete wins
      t.set('out', 1)
      return {
        get: [await t.get('k:a'), await t.get('k:d'), await t.get('k:f'), await t.get('k:c'), await t.get('k:b')],
        has: [await t.has('k:a'), await t.has('k:f'), await t.has('k:b'), await t.has('k:c')],
        keys: await t.keys('k:*'),
        scan: await collect(t.scan({ prefix: 'k:' })),
        reverse: (await collect(t.scan({ prefix: 'k:', reverse: true, limit: 2 }))).map(([k]) => k),
        incr: await t.incr('counter', 5),
        again: await t.incr('counter'),
      }
    })
    expect(seen).toEqual({
      get: [1, 40, undefined, undefined, 2],
      has: [true, false, true, false],
      keys: ['k:a', 'k:b', 'k:d'],
      scan: [
        ['k:a', 1],
        ['k:b', 2],
        ['k:d', 40],
      ],
      reverse: ['k:d', 'k:b'],
      incr: 5,
      again: 6,
    })
    const committed: unknown[] = []
    for (const k of ['counter', 'k:a', 'k:b', 'k:d', 'other', 'out']) committed.push(await s.get(k))
    expect(committed).toEqual([6, 1, 2, 40, 0, 1])
    expect(await s.keys()).toEqual(['counter', 'k:a', 'k:b', 'k:d', 'other', 'out'])
  })

  itWhen(tx)('reads the state as of its start; writes outside are not seen inside', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const g = gate()
    const seen: unknown[] = []
    const done = s.transaction(
      async (t) => {
        seen.push(await t.get('b')) // before the outside write is even issued
        await g.wait
        seen.push(await t.get('a'), await t.get('b'), await t.keys())
      },
      { retries: 0 },
    )
    await s.set('b', 2)
    await s.set('a', 100)
    g.open()
    expect(await codeOf(() => done)).toBe('KV_CONFLICT') // it read a and b, both changed
    expect(seen).toEqual([undefined, 1, undefined, ['a']])
  })

  itWhen(tx)('a write outside to a key it read makes it retry, and the rerun sees the new value', async () => {
    const s = await backend.open()
    await s.set('stock', 10)
    let runs = 0
    const g = gate()
    const done = s.transaction(async (t) => {
      runs++
      const n = (await t.get('stock')) as number
      if (runs === 1) await g.wait
      t.set('stock', n - 1)
      return n
    })
    await s.set('stock', 5)
    g.open()
    expect(await done).toBe(5)
    expect(runs).toBe(2)
    expect(await s.get('stock')).toBe(4)
  })

  itWhen(tx)('concurrent read-modify-write transactions never lose an update', async () => {
    const s = await backend.open()
    await s.set('n', 0)
    await Promise.all(
      Array.from({ length: 10 }, () =>
        s.transaction(
          async (t) => {
            const n = (await t.get('n')) as number
            await new Promise((r) => setImmediate(r))
            t.set('n', n + 1)
          },
          { retries: 50 },
        ),
      ),
    )
    expect(await s.get('n')).toBe(10)
  })

  itWhen(tx)('gives up with KV_CONFLICT after its retries and writes nothing', async () => {
    const s = await backend.open()
    await s.set('k', 0)
    let runs = 0
    const done = s.transaction(
      async (t) => {
        runs++
        await t.get('k')
        await s.incr('k') // conflict every time: someone else writes what we read
        t.set('mine', runs)
      },
      { retries: 2 },
    )
    expect(await codeOf(() => done)).toBe('KV_CONFLICT')
    expect(runs).toBe(3) // first run + 2 retries
    expect(await s.has('mine')).toBe(false)
    expect(await s.get('k')).toBe(3)
    let once = 0
    expect(
      await codeOf(() =>
        s.transaction(
          async (t) => {
            once++
            await t.get('k')
            await s.incr('k')
          },
          { retries: 0 },
        ),
      ),
    ).toBe('KV_CONFLICT')
    expect(once).toBe(1)
  })

  itWhen(tx)('a key it saw as missing that appears outside is a conflict', async () => {
    const s = await backend.open()
    const g = gate()
    const done = s.transaction(
      async (t) => {
        if ((await t.get('lock')) === undefined) {
          await g.wait
          t.set('lock', 'tx')
        }
      },
      { retries: 0 },
    )
    await s.set('lock', 'outside')
    g.open()
    expect(await codeOf(() => done)).toBe('KV_CONFLICT')
    expect(await s.get('lock')).toBe('outside')
  })

  itWhen(tx)('phantoms: a key inserted outside into a range it scanned or listed is a conflict', async () => {
    for (const read of ['scan', 'keys'] as const) {
      const s = await backend.open()
      await s.batch([
        { type: 'set', key: 'p:1', value: 1 },
        { type: 'set', key: 'p:2', value: 2 },
      ])
      const g = gate()
      const done = s.transaction(
        async (t) => {
          const n = read === 'scan' ? (await collect(t.scan({ prefix: 'p:' }))).length : (await t.keys('p:*')).length
          await g.wait
          t.set('count', n)
        },
        { retries: 0 },
      )
      await s.set('p:3', 3) // not a key it read: only the range covers it
      g.open()
      expect([read, await codeOf(() => done)]).toEqual([read, 'KV_CONFLICT'])
      expect(await s.has('count')).toBe(false)
    }
  })

  itWhen(tx)('phantoms: deleting a key it scanned is a conflict; writes outside the range are not', async () => {
    const s = await backend.open()
    await s.batch([
      { type: 'set', key: 'p:1', value: 1 },
      { type: 'set', key: 'p:2', value: 2 },
      { type: 'set', key: 'q', value: 0 },
    ])
    const g1 = gate()
    const ok = s.transaction(
      async (t) => {
        const n = (await collect(t.scan({ gte: 'p:', lt: 'p;' }))).length
        await g1.wait
        t.set('count', n)
      },
      { retries: 0 },
    )
    await s.set('q', 1) // outside the scanned range
    await s.set('o', 1)
    await s.set('p;', 1) // just past the upper bound
    g1.open()
    await ok
    expect(await s.get('count')).toBe(2)
    const g2 = gate()
    const bad = s.transaction(
      async (t) => {
        const n = (await collect(t.scan({ prefix: 'p:' }))).length
        await g2.wait
        t.set('count', n)
      },
      { retries: 0 },
    )
    await s.delete('p:1')
    g2.open()
    expect(await codeOf(() => bad)).toBe('KV_CONFLICT')
    expect(await s.get('count')).toBe(2)
  })

  itWhen(tx)('blind writes (nothing read) never conflict', async () => {
    const s = await backend.open()
    const g = gate()
    const done = s.transaction(
      async (t) => {
        await g.wait
        t.set('k', 'tx')
      },
      { retries: 0 },
    )
    await s.set('k', 'outside')
    g.open()
    await done
    expect(await s.get('k')).toBe('tx')
  })

  itWhen(tx)('a throw inside fn discards its writes and rejects with what was thrown, without retrying', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const before = await dump(s)
    const boom = new Error('boom')
    let runs = 0
    await expect(
      s.transaction(async (t) => {
        runs++
        t.set('a', 2)
        t.set('b', 2)
        throw boom
      }),
    ).rejects.toBe(boom)
    expect(runs).toBe(1)
    expect(await dump(s)).toEqual(before)
  })

  itWhen(tx)('an invalid write inside fn throws there, and nothing of the transaction is written', async () => {
    const s = await backend.open()
    const codes: string[] = []
    await expect(
      s.transaction(async (t) => {
        t.set('ok', 1)
        codes.push(await codeOf(() => t.set('', 1)))
        codes.push(await codeOf(() => t.set('v', () => 1)))
        codes.push(await codeOf(() => t.set('t', 1, { ttl: -1 })))
        t.set('bad', undefined) // uncaught: fails the transaction
      }),
    ).rejects.toMatchObject({ code: 'KV_INVALID_VALUE' })
    expect(codes).toEqual(['KV_INVALID_KEY', 'KV_INVALID_VALUE', 'KV_INVALID_ARGUMENT'])
    expect(await s.count()).toBe(0)
  })

  itWhen(tx)('writes with a ttl expire on the clock', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.transaction((t) => t.set('t', 1, { ttl: 100 }))
    const ttl = await s.ttl('t')
    if (backend.capabilities.fakeClock) {
      expect(ttl).toBe(100)
      clock.advance(100)
      expect(await s.has('t')).toBe(false)
    } else expect(ttl > 0 && ttl <= 100).toBe(true)
  })

  itWhen(tx)('a list or hash read inside a transaction fails with KV_WRONG_TYPE', async () => {
    const s = await backend.open()
    if (backend.capabilities.lists) await s.rpush('c', 1)
    else if (backend.capabilities.hashes) await s.hset('c', { f: 1 })
    else await s.set('c', 'stand-in')
    await s.set('plain', 1)
    const collection = backend.capabilities.lists || backend.capabilities.hashes
    const code = await codeOf(() => s.transaction((t) => t.get('c'), { retries: 0 }))
    expect(code).toBe(collection ? 'KV_WRONG_TYPE' : 'resolved')
    // keys() lists it like the store does; scan() skips it like the store does.
    const seen = await s.transaction(async (t) => ({ keys: await t.keys(), scan: await collect(t.scan()), has: await t.has('c') }))
    expect(seen).toEqual({ keys: ['c', 'plain'], scan: collection ? [['plain', 1]] : [['c', 'stand-in'], ['plain', 1]], has: true })
  })

  itWhen(tx)('rejects bad arguments with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    expect(await codeOf(() => s.transaction('fn' as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.transaction(() => 1, { retries: -1 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.transaction(() => 1, { retries: 1.5 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.transaction(() => 1, { retires: 3 } as never))).toBe('KV_INVALID_ARGUMENT')
    let leaked: Parameters<Parameters<typeof s.transaction>[0]>[0] | undefined
    await s.transaction((t) => {
      leaked = t
    })
    // A handle used after its transaction finished refuses writes.
    expect(await codeOf(() => leaked?.set('late', 1))).toBe('KV_INVALID_ARGUMENT')
    expect(await s.has('late')).toBe(false)
  })

  itWhen(!tx)('without transactions, transaction() rejects with a StoreError and runs nothing', async () => {
    const s = await backend.open()
    let ran = false
    expect(
      await failsWithStoreError(() =>
        s.transaction((t) => {
          ran = true
          t.set('a', 1)
        }),
      ),
    ).toBe(true)
    expect(ran).toBe(false)
    expect(await s.count()).toBe(0)
  })
})
