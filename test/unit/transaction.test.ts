// Versions and optimistic transactions: snapshot reads, own writes, conflict and
// phantom detection, retries, rollback on throw, and all-or-nothing visibility.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, StoreError, type Change } from '../../src/index.js'
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

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Every live key with its value and version, in key order; `collections` are listed with their version only. */
async function dump(s: Store<unknown>, collections: readonly string[] = []): Promise<[string, unknown, number][]> {
  const out: [string, unknown, number][] = []
  for (const k of await s.keys('*')) {
    if (collections.includes(k)) {
      out.push([k, await s.type(k), (await s.version(k)) as number])
      continue
    }
    const e = await s.getEntry(k)
    out.push([k, e?.value, e?.version as number])
  }
  return out
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((r) => (open = r))
  return { wait, open }
}

describe('versions', () => {
  it('gives every committed write the next sequence number', async () => {
    const s = await Store.open<unknown>()
    const writes: [string, () => Promise<unknown>][] = [
      ['a', () => s.set('a', 1)],
      ['b', () => s.set('b', 'x')],
      ['a', () => s.set('a', 2)],
      ['n', () => s.incr('n')],
      ['n', () => s.decr('n', 5)],
      ['l', () => s.rpush('l', 1, 2)],
      ['l', () => s.lpop('l')],
      ['h', () => s.hset('h', { f: 1 })],
      ['b', () => s.expire('b', 60_000)],
      ['b', () => s.persist('b')],
    ]
    let last = s.stats().seq
    expect(last).toBe(0)
    for (const [key, write] of writes) {
      await write()
      const seq = s.stats().seq
      expect(seq).toBe(last + 1)
      expect(await s.version(key)).toBe(seq)
      last = seq
    }
    expect(await s.getEntry('a')).toEqual({ value: 2, version: 3 })
    await s.delete('a')
    expect(s.stats().seq).toBe(last + 1)
    expect(await s.getEntry('a')).toBeUndefined()
  })

  it('reports expiresAt in getEntry only for keys that have one', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock })
    await s.set('plain', 1)
    await s.set('ttl', 2, { ttl: 1000 })
    const plain = await s.getEntry('plain')
    expect(plain).toEqual({ value: 1, version: 1 })
    expect(plain !== undefined && 'expiresAt' in plain).toBe(false)
    expect(await s.getEntry('ttl')).toEqual({ value: 2, version: 2, expiresAt: clock.now() + 1000 })
    clock.advance(1000)
    expect(await s.getEntry('ttl')).toBeUndefined()
    expect(await s.getEntry('missing')).toBeUndefined()
    await s.rpush('list', 1)
    expect(await codeOf(s.getEntry('list'))).toBe('KV_WRONG_TYPE')
    expect(await codeOf(s.getEntry(''))).toBe('KV_INVALID_KEY')
  })

  it('gives every key of a batch, a transaction and an atomic commit one shared version', async () => {
    const s = await Store.open<number>()
    await s.set('gone', 0)
    await s.batch([
      { type: 'set', key: 'b1', value: 1 },
      { type: 'set', key: 'b2', value: 2 },
      { type: 'delete', key: 'gone' },
      { type: 'set', key: 'b3', value: 3 },
    ])
    expect(s.stats().seq).toBe(2)
    for (const k of ['b1', 'b2', 'b3']) expect(await s.version(k)).toBe(2)
    await s.transaction(async (tx) => {
      tx.set('t1', 1)
      tx.set('t2', 2)
      await tx.incr('t3', 7)
    })
    expect(s.stats().seq).toBe(3)
    for (const k of ['t1', 't2', 't3']) expect(await s.version(k)).toBe(3)
    const r = await s.atomic().set('a1', 1).set('a2', 2).commit()
    expect(r).toEqual({ ok: true, version: 4 })
    for (const k of ['a1', 'a2']) expect(await s.version(k)).toBe(4)
  })

  it('keeps every version after close and reopen in dir mode, with or without compaction', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<unknown>({ dir })
    await s.set('a', 1)
    await s.batch([
      { type: 'set', key: 'b', value: 2 },
      { type: 'set', key: 'c', value: 3 },
    ])
    await s.transaction((tx) => tx.set('d', 4))
    await s.atomic().check('e', null).set('e', 5).commit()
    await s.set('a', 'again')
    await s.rpush('list', 1, 2)
    await s.hset('hash', { f: 1 })
    await s.rpush('list', 3)
    await s.set('doomed', 1)
    await s.delete('doomed') // the last write is a delete: seq is ahead of every key's version
    const before = await dump(s, ['list', 'hash'])
    const seq = s.stats().seq
    expect(seq).toBe(10)
    expect(await s.version('list')).toBe(8)
    await s.close()

    const again = await Store.open<unknown>({ dir })
    expect(await dump(again, ['list', 'hash'])).toEqual(before)
    expect(again.stats().seq).toBe(seq)
    await again.compact()
    await again.close()

    const third = await Store.open<unknown>({ dir })
    expect(await dump(third, ['list', 'hash'])).toEqual(before)
    expect(third.stats().seq).toBe(seq)
    await third.set('f', 6)
    expect(await third.version('f')).toBe(seq + 1)
    await third.close()
  })

  it('keeps every version through a snapshot loaded into a fresh store (binary and JSON)', async () => {
    const s = await Store.open<unknown>()
    await s.set('a', 1)
    await s.set('b', { x: [1, 2] })
    await s.batch([
      { type: 'set', key: 'c', value: 'c' },
      { type: 'set', key: 'd', value: null },
    ])
    await s.set('a', 2)
    const before = await dump(s)
    const maxVersion = Math.max(...before.map((e) => e[2]))
    for (const name of ['copy.kvs', 'copy.json']) {
      const file = join(tmpDir(), name)
      await s.snapshot(file)
      const fresh = await Store.open<unknown>()
      await fresh.load(file)
      expect(await dump(fresh)).toEqual(before)
      // Writes after the load continue past every loaded version.
      await fresh.set('z', 0)
      expect(await fresh.version('z')).toBeGreaterThan(maxVersion)
      await fresh.close()
    }
  })

  it('keeps every version across reopen in file mode', async () => {
    const file = join(tmpDir(), 'store.kvs')
    const s = await Store.open<number>({ file })
    await s.set('a', 1)
    await s.set('b', 2)
    await s.set('a', 3)
    const before = await dump(s)
    await s.close()
    const again = await Store.open<number>({ file })
    expect(await dump(again)).toEqual(before)
    await again.set('c', 4)
    expect(await again.version('c')).toBe(4)
    await again.close()
  })
})

describe('transactions: reads', () => {
  it('reads the state as of its start, whatever is written outside meanwhile', async () => {
    const s = await Store.open<number>()
    await s.batch([
      { type: 'set', key: 'p:1', value: 1 },
      { type: 'set', key: 'p:2', value: 2 },
      { type: 'set', key: 'q', value: 9 },
    ])
    const g = gate()
    const seen: unknown[][] = []
    const done = s.transaction(
      async (tx) => {
        const row: unknown[] = [await tx.get('p:1')]
        await g.wait
        row.push(await tx.get('p:1'), await tx.get('p:2'), await tx.has('p:2'), await tx.has('p:3'), await tx.get('p:3'))
        row.push(await tx.keys('p:*'), await collect(tx.scan({ prefix: 'p:' })))
        seen.push(row)
      },
      { retries: 0 },
    )
    // Outside: change one, delete one, insert one, after the transaction started.
    await s.set('p:1', 100)
    await s.delete('p:2')
    await s.set('p:3', 3)
    g.open()
    expect(await codeOf(done)).toBe('KV_CONFLICT')
    expect(seen).toEqual([[1, 1, 2, true, false, undefined, ['p:1', 'p:2'], [['p:1', 1], ['p:2', 2]]]])
  })

  it('sees its own writes in get, has, keys and scan, merged in key order, with deletes hiding keys', async () => {
    const s = await Store.open<number>()
    await s.batch([
      { type: 'set', key: 'k:b', value: 2 },
      { type: 'set', key: 'k:d', value: 4 },
      { type: 'set', key: 'k:f', value: 6 },
      { type: 'set', key: 'other', value: 0 },
    ])
    const seen = await s.transaction(async (tx) => {
      tx.set('k:a', 1)
      tx.set('k:d', 40)
      tx.delete('k:f')
      tx.set('k:e', 5)
      tx.delete('k:zz') // deleting a missing key hides nothing and adds nothing
      tx.set('k:c', 3)
      tx.delete('k:c') // a later delete wins over an earlier set
      tx.set('out', 1) // outside the prefix
      return {
        get: [await tx.get('k:a'), await tx.get('k:d'), await tx.get('k:f'), await tx.get('k:c')],
        has: [await tx.has('k:a'), await tx.has('k:f'), await tx.has('k:b'), await tx.has('k:c')],
        keys: await tx.keys('k:*'),
        all: await tx.keys(),
        scan: await collect(tx.scan({ prefix: 'k:' })),
        reverse: await collect(tx.scan({ prefix: 'k:', reverse: true })),
        limited: await collect(tx.scan({ prefix: 'k:', limit: 2 })),
        bounded: await collect(tx.scan({ gt: 'k:a', lte: 'k:e' })),
      }
    })
    expect(seen).toEqual({
      get: [1, 40, undefined, undefined],
      has: [true, false, true, false],
      keys: ['k:a', 'k:b', 'k:d', 'k:e'],
      all: ['k:a', 'k:b', 'k:d', 'k:e', 'other', 'out'],
      scan: [['k:a', 1], ['k:b', 2], ['k:d', 40], ['k:e', 5]],
      reverse: [['k:e', 5], ['k:d', 40], ['k:b', 2], ['k:a', 1]],
      limited: [['k:a', 1], ['k:b', 2]],
      bounded: [['k:b', 2], ['k:d', 40], ['k:e', 5]],
    })
    expect(await collect(s.scan({ prefix: 'k:' }))).toEqual(seen.scan)
    expect(await s.get('out')).toBe(1)
  })

  it('does not see keys that had expired at its start', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock, expirySweepIntervalMs: 0 })
    await s.set('live', 1)
    await s.set('old', 2, { ttl: 10 })
    clock.advance(10)
    const seen = await s.transaction(async (tx) => [await tx.get('old'), await tx.has('old'), await tx.keys(), await collect(tx.scan())])
    expect(seen).toEqual([undefined, false, ['live'], [['live', 1]]])
  })

  it('reads lists and hashes only through keys(): get fails with KV_WRONG_TYPE and scan skips them', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    await s.rpush('l', 1)
    await s.hset('h', { f: 1 })
    const seen = await s.transaction(async (tx) => [await tx.keys(), await collect(tx.scan()), await tx.has('l')])
    expect(seen).toEqual([['a', 'h', 'l'], [['a', 1]], true])
    expect(await codeOf(s.transaction((tx) => tx.get('l')))).toBe('KV_WRONG_TYPE')
    expect(await codeOf(s.transaction((tx) => tx.incr('h')))).toBe('KV_WRONG_TYPE')
  })

  it('hands out copies of bytes, so changing them changes nothing stored', async () => {
    const s = await Store.open<Uint8Array>()
    await s.set('b', new Uint8Array([1, 2]))
    await s.transaction(async (tx) => {
      const b = (await tx.get('b')) as Uint8Array
      b[0] = 9
      const mine = new Uint8Array([5])
      tx.set('c', mine)
      mine[0] = 6
      const back = (await tx.get('c')) as Uint8Array
      back[0] = 7
    })
    expect(await s.get('b')).toEqual(new Uint8Array([1, 2]))
    expect(await s.get('c')).toEqual(new Uint8Array([5]))
  })
})

describe('transactions: writes and commit', () => {
  it('commits every write as one record with one new version and resolves with the callback result', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<number>({ dir })
    await s.set('gone', 1)
    const seq = s.stats().seq
    const result = await s.transaction(async (tx) => {
      for (let i = 0; i < 20; i++) tx.set(`k${i}`, i)
      tx.delete('gone')
      return 'done'
    })
    expect(result).toBe('done')
    expect(s.stats().seq).toBe(seq + 1)
    for (let i = 0; i < 20; i++) expect(await s.getEntry(`k${i}`)).toEqual({ value: i, version: seq + 1 })
    expect(await s.has('gone')).toBe(false)
    await s.close()
    const again = await Store.open<number>({ dir })
    expect(again.stats().seq).toBe(seq + 1)
    expect(await again.count()).toBe(20)
    await again.close()
  })

  it('writes nothing and takes no version for a transaction that only reads', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    expect(await s.transaction(async (tx) => tx.get('a'))).toBe(1)
    expect(s.stats().seq).toBe(1)
  })

  it('buffers incr: integers and integer strings count, a missing key starts at 0', async () => {
    const s = await Store.open<number | string>()
    await s.set('n', 5)
    await s.set('str', '41')
    await s.set('word', 'x')
    const got = await s.transaction(async (tx) => {
      const r = [await tx.incr('n'), await tx.incr('n', -10), await tx.incr('str'), await tx.incr('fresh', 3)]
      r.push((await s.get('n')) as number) // outside still sees the old value before commit
      return r
    })
    expect(got).toEqual([6, -4, 42, 3, 5])
    expect([await s.get('n'), await s.get('str'), await s.get('fresh')]).toEqual([-4, 42, 3])
    expect(await codeOf(s.transaction((tx) => tx.incr('word')))).toBe('KV_NOT_INTEGER')
    await s.set('big', Number.MAX_SAFE_INTEGER)
    expect(await codeOf(s.transaction((tx) => tx.incr('big')))).toBe('KV_NOT_INTEGER')
    expect(await s.get('big')).toBe(Number.MAX_SAFE_INTEGER)
  })

  it('rejects a non-integer increment with KV_INVALID_ARGUMENT, as Store.incr does', async () => {
    const s = await Store.open<number>()
    await s.set('n', 1)
    expect(await codeOf(s.incr('n', 1.5))).toBe('KV_INVALID_ARGUMENT')
    for (const by of [1.5, Number.NaN, Infinity]) {
      expect(await codeOf(s.transaction((tx) => tx.incr('n', by)))).toBe('KV_INVALID_ARGUMENT')
    }
    expect(await s.get('n')).toBe(1)
  })

  it('rejects a bad scan limit with KV_INVALID_ARGUMENT, as Store.scan does', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    expect(await codeOf(Promise.resolve().then(() => collect(s.scan({ limit: -1 }))))).toBe('KV_INVALID_ARGUMENT')
    for (const limit of [-1, 1.5]) {
      expect(await codeOf(s.transaction((tx) => collect(tx.scan({ limit }))))).toBe('KV_INVALID_ARGUMENT')
    }
  })

  it('keeps a ttl given to tx.set', async () => {
    const clock = new FakeClock()
    const s = await Store.open<number>({ clock, expirySweepIntervalMs: 0 })
    await s.transaction((tx) => tx.set('t', 1, { ttl: 500 }))
    expect(await s.getEntry('t')).toEqual({ value: 1, version: 1, expiresAt: clock.now() + 500 })
    clock.advance(500)
    expect(await s.get('t')).toBeUndefined()
  })

  it('rejects bad keys, values and ttls at tx.set / tx.delete, before anything is written', async () => {
    const s = await Store.open<unknown>()
    const codes = await s.transaction(async (tx) => {
      tx.set('ok', 1)
      return [
        syncCodeOf(() => tx.set('', 1)),
        syncCodeOf(() => tx.set(5 as unknown as string, 1)),
        syncCodeOf(() => tx.set('\ud800', 1)),
        syncCodeOf(() => tx.set('k', undefined)),
        syncCodeOf(() => tx.set('k', () => 1)),
        syncCodeOf(() => tx.set('k', Number.NaN)),
        syncCodeOf(() => tx.set('k', 1, { ttl: -1 })),
        syncCodeOf(() => tx.delete('')),
        await codeOf(tx.get('')),
        await codeOf(tx.has('')),
      ]
    })
    expect(codes).toEqual([
      'KV_INVALID_KEY',
      'KV_INVALID_KEY',
      'KV_INVALID_KEY',
      'KV_INVALID_VALUE',
      'KV_INVALID_VALUE',
      'KV_INVALID_VALUE',
      'KV_INVALID_ARGUMENT',
      'KV_INVALID_KEY',
      'KV_INVALID_KEY',
      'KV_INVALID_KEY',
    ])
    expect(await s.keys()).toEqual(['ok'])
  })

  it('fails with KV_BATCH_TOO_LARGE and writes nothing when the commit exceeds maxBatchBytes', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    expect(await codeOf(s.transaction((tx) => {
      for (let i = 0; i < 10; i++) tx.set(`k${i}`, 'x'.repeat(200))
    }))).toBe('KV_BATCH_TOO_LARGE')
    expect(await s.count()).toBe(0)
    expect(s.stats().seq).toBe(0)
  })

  it('refuses writes through a transaction handle once the transaction has finished', async () => {
    const s = await Store.open<number>()
    let kept: { set(k: string, v: number): void } | undefined
    await s.transaction((tx) => {
      kept = tx
      tx.set('a', 1)
    })
    expect(syncCodeOf(() => kept?.set('b', 2))).toBe('KV_INVALID_ARGUMENT')
    expect(await s.has('b')).toBe(false)
  })

  it('rejects bad retries with KV_INVALID_ARGUMENT and runs nothing', async () => {
    const s = await Store.open<number>()
    let runs = 0
    for (const retries of [-1, 1.5, Number.NaN]) {
      expect(await codeOf(s.transaction(() => void runs++, { retries }))).toBe('KV_INVALID_ARGUMENT')
    }
    expect(runs).toBe(0)
  })

  it('rejects with KV_CLOSED after close, and a commit racing close fails without writing', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<number>({ dir })
    const g = gate()
    const pending = s.transaction(async (tx) => {
      await g.wait
      tx.set('late', 1)
    })
    await s.close()
    g.open()
    expect(await codeOf(pending)).toBe('KV_CLOSED')
    expect(await codeOf(s.transaction(() => undefined))).toBe('KV_CLOSED')
    const again = await Store.open<number>({ dir })
    expect(await again.has('late')).toBe(false)
    await again.close()
  })
})

describe('transactions: throw and retry', () => {
  it('rethrows what the callback throws, writes nothing and does not retry', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const boom = new Error('boom')
    let runs = 0
    const err = await s
      .transaction(async (tx) => {
        runs++
        tx.set('a', 2)
        tx.set('b', 3)
        await Promise.resolve()
        throw boom
      })
      .catch((e: unknown) => e)
    expect(err).toBe(boom)
    expect(runs).toBe(1)
    expect(await s.get('a')).toBe(1)
    expect(await s.has('b')).toBe(false)
    expect(s.stats().seq).toBe(1)
    // A synchronous throw and a non-Error value are rethrown as they are.
    expect(await s.transaction(() => {
      throw 'plain'
    }).catch((e: unknown) => e)).toBe('plain')
  })

  it('does not retry a throw even when the transaction would also have conflicted', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    let runs = 0
    await expect(
      s.transaction(async (tx) => {
        runs++
        await tx.get('a')
        await s.set('a', 2)
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(runs).toBe(1)
  })

  it('reruns after a conflict and sees the new value on the next run', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const reads: (number | undefined)[] = []
    await s.transaction(async (tx) => {
      const a = await tx.get('a')
      reads.push(a)
      if (reads.length === 1) await s.set('a', 10)
      tx.set('b', (a ?? 0) * 2)
    })
    expect(reads).toEqual([1, 10])
    expect(await s.get('b')).toBe(20)
  })

  it('conflicts when a key it read as missing appears, or a key it read disappears', async () => {
    const s = await Store.open<number>()
    await s.set('present', 1)
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.has('absent')
      if (runs === 1) await s.set('absent', 1)
      tx.set('x', 1)
    })
    expect(runs).toBe(2)
    runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.get('present')
      if (runs === 1) await s.delete('present')
      tx.set('y', 1)
    })
    expect(runs).toBe(2)
  })

  it('conflicts when a read key is rewritten with the same value (versions, not values, are compared)', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.get('a')
      if (runs === 1) await s.set('a', 1)
      tx.set('b', 1)
    })
    expect(runs).toBe(2)
  })

  it('does not conflict on keys it only wrote (blind writes), nor on keys it never touched', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      tx.set('a', 2)
      await tx.get('b')
      await s.set('a', 3)
      await s.set('c', 3)
    })
    expect(runs).toBe(1)
    expect(await s.get('a')).toBe(2)
  })

  it('fails with KV_CONFLICT after 1 + retries runs when every run conflicts, writing nothing', async () => {
    const s = await Store.open<number>()
    await s.set('a', 0)
    for (const [retries, expected] of [[0, 1], [3, 4], [undefined, 11]] as const) {
      let runs = 0
      const options = retries === undefined ? {} : { retries }
      const err = await s
        .transaction(async (tx) => {
          runs++
          const v = (await tx.get('a')) ?? 0
          await s.set('a', v + 1000) // someone else always wins
          tx.set('a', v + 1)
          tx.set('mine', runs)
        }, options)
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(StoreError)
      expect((err as StoreError).code).toBe('KV_CONFLICT')
      expect(runs).toBe(expected)
      expect(await s.has('mine')).toBe(false)
    }
  })

  it('conflicts when load replaces the contents while it runs, even with matching versions', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const file = join(tmpDir(), 'same.kvs')
    await s.snapshot(file) // same key, same version: only the load itself can tell
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.get('a')
      if (runs === 1) await s.load(file)
      tx.set('b', 1)
    })
    expect(runs).toBe(2)
  })
})

describe('transactions: phantoms', () => {
  it('reruns a transaction that scanned a prefix when a key is inserted into that range', async () => {
    const s = await Store.open<number>()
    await s.set('p:1', 1)
    const runs: number[][] = []
    await s.transaction(async (tx) => {
      const seen: number[] = []
      for await (const [, v] of tx.scan({ prefix: 'p:' })) seen.push(v)
      runs.push(seen)
      if (runs.length === 1) await s.set('p:2', 2)
      tx.set('sum', seen.reduce((a, b) => a + b, 0))
    })
    expect(runs).toEqual([[1], [1, 2]])
    expect(await s.get('sum')).toBe(3)
  })

  it('reruns a transaction that listed keys(p:*) when a matching key is inserted', async () => {
    const s = await Store.open<number>()
    await s.set('p:1', 1)
    const runs: string[][] = []
    await s.transaction(async (tx) => {
      const keys = await tx.keys('p:*')
      runs.push(keys)
      if (runs.length === 1) await s.set('p:2', 2)
      tx.set('count', keys.length)
    })
    expect(runs).toEqual([['p:1'], ['p:1', 'p:2']])
    expect(await s.get('count')).toBe(2)
  })

  it('reruns a transaction whose range lost a key it saw', async () => {
    const s = await Store.open<number>()
    await s.batch([
      { type: 'set', key: 'p:1', value: 1 },
      { type: 'set', key: 'p:2', value: 2 },
    ])
    const runs: string[][] = []
    await s.transaction(async (tx) => {
      const keys = await tx.keys('p:*')
      runs.push(keys)
      if (runs.length === 1) await s.delete('p:2')
      tx.set('count', keys.length)
    })
    expect(runs).toEqual([['p:1', 'p:2'], ['p:1']])
  })

  it('does not rerun for inserts outside the scanned range, including right at its bounds', async () => {
    const s = await Store.open<number>()
    await s.set('p:1', 1)
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await collect(tx.scan({ prefix: 'p:' }))
      await tx.keys('r:*')
      await collect(tx.scan({ gt: 'm', lt: 'n' }))
      await s.set('p', 0) // the prefix without the colon sorts before the range
      await s.set('p;', 0) // first key after the 'p:' range
      await s.set('q:1', 0)
      await s.set('m', 0) // exclusive lower bound
      await s.set('n', 0) // exclusive upper bound
      await s.set('r', 0)
      tx.set('x', 1)
    })
    expect(runs).toBe(1)
    expect(await s.get('x')).toBe(1)
  })

  it('does not rerun when a key is inserted into the range and removed again before commit', async () => {
    const s = await Store.open<number>()
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.keys('p:*')
      if (runs === 1) {
        await s.set('p:tmp', 1)
        await s.delete('p:tmp')
      }
      tx.set('x', 1)
    })
    expect(runs).toBe(1)
  })

  it('conflicts on any write anywhere after a full keys() listing', async () => {
    const s = await Store.open<number>()
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.keys()
      if (runs === 1) await s.set('anything', 1)
      tx.set('x', 1)
    })
    expect(runs).toBe(2)
  })
})

describe('transactions: concurrency', () => {
  it('never blocks other writers or readers while its callback awaits', async () => {
    const s = await Store.open<number>({ dir: join(tmpDir(), 'db') })
    const g = gate()
    let finished = false
    const tx = s
      .transaction(async (t) => {
        t.set('x', 1)
        await g.wait
      })
      .then(() => (finished = true))
    await s.set('y', 2)
    await s.batch([{ type: 'set', key: 'z', value: 3 }])
    await s.incr('n')
    expect(await s.atomic().check('w', null).set('w', 4).commit()).toMatchObject({ ok: true })
    expect(await s.get('y')).toBe(2)
    expect(await collect(s.scan())).toEqual([['n', 1], ['w', 4], ['y', 2], ['z', 3]])
    // Another transaction commits while the first one is still open.
    await s.transaction((t) => t.set('v', 5))
    expect(finished).toBe(false)
    expect(await s.has('x')).toBe(false)
    g.open()
    await tx
    expect(await s.get('x')).toBe(1)
    await s.close()
  })

  it('is seen by readers either whole or not at all', async () => {
    const s = await Store.open<number>()
    const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, '0')}`)
    const feed = s.watch({ prefix: 'k' })
    let stop = false
    const torn: string[] = []
    let observations = 0
    let waiters: (() => void)[] = []
    const nextPoll = (): Promise<void> => new Promise<void>((r) => waiters.push(r))
    // Polls between microtasks while transactions commit; each poll reads every key in
    // one synchronous step (get reads at call time) and through a scan view.
    const poller = (async () => {
      while (!stop) {
        const vals = await Promise.all(keys.map((k) => s.get(k)))
        if (new Set(vals).size !== 1) torn.push(`get: ${vals.join(',')}`)
        const scanned = (await collect(s.scan({ prefix: 'k' }))).map(([, v]) => v)
        if (scanned.length !== 0 && (scanned.length !== keys.length || new Set(scanned).size !== 1)) torn.push(`scan: ${scanned.join(',')}`)
        observations++
        const woken = waiters
        waiters = []
        for (const w of woken) w()
        await new Promise<void>((r) => setImmediate(r))
      }
    })()
    const writers: Promise<unknown>[] = []
    for (let round = 1; round <= 20; round++) {
      writers.push(
        s.transaction(async (tx) => {
          await tx.get('k00')
          // Commit only after a poll, with a varying number of microtask hops after it.
          await nextPoll()
          for (let i = 0; i < round % 7; i++) await Promise.resolve()
          for (const k of keys) tx.set(k, round)
        }, { retries: 100 }),
      )
    }
    await Promise.all(writers)
    stop = true
    await poller
    expect(torn).toEqual([])
    expect(observations).toBeGreaterThan(1)
    // The feed: each commit arrives as one contiguous run of 50 changes sharing a version.
    const changes: Change[] = []
    while (feed.pending > 0) changes.push((await feed.next()).value as Change)
    expect(changes.length).toBe(20 * keys.length)
    for (let i = 0; i < changes.length; i += keys.length) {
      const run = changes.slice(i, i + keys.length)
      expect(new Set(run.map((c) => c.version)).size).toBe(1)
      expect(run.map((c) => c.key)).toEqual(keys)
    }
    const final = new Set(await Promise.all(keys.map((k) => s.get(k))))
    expect(final.size).toBe(1)
  })
})
