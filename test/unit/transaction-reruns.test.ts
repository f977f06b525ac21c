// Reruns after a conflict queue behind each other (Gate.rerun), so contention between
// transactions costs about one rerun per transaction instead of dozens.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Store, StoreError } from '../../src/index.js'
import { numRuns } from '../helpers/runs.js'

describe('transaction reruns', () => {
  it('100 concurrent transactions on one counter take fewer than 2 runs per commit', async () => {
    const s = await Store.open<number>({ expirySweepIntervalMs: 0 })
    await s.set('counter', 0)
    let runs = 0
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        s.transaction(
          async (tx) => {
            runs++
            const n = (await tx.get('counter')) ?? 0
            await Promise.resolve()
            tx.set('counter', n + 1)
            return n + 1
          },
          { retries: 1000 },
        ),
      ),
    )
    expect(await s.get('counter')).toBe(100)
    expect([...results].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    // One first run each; 99 lose to the one that commits first and each reruns once.
    expect(runs).toBe(199)
    await s.close()
  })

  it('never runs two reruns at once, under any interleaving, and loses no increment', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 3 }), async (sched, n, plain) => {
        const s = await Store.open<number>({ expirySweepIntervalMs: 0 })
        await s.set('counter', 0)
        let rerunsActive = 0
        let maxActive = 0
        const runsOf = new Array<number>(n).fill(0)
        const txs = Array.from({ length: n }, (_, id) =>
          sched.schedule(Promise.resolve(), `start ${id}`).then(() =>
            s.transaction(
              async (tx) => {
                const rerun = ++runsOf[id]! > 1
                if (rerun) maxActive = Math.max(maxActive, ++rerunsActive)
                try {
                  const v = (await tx.get('counter')) ?? 0
                  await sched.schedule(Promise.resolve(), `read ${id}`)
                  tx.set('counter', v + 1)
                } finally {
                  if (rerun) rerunsActive--
                }
              },
              { retries: 1000 },
            ),
          ),
        )
        // Plain writes interleaved anywhere: they may make a rerun conflict again, never deadlock it.
        const writes = Array.from({ length: plain }, (_, i) => sched.schedule(Promise.resolve(), `plain ${i}`).then(() => s.incr('counter', 1000)))
        await sched.waitFor(Promise.all([...txs, ...writes]))
        expect(maxActive).toBeLessThanOrEqual(1)
        expect(await s.get('counter')).toBe(n + 1000 * plain)
        await s.close()
      }),
      { numRuns: numRuns(100) },
    )
  })

  it('a rerun may write through the store itself; retries still bound the runs', async () => {
    const s = await Store.open<number>()
    await s.set('a', 0)
    let runs = 0
    const err = await s
      .transaction(
        async (tx) => {
          runs++
          const v = (await tx.get('a')) ?? 0
          await s.set('a', v + 10) // a plain write inside the callback: conflicts every run, never waits
          tx.set('a', v + 1)
        },
        { retries: 2 },
      )
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('KV_CONFLICT')
    expect(runs).toBe(3)
    expect(await s.get('a')).toBe(30)
    await s.close()
  })

  it('a throwing rerun does not hold up the reruns queued behind it', async () => {
    const s = await Store.open<number>()
    await s.set('c', 0)
    let calls = 0
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, id) =>
        s.transaction(async (tx) => {
          calls++
          const v = (await tx.get('c')) ?? 0
          await Promise.resolve()
          if (id === 1 && v > 0) throw new Error('boom') // only on its rerun
          tx.set('c', v + 1)
        }),
      ),
    )
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
    expect(await s.get('c')).toBe(4)
    expect(calls).toBe(9)
    await s.close()
  })
})
