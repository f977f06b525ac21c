// Transactions: what mutation testing found unpinned by transaction.test.ts — own writes
// merged into ranges at their exact bounds and in key order, TTL keys that have not
// expired, phantoms versus keys that had expired before the start, load between start
// and commit, read-only commits on a failed store, sizes of deletes, error messages.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Store, StoreError, type ScanOptions } from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { FullDisk } from '../helpers/full-disk.js'
import { tmpDir } from '../helpers/tmp.js'
import { join } from 'node:path'

async function errorOf(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p
  } catch (err) {
    if (err instanceof StoreError) return err
    throw err
  }
  throw new Error('resolved')
}

async function scanKeys(tx: { scan(o?: ScanOptions): AsyncIterable<[string, unknown]> }, o: ScanOptions = {}): Promise<string[]> {
  const out: string[] = []
  for await (const [k] of tx.scan(o)) out.push(k)
  return out
}

describe('transaction ranges with own writes', () => {
  it('merges own writes at the exact bounds: gte and lte are inclusive, gt and lt exclusive', async () => {
    const s = await Store.open<number>()
    await s.set('b', 1)
    await s.set('y', 1)
    const seen = await s.transaction(async (tx) => {
      for (const k of ['a', 'm', 'n', 'z']) tx.set(k, 2)
      return {
        all: await scanKeys(tx),
        gte: await scanKeys(tx, { gte: 'm' }),
        gt: await scanKeys(tx, { gt: 'm' }),
        lt: await scanKeys(tx, { lt: 'n' }),
        lte: await scanKeys(tx, { lte: 'n' }),
        ltOnly: await scanKeys(tx, { lt: 'm' }),
        window: await scanKeys(tx, { gte: 'm', lt: 'n' }),
      }
    })
    expect(seen).toEqual({
      all: ['a', 'b', 'm', 'n', 'y', 'z'],
      gte: ['m', 'n', 'y', 'z'],
      gt: ['n', 'y', 'z'],
      lt: ['a', 'b', 'm'],
      lte: ['a', 'b', 'm', 'n'],
      ltOnly: ['a', 'b'],
      window: ['m'],
    })
  })

  it('lists own writes that sort before, between and after stored keys in key order, both directions', async () => {
    const s = await Store.open<number>()
    for (const k of ['d', 'h', 'p']) await s.set(k, 1)
    const [fwd, rev, keys] = await s.transaction(async (tx) => {
      for (const k of ['t', 'a', 'k', 'c', 'e', 'z', 'b']) tx.set(k, 2)
      return [await scanKeys(tx), await scanKeys(tx, { reverse: true }), await tx.keys()]
    })
    const sorted = ['a', 'b', 'c', 'd', 'e', 'h', 'k', 'p', 't', 'z']
    expect(fwd).toEqual(sorted)
    expect(rev).toEqual([...sorted].reverse())
    expect(keys).toEqual(sorted)
  })

  it('property: keys() in a transaction is the sorted union of stored keys and own writes', async () => {
    const key = fc.stringMatching(/^[a-z]{1,3}$/)
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(key, { maxLength: 120 }), fc.uniqueArray(key, { maxLength: 120 }), async (stored, written) => {
        const s = await Store.open<number>()
        for (const k of stored) await s.set(k, 1)
        const listed = await s.transaction(async (tx) => {
          for (const k of written) tx.set(k, 2)
          return tx.keys()
        })
        const expected = [...new Set([...stored, ...written])].sort()
        expect(listed).toEqual(expected)
        await s.close()
      }),
      { numRuns: 30 },
    )
  })

  it('keys(pattern) returns only keys that match, not every key sharing the prefix', async () => {
    const s = await Store.open<number>()
    for (const k of ['abc', 'abd', 'axc', 'b']) await s.set(k, 1)
    const got = await s.transaction(async (tx) => {
      tx.set('azc', 1)
      tx.set('azz', 1)
      return tx.keys('a?c')
    })
    expect(got).toEqual(['abc', 'axc', 'azc'])
  })

  it('keys() refuses a non-string pattern with KV_INVALID_ARGUMENT', async () => {
    const s = await Store.open<number>()
    const err = await errorOf(s.transaction((tx) => tx.keys(5 as unknown as string)))
    expect(err.code).toBe('KV_INVALID_ARGUMENT')
    expect(err.message).toMatch(/pattern must be a string/)
  })
})

describe('transaction reads of keys with a TTL', () => {
  it('sees a key whose TTL has not run out in get, has, scan and keys', async () => {
    const clock = new FakeClock()
    const s = await Store.open<string>({ clock, expirySweepIntervalMs: 0 })
    await s.set('t', 'alive', { ttl: 1000 })
    await s.set('gone', 'x', { ttl: 10 })
    clock.advance(500)
    const seen = await s.transaction(async (tx) => ({
      get: await tx.get('t'),
      has: await tx.has('t'),
      goneGet: await tx.get('gone'),
      scan: await scanKeys(tx),
      keys: await tx.keys(),
    }))
    expect(seen).toEqual({ get: 'alive', has: true, goneGet: undefined, scan: ['t'], keys: ['t'] })
  })

  it('does not take a key that expired before the start for a phantom (commits in one run)', async () => {
    const clock = new FakeClock()
    const s = await Store.open<string>({ clock, expirySweepIntervalMs: 0 })
    await s.set('p:b', 'b')
    // The last write before the transaction: version == the transaction's start seq.
    await s.set('p:a', 'a', { ttl: 10 })
    clock.advance(20)
    let runs = 0
    const seen = await s.transaction(
      async (tx) => {
        runs++
        const keys = await scanKeys(tx, { prefix: 'p:' })
        tx.set('out', keys.join(','))
        return keys
      },
      { retries: 2 },
    )
    expect(seen).toEqual(['p:b'])
    expect(runs).toBe(1)
    expect(await s.get('out')).toBe('p:b')
  })
})

describe('transaction commit', () => {
  it('conflicts when load replaces the contents, even of a store never written (versions kept)', async () => {
    const dir = tmpDir()
    const file = join(dir, 'snap.kvs')
    const src = await Store.open<number>()
    await src.set('other', 1)
    await src.snapshot(file)
    const s = await Store.open<number>()
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      // 'a' is missing before and after the load: only the generation tells them apart.
      await tx.get('a')
      if (runs === 1) await s.load(file)
      tx.set('b', 1)
    })
    expect(runs).toBe(2)
    expect(await s.get('other')).toBe(1)
  })

  it('a read-only transaction still commits on a store whose WAL has failed', async () => {
    const disk = new FullDisk()
    const s = await Store.open<string>({ dir: '/d', fs: disk.fs })
    await s.set('k', 'v')
    disk.full = true
    expect((await errorOf(s.set('k2', 'v'))).code).toBe('KV_IO')
    const got = await s.transaction(async (tx) => tx.get('k'))
    expect(got).toBe('v')
    disk.full = false
  })

  it('counts deletes towards maxBatchBytes', async () => {
    const s = await Store.open<string>({ maxBatchBytes: 1000 })
    const key = (i: number): string => `${String(i).padStart(3, '0')}${'k'.repeat(97)}`
    const err = await errorOf(
      s.transaction((tx) => {
        for (let i = 0; i < 20; i++) tx.delete(key(i))
      }),
    )
    expect(err.code).toBe('KV_BATCH_TOO_LARGE')
    await s.transaction((tx) => {
      tx.delete(key(0))
      tx.delete(key(1))
    })
  })
})

describe('transaction error messages', () => {
  it('KV_CONFLICT says how many runs conflicted', async () => {
    const s = await Store.open<number>()
    await s.set('a', 0)
    let n = 0
    const err = await errorOf(
      s.transaction(
        async (tx) => {
          await tx.get('a')
          await s.set('a', ++n)
        },
        { retries: 2 },
      ),
    )
    expect(err.code).toBe('KV_CONFLICT')
    expect(err.message).toMatch(/conflicted 3 times/)
  })

  it('KV_WRONG_TYPE names the key that holds a list', async () => {
    const s = await Store.open<unknown>()
    await s.rpush('l', 'x')
    const err = await errorOf(s.transaction((tx) => tx.get('l')))
    expect(err.code).toBe('KV_WRONG_TYPE')
    expect(err.message).toMatch(/"l" holds a list or hash/)
  })

  it('incr messages say what is wrong', async () => {
    const s = await Store.open<unknown>()
    await s.set('big', Number.MAX_SAFE_INTEGER)
    const bad = await errorOf(s.transaction((tx) => tx.incr('n', 1.5)))
    expect(bad.code).toBe('KV_INVALID_ARGUMENT')
    expect(bad.message).toMatch(/increment must be a safe integer/)
    const over = await errorOf(s.transaction((tx) => tx.incr('big')))
    expect(over.code).toBe('KV_NOT_INTEGER')
    expect(over.message).toMatch(/increment of "big" would leave the safe-integer range/)
  })

  it('a finished transaction says so', async () => {
    const s = await Store.open<unknown>()
    let handle: { set(k: string, v: unknown): void } | undefined
    await s.transaction((tx) => {
      handle = tx
    })
    let msg = ''
    try {
      handle?.set('k', 1)
    } catch (err) {
      msg = err instanceof StoreError ? `${err.code}: ${err.message}` : String(err)
    }
    expect(msg).toMatch(/^KV_INVALID_ARGUMENT: .*already finished/)
  })
})
