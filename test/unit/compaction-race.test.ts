// Writes that land while compact() rotates the WAL go to the new segment only. The
// snapshot must hold the state from before the rotation, or those writes would be in
// both the snapshot and the new segment and be applied twice on reopen (a list grows a
// duplicate element, a counter counts twice).
import { setImmediate as nextMacrotask } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'

type Sync = 'always' | 'interval' | 'never'

async function reopened(dir: string): Promise<{ list: string[]; n: unknown; keys: number }> {
  const s = await Store.open<unknown>({ dir })
  try {
    return { list: (await s.lrange('list', 0, -1)) as string[], n: await s.get('n'), keys: await s.count() }
  } finally {
    await s.close()
  }
}

describe('writes during a compaction', () => {
  for (const sync of ['always', 'interval', 'never'] as Sync[]) {
    it(`same tick and while the rotation is pending are applied once (sync: ${sync})`, async () => {
      const dir = tmpDir()
      const s = await Store.open<unknown>({ dir, sync, compactThresholdBytes: 0 })
      await s.set('before', 'x')
      const seg0 = s.stats().walSegment as number

      let compacted = false
      const c = s.compact().then((r) => {
        compacted = true
        return r
      })
      // Same tick: compact() has not taken its view yet (it runs after queued maintenance).
      const first = [s.rpush('list', 'a'), s.incr('n')]

      // Let #compact start: it rotates synchronously (segment number changes at once),
      // then awaits the rotation's I/O.
      for (let i = 0; i < 1000 && s.stats().walSegment === seg0; i++) await Promise.resolve()
      expect(s.stats().walSegment).toBe(seg0 + 1)
      expect(compacted).toBe(false)

      // While the rotation is pending: these records go to the new segment only.
      const second = [s.rpush('list', 'b'), s.incr('n')]
      expect(compacted).toBe(false)

      const [result] = await Promise.all([c, ...first, ...second])
      expect(await s.lrange('list', 0, -1)).toEqual(['a', 'b'])
      expect(await s.get('n')).toBe(2)
      await s.close()

      // The snapshot covers the state before the rotation: 'before', 'list' = ['a'], n = 1.
      expect(result.entries).toBe(3)
      expect(await reopened(dir)).toEqual({ list: ['a', 'b'], n: 2, keys: 3 })
    })
  }

  it('writes at every microtask and macrotask until compact() settles are applied exactly once', async () => {
    const dir = tmpDir()
    const s = await Store.open<unknown>({ dir, compactThresholdBytes: 0 })
    for (let i = 0; i < 50; i++) await s.set(`pad${i}`, 'y'.repeat(100))
    let compacted = false
    const c = s.compact().then(() => {
      compacted = true
    })
    const writes: Promise<unknown>[] = []
    let i = 0
    while (!compacted && i < 10_000) {
      writes.push(s.rpush('list', `e${i}`), s.incr('n'))
      i++
      if (i % 4 === 0) await nextMacrotask()
      else await Promise.resolve()
    }
    await Promise.all([c, ...writes])
    expect(compacted).toBe(true)
    expect(i).toBeGreaterThan(1)
    const expected = Array.from({ length: i }, (_, k) => `e${k}`)
    await s.close()
    expect(await reopened(dir)).toEqual({ list: expected, n: i, keys: 52 })
  })

  it('a second compaction right after the first keeps the same state', async () => {
    const dir = tmpDir()
    const s = await Store.open<unknown>({ dir, compactThresholdBytes: 0 })
    const c1 = s.compact()
    const w1 = [s.rpush('list', 'a'), s.incr('n')]
    await Promise.resolve()
    const c2 = s.compact()
    const w2 = [s.rpush('list', 'b'), s.incr('n')]
    await nextMacrotask()
    const w3 = [s.incr('n')]
    await Promise.all([c1, c2, ...w1, ...w2, ...w3])
    await s.close()
    expect(await reopened(dir)).toEqual({ list: ['a', 'b'], n: 3, keys: 2 })
  })
})
