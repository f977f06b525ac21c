// Transactions, atomic check-and-set, versions and the change feed.
import fc from 'fast-check'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store, StoreError, type Change } from '../../src/index.js'
import { numRuns } from '../helpers/runs.js'
import { tmpDir } from '../helpers/tmp.js'

describe('versions', () => {
  it('grow with every write, are shared by a batch, and survive reopen and snapshot/load', async () => {
    const dir = join(tmpDir(), 'db')
    const s = await Store.open<number>({ dir })
    await s.set('a', 1)
    await s.set('b', 2)
    await s.batch([
      { type: 'set', key: 'c', value: 3 },
      { type: 'set', key: 'd', value: 4 },
    ])
    const va = (await s.getEntry('a'))?.version as number
    const vb = (await s.getEntry('b'))?.version as number
    const vc = (await s.getEntry('c'))?.version as number
    expect(vb).toBeGreaterThan(va)
    expect((await s.getEntry('d'))?.version).toBe(vc)
    const file = join(tmpDir(), 'copy.kvs')
    await s.snapshot(file)
    await s.close()
    const again = await Store.open<number>({ dir })
    expect((await again.getEntry('b'))?.version).toBe(vb)
    await again.close()
    const loaded = await Store.open<number>()
    await loaded.load(file)
    expect((await loaded.getEntry('c'))?.version).toBe(vc)
  })
})

describe('atomic check-and-set', () => {
  it('applies all writes as one version when every check passes, nothing otherwise', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    const va = (await s.getEntry('a'))?.version as number
    const seq = s.stats().seq
    const ok = await s.atomic().check('a', va).check('new', null).set('a', 2).set('new', 1).delete('gone').commit()
    expect(ok).toEqual({ ok: true, version: seq + 1 })
    expect(s.stats().seq).toBe(seq + 1)
    const bad = await s.atomic().check('a', va).check('new', null).set('a', 99).commit()
    expect(bad).toEqual({ ok: false, failed: ['a', 'new'] })
    expect(await s.get('a')).toBe(2)
    expect(s.stats().seq).toBe(seq + 1)
    const op = s.atomic()
    await op.commit()
    await expect(op.commit()).rejects.toMatchObject({ code: 'KV_INVALID_ARGUMENT' })
    expect(() => s.atomic().set('', 1)).toThrow(StoreError)
    expect(() => s.atomic().set('k', (() => 1) as unknown as number)).toThrow(StoreError)
  })
})

describe('transactions', () => {
  it('read a snapshot from their start plus their own writes', async () => {
    const s = await Store.open<number>()
    await s.set('a', 1)
    await s.set('b', 2)
    let seen: unknown[] = []
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      const first = await tx.get('a')
      if (runs === 1) {
        await s.set('a', 100) // outside write after the start: this run still sees 1, then retries
        expect(await tx.get('a')).toBe(1)
      }
      tx.set('c', 3)
      tx.delete('b')
      const keys = await tx.keys('*')
      const scanned: [string, number][] = []
      for await (const e of tx.scan()) scanned.push(e)
      seen = [first, await tx.get('a'), await tx.has('b'), await tx.get('c'), keys, scanned]
    })
    // The second run saw a = 100 from its start.
    expect(runs).toBe(2)
    expect(seen).toEqual([100, 100, false, 3, ['a', 'c'], [['a', 100], ['c', 3]]])
    expect(await s.get('c')).toBe(3)
    expect(await s.has('b')).toBe(false)
  })

  it('rethrows and writes nothing when the callback throws', async () => {
    const s = await Store.open<number>()
    let runs = 0
    await expect(
      s.transaction(async (tx) => {
        runs++
        tx.set('a', 1)
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(runs).toBe(1)
    expect(await s.has('a')).toBe(false)
  })

  it('fails with KV_CONFLICT after its retries', async () => {
    const s = await Store.open<number>()
    await s.set('a', 0)
    let runs = 0
    await expect(
      s.transaction(
        async (tx) => {
          runs++
          const v = (await tx.get('a')) ?? 0
          await s.set('a', v + 1000) // someone else always wins
          tx.set('a', v + 1)
        },
        { retries: 2 },
      ),
    ).rejects.toMatchObject({ code: 'KV_CONFLICT' })
    expect(runs).toBe(3)
  })

  it('conflicts on a phantom inserted into a scanned range, not on inserts elsewhere', async () => {
    const s = await Store.open<number>()
    await s.set('p:1', 1)
    let runs = 0
    await s.transaction(async (tx) => {
      runs++
      const keys = await tx.keys('p:*')
      if (runs === 1) {
        await s.set('q:1', 1) // outside the range: no conflict from this alone
        await s.set('p:2', 2) // inside the range: phantom
      }
      tx.set('count', keys.length)
    })
    expect(runs).toBe(2)
    expect(await s.get('count')).toBe(2)
    runs = 0
    await s.transaction(async (tx) => {
      runs++
      await tx.keys('p:*')
      if (runs === 1) await s.set('z', 1)
      tx.set('x', 1)
    })
    expect(runs).toBe(1)
  })

  it('never blocks other writers while the callback awaits', async () => {
    const s = await Store.open<number>()
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const tx = s.transaction(async (t) => {
      t.set('x', 1)
      await gate
    })
    await s.set('y', 2) // resolves while the transaction is open
    release()
    await tx
    expect(await s.get('x')).toBe(1)
  })

  it('serializes concurrent increments and transfers under any interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 8 }), fc.array(fc.tuple(fc.nat(3), fc.nat(3), fc.integer({ min: 1, max: 30 })), { maxLength: 6 }), async (sch, increments, transfers) => {
        const s = await Store.open<number>()
        for (let i = 0; i < 4; i++) await s.set(`acct:${i}`, 50)
        await s.set('counter', 0)
        const jobs: Promise<unknown>[] = []
        for (let i = 0; i < increments; i++) {
          jobs.push(
            s.transaction(async (tx) => {
              const n = (await sch.schedule(tx.get('counter'))) ?? 0
              tx.set('counter', n + 1)
            }, { retries: 1000 }),
          )
        }
        for (const [from, to, amount] of transfers) {
          jobs.push(
            s.transaction(async (tx) => {
              const a = (await sch.schedule(tx.get(`acct:${from}`))) ?? 0
              const b = (await sch.schedule(tx.get(`acct:${to}`))) ?? 0
              if (from === to || a < amount) return
              tx.set(`acct:${from}`, a - amount)
              tx.set(`acct:${to}`, b + amount)
            }, { retries: 1000 }),
          )
        }
        // A plain write interleaved with the transactions.
        jobs.push(sch.schedule(Promise.resolve()).then(() => s.set('other', 1)))
        await sch.waitFor(Promise.all(jobs))
        expect(await s.get('counter')).toBe(increments)
        let total = 0
        for (let i = 0; i < 4; i++) {
          const v = (await s.get(`acct:${i}`)) as number
          expect(v).toBeGreaterThanOrEqual(0)
          total += v
        }
        expect(total).toBe(200)
      }),
      { numRuns: numRuns(100) },
    )
  })
})

describe('watch', () => {
  async function take(feed: AsyncIterator<Change>, n: number): Promise<Change[]> {
    const out: Change[] = []
    for (let i = 0; i < n; i++) out.push((await feed.next()).value as Change)
    return out
  }

  it('delivers changes in commit order, filtered by key or prefix', async () => {
    const s = await Store.open<number | string>()
    const all = s.watch()
    const users = s.watch({ prefix: 'user:' })
    const one = s.watch({ key: 'n' })
    await s.set('user:1', 'a')
    await s.set('n', 1)
    await s.delete('user:1')
    await s.rpush('user:list', 'x')
    await s.incr('n')
    await s.clear()
    const got = await take(all, 6)
    expect(got.map((c) => [c.type, c.key])).toEqual([
      ['set', 'user:1'],
      ['set', 'n'],
      ['delete', 'user:1'],
      ['update', 'user:list'],
      ['set', 'n'],
      ['clear', ''],
    ])
    expect(got.map((c) => c.version)).toEqual([...got.map((c) => c.version)].sort((a, b) => a - b))
    expect(got[0]).toMatchObject({ value: 'a' })
    expect((await take(users, 4)).map((c) => c.type)).toEqual(['set', 'delete', 'update', 'clear'])
    expect((await take(one, 3)).map((c) => c.type)).toEqual(['set', 'set', 'clear'])
    const pending = one.next()
    await s.close()
    expect(await pending).toEqual({ value: undefined, done: true })
  })

  it('ends on return() and fails a slow consumer with KV_OVERFLOW instead of buffering without limit', async () => {
    const s = await Store.open<number>()
    const feed = s.watch({ highWaterMark: 3 })
    for (let i = 0; i < 10; i++) await s.set(`k${i}`, i)
    expect(feed.pending).toBeLessThanOrEqual(3)
    await take(feed, 3)
    await expect(feed.next()).rejects.toMatchObject({ code: 'KV_OVERFLOW' })
    const other = s.watch()
    await other.return()
    expect(await other.next()).toEqual({ value: undefined, done: true })
    expect(() => s.watch({ highWaterMark: 0 })).toThrow(StoreError)
  })
})
