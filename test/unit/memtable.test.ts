import { describe, expect, it } from 'vitest'
import { Memtable, type MemtableReader, type RangeBounds } from '../../src/memtable.js'

type Row = [key: string, value: unknown, version: number, expiresAt: number]
const STRIDE = 65_536

function viaCursor(t: MemtableReader, bounds?: RangeBounds): Row[] {
  const out: Row[] = []
  const c = t.cursor(bounds)
  while (c.next()) out.push([c.key, c.value, c.version, c.expiresAt])
  return out
}

function viaForEach(t: MemtableReader, bounds: RangeBounds = {}): Row[] {
  const out: Row[] = []
  t.forEach(bounds, (k, v, ver, exp) => {
    out.push([k, v, ver, exp])
  })
  return out
}

function keys(t: MemtableReader, bounds?: RangeBounds): string[] {
  const out = viaCursor(t, bounds).map((r) => r[0])
  expect(viaForEach(t, bounds).map((r) => r[0])).toEqual(out)
  return out
}

/** Memtable holding `ks` with value = key, version = index + 1. */
function tableOf(ks: readonly string[], chunkSize = 4): Memtable {
  const t = new Memtable({ chunkSize })
  ks.forEach((k, i) => t.set(k, k, i + 1, 0))
  return t
}

/** Entry count per chunk, read from the position encoding (chunk * 65536 + index). */
function chunkLengths(t: Memtable): number[] {
  const lengths: number[] = []
  for (const k of keys(t)) {
    const ci = Math.floor(t.indexOf(k) / STRIDE)
    lengths[ci] = (lengths[ci] ?? 0) + 1
  }
  return lengths
}

const pad = (i: number): string => `k${String(i).padStart(4, '0')}`
const range = (n: number): string[] => Array.from({ length: n }, (_, i) => pad(i))

function shuffled<T>(xs: readonly T[], seed = 1): T[] {
  const out = xs.slice()
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const j = seed % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

describe('Memtable: empty table', () => {
  it('has no entries and finds nothing', () => {
    const t = new Memtable()
    expect([t.size, t.expiringCount, t.get('a'), t.has('a'), t.indexOf('a')]).toEqual([0, 0, undefined, false, -1])
  })

  it('yields nothing from cursors and forEach in either direction', () => {
    const t = new Memtable()
    expect(keys(t)).toEqual([])
    expect(keys(t, { reverse: true, gte: 'a', lt: 'z' })).toEqual([])
  })

  it('rejects a chunkSize that positions cannot encode', () => {
    expect(() => new Memtable({ chunkSize: 1 })).toThrow(RangeError)
    expect(() => new Memtable({ chunkSize: 32_768 })).toThrow(RangeError)
    expect(() => new Memtable({ chunkSize: 2.5 })).toThrow(RangeError)
    expect(new Memtable({ chunkSize: 2 }).size).toBe(0)
  })
})

describe('Memtable: set, get and positions', () => {
  it('reports whether a key was new', () => {
    const t = new Memtable()
    expect(t.set('a', 1, 1, 0)).toBe(true)
    expect(t.set('a', 2, 2, 0)).toBe(false)
    expect(t.size).toBe(1)
  })

  it('replaces value, version and expiry of an existing key', () => {
    const t = new Memtable()
    t.set('a', 1, 1, 100)
    t.set('a', 2, 5, 0)
    expect(viaCursor(t)).toEqual([['a', 2, 5, 0]])
  })

  it('reads the entry at a position from indexOf', () => {
    const t = tableOf(['c', 'a', 'b'])
    t.set('b', { x: 1 }, 9, 1234)
    const pos = t.indexOf('b')
    expect([t.keyAt(pos), t.valueAt(pos), t.versionAt(pos), t.expiresAtAt(pos)]).toEqual(['b', { x: 1 }, 9, 1234])
    expect(t.expiresAtAt(t.indexOf('a'))).toBe(0)
  })

  it('returns -1 and undefined for absent keys between, before and after present ones', () => {
    const t = tableOf(['b', 'd'])
    for (const k of ['a', 'c', 'e', '']) {
      expect([t.indexOf(k), t.get(k), t.has(k)]).toEqual([-1, undefined, false])
    }
  })

  it('stores undefined-like values distinctly from missing keys', () => {
    const t = new Memtable()
    t.set('n', null, 1, 0)
    expect([t.get('n'), t.has('n'), t.indexOf('n') >= 0]).toEqual([null, true, true])
  })

  it('keeps keys in UTF-16 code unit order', () => {
    const t = tableOf(['\uffff', 'a', '\u{10000}', 'B', '', 'é'])
    expect(keys(t)).toEqual(['', 'B', 'a', 'é', '\u{10000}', '\uffff'])
  })

  it('orders keys inserted ascending, descending and shuffled the same way', () => {
    const sorted = range(300)
    for (const order of [sorted, sorted.slice().reverse(), shuffled(sorted)]) {
      const t = tableOf(order, 4)
      expect(keys(t)).toEqual(sorted)
      for (const k of sorted) expect(t.keyAt(t.indexOf(k))).toBe(k)
    }
  })
})

describe('Memtable: setAt', () => {
  it('replaces value, version and expiry at a position', () => {
    const t = tableOf(['a', 'b', 'c'])
    t.setAt(t.indexOf('b'), 'B', 7, 50)
    expect(viaCursor(t)).toEqual([['a', 'a', 1, 0], ['b', 'B', 7, 50], ['c', 'c', 3, 0]])
    expect(t.get('b')).toBe('B')
  })

  it('keeps positions valid because the key set is unchanged', () => {
    const t = tableOf(range(40), 4)
    const pos = t.indexOf(pad(17))
    t.setAt(pos, 'x', 99, 0)
    expect(t.indexOf(pad(17))).toBe(pos)
    expect(t.valueAt(pos)).toBe('x')
  })
})

describe('Memtable: delete and clear', () => {
  it('removes a present key and reports false for an absent one', () => {
    const t = tableOf(['a', 'b', 'c'])
    expect(t.delete('b')).toBe(true)
    expect(t.delete('b')).toBe(false)
    expect(t.delete('zz')).toBe(false)
    expect([t.size, keys(t), t.get('b'), t.indexOf('b')]).toEqual([2, ['a', 'c'], undefined, -1])
  })

  it('deletes the last key of a chunk and still finds the keys after it', () => {
    const t = tableOf(range(40), 4)
    for (const k of range(40)) {
      if (t.indexOf(k) % STRIDE !== 0) continue
      t.delete(k)
    }
    const rest = range(40).filter((k) => t.has(k))
    expect(keys(t)).toEqual(rest)
    for (const k of rest) expect(t.keyAt(t.indexOf(k))).toBe(k)
  })

  it('becomes empty after deleting every key, then accepts new keys', () => {
    const t = tableOf(range(50), 4)
    for (const k of shuffled(range(50))) expect(t.delete(k)).toBe(true)
    expect([t.size, keys(t), chunkLengths(t)]).toEqual([0, [], []])
    t.set('z', 1, 1, 0)
    expect(keys(t)).toEqual(['z'])
  })

  it('clear removes everything, including the expiring count', () => {
    const t = tableOf(range(30), 4)
    t.set('e', 1, 1, 500)
    t.clear()
    expect([t.size, t.expiringCount, keys(t), t.get(pad(3)), t.has('e')]).toEqual([0, 0, [], undefined, false])
    t.set('a', 1, 1, 0)
    expect(keys(t)).toEqual(['a'])
  })
})

describe('Memtable: chunks', () => {
  it('splits chunks so none exceeds twice the chunk size', () => {
    for (const order of [range(200), range(200).reverse(), shuffled(range(200), 3)]) {
      const t = new Memtable({ chunkSize: 4 })
      for (const k of order) {
        t.set(k, k, 1, 0)
        // indexOf forces any buffered writes into the chunks, so each step is checked.
        t.indexOf(k)
      }
      const lengths = chunkLengths(t)
      expect(lengths.length).toBeGreaterThan(200 / 8)
      for (const n of lengths) expect(n).toBeLessThanOrEqual(8)
    }
  })

  it.each([4, 8, 16])('merges or drops chunks thinned by deletes and keeps none empty (chunkSize %i)', (chunkSize) => {
    const t = tableOf(shuffled(range(800), 5), chunkSize)
    const before = chunkLengths(t).length
    const kept = range(800).filter((_, i) => i % 25 === 0)
    for (const k of shuffled(range(800), 9)) if (!kept.includes(k)) t.delete(k)
    const lengths = chunkLengths(t)
    expect(keys(t)).toEqual(kept)
    expect(t.size).toBe(kept.length)
    expect(lengths.length).toBeLessThan(before / 4)
    // Chunk indices are dense: no empty chunk sits between two used ones.
    for (const n of lengths) expect(n).toBeGreaterThan(0)
    for (const n of lengths) expect(n).toBeLessThanOrEqual(2 * chunkSize)
  })

  it.each([2, 8])('keeps order through interleaved splits and merges (chunkSize %i)', (chunkSize) => {
    const t = new Memtable({ chunkSize })
    const model = new Set<string>()
    let seed = 11
    for (let step = 0; step < 3000; step++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      const k = pad(seed % 150)
      if (seed % 3 === 0) {
        expect(t.delete(k)).toBe(model.delete(k))
      } else {
        expect(t.set(k, step, step, 0)).toBe(!model.has(k))
        model.add(k)
      }
      if (step % 97 === 0) expect(keys(t)).toEqual([...model].sort())
    }
    expect(keys(t)).toEqual([...model].sort())
    expect(t.size).toBe(model.size)
  })
})

describe('Memtable: ranges', () => {
  const all = 'abcdefghij'.split('')
  const t = tableOf(shuffled(all), 3)
  const cases: [RangeBounds, string][] = [
    [{}, 'abcdefghij'],
    [{ gte: 'c' }, 'cdefghij'],
    [{ gt: 'c' }, 'defghij'],
    [{ lt: 'c' }, 'ab'],
    [{ lte: 'c' }, 'abc'],
    [{ gte: 'c', lte: 'f' }, 'cdef'],
    [{ gt: 'c', lt: 'f' }, 'de'],
    [{ gte: 'c', lt: 'f' }, 'cde'],
    [{ gt: 'c', lte: 'f' }, 'def'],
    [{ gte: 'cc', lte: 'ff' }, 'def'],
    [{ gt: 'bb', lt: 'ee' }, 'cde'],
    [{ gte: 'c', gt: 'c' }, 'defghij'],
    [{ gte: 'e', gt: 'c' }, 'efghij'],
    [{ lt: 'f', lte: 'f' }, 'abcde'],
    [{ lt: 'h', lte: 'f' }, 'abcdef'],
    [{ gte: '0', lte: '~' }, 'abcdefghij'],
    [{ gte: 'k' }, ''],
    [{ lt: 'a' }, ''],
    [{ lte: 'a' }, 'a'],
    [{ gte: 'j' }, 'j'],
    [{ gte: 'f', lt: 'c' }, ''],
    [{ gt: 'e', lte: 'e' }, ''],
    [{ gte: 'e', lte: 'e' }, 'e'],
  ]

  it.each(cases)('walks %j forward', (b, want) => {
    expect(keys(t, b).join('')).toBe(want)
  })

  it.each(cases)('walks %j in reverse', (b, want) => {
    expect(keys(t, { ...b, reverse: true }).join('')).toBe([...want].reverse().join(''))
  })

  it('walks ranges that cross many chunks in both directions', () => {
    const big = tableOf(shuffled(range(500), 2), 4)
    const want = range(500).filter((k) => k >= pad(37) && k < pad(411))
    expect(keys(big, { gte: pad(37), lt: pad(411) })).toEqual(want)
    expect(keys(big, { gte: pad(37), lt: pad(411), reverse: true })).toEqual(want.slice().reverse())
  })

  it('yields values, versions and expiries with the keys', () => {
    const m = new Memtable({ chunkSize: 2 })
    m.set('a', 1, 10, 0)
    m.set('b', 2, 11, 77)
    m.set('c', 3, 12, 0)
    expect(viaCursor(m, { reverse: true })).toEqual([['c', 3, 12, 0], ['b', 2, 11, 77], ['a', 1, 10, 0]])
    expect(viaForEach(m)).toEqual([['a', 1, 10, 0], ['b', 2, 11, 77], ['c', 3, 12, 0]])
  })

  it('forEach stops when visit returns false', () => {
    for (const reverse of [false, true]) {
      const seen: string[] = []
      t.forEach({ reverse }, (k) => {
        seen.push(k)
        return seen.length < 3
      })
      expect(seen.join('')).toBe(reverse ? 'jih' : 'abc')
    }
  })

  it('a cursor stays exhausted once next() returned false', () => {
    const c = t.cursor({ gte: 'i' })
    expect([c.next(), c.next(), c.next(), c.next()]).toEqual([true, true, false, false])
  })
})

describe('Memtable: expiringCount', () => {
  it('counts entries with a non-zero expiry through set, setAt, delete and clear', () => {
    const t = new Memtable({ chunkSize: 2 })
    for (const k of range(10)) t.set(k, 1, 1, 0)
    expect(t.expiringCount).toBe(0)
    t.set(pad(1), 1, 2, 100)
    t.set(pad(2), 1, 2, 100)
    t.set('new', 1, 2, 100)
    expect(t.expiringCount).toBe(3)
    t.set(pad(1), 1, 3, 200)
    expect(t.expiringCount).toBe(3)
    t.set(pad(1), 1, 4, 0)
    expect(t.expiringCount).toBe(2)
    t.setAt(t.indexOf(pad(5)), 1, 5, 300)
    expect(t.expiringCount).toBe(3)
    t.setAt(t.indexOf(pad(5)), 1, 6, 0)
    expect(t.expiringCount).toBe(2)
    t.delete(pad(2))
    t.delete(pad(3))
    expect(t.expiringCount).toBe(1)
    t.clear()
    expect(t.expiringCount).toBe(0)
  })

  it('stays exact when a set and an overwrite of the same key are both pending', () => {
    const t = tableOf(range(20), 4)
    t.set('x', 1, 30, 500)
    t.set('x', 2, 31, 0)
    t.set(pad(4), 1, 32, 600)
    expect(t.expiringCount).toBe(1)
    expect(t.expiresAtAt(t.indexOf('x'))).toBe(0)
  })
})

describe('Memtable: views', () => {
  it('a view keeps its content while the memtable sees set, delete, setAt and clear', () => {
    const t = tableOf(range(30), 4)
    const v = t.view()
    const frozen = viaCursor(v)
    t.set(pad(3), 'changed', 100, 0)
    t.set('new', 'n', 101, 0)
    t.delete(pad(7))
    t.setAt(t.indexOf(pad(20)), 'at', 102, 9)
    expect(viaCursor(v)).toEqual(frozen)
    expect([t.get(pad(3)), t.get('new'), t.has(pad(7)), t.get(pad(20))]).toEqual(['changed', 'n', false, 'at'])
    t.clear()
    expect(viaCursor(v)).toEqual(frozen)
    expect([v.size, v.get(pad(3)), v.get('new'), v.get(pad(7)), v.indexOf(pad(7)) >= 0]).toEqual([30, pad(3), undefined, pad(7), true])
  })

  it('a view reports size and expiringCount as of view time', () => {
    const t = new Memtable({ chunkSize: 2 })
    t.set('a', 1, 1, 10)
    t.set('b', 1, 2, 0)
    const v = t.view()
    t.set('c', 1, 3, 20)
    t.set('a', 1, 4, 0)
    t.delete('b')
    expect([v.size, v.expiringCount]).toEqual([2, 1])
    expect([t.size, t.expiringCount]).toEqual([2, 1])
    expect(v.expiresAtAt(v.indexOf('a'))).toBe(10)
  })

  it('many views at different epochs each keep their own content', () => {
    const t = new Memtable({ chunkSize: 3 })
    const snaps: { view: MemtableReader; rows: Row[] }[] = []
    for (let round = 0; round < 30; round++) {
      for (let j = 0; j < 5; j++) t.set(pad((round * 7 + j * 13) % 60), round, round + 1, round % 3 === 0 ? round : 0)
      if (round % 4 === 3) t.delete(pad(round))
      const epoch = t.epoch
      snaps.push({ view: t.view(), rows: viaCursor(t) })
      expect(t.epoch).toBeGreaterThan(epoch)
    }
    for (const { view, rows } of snaps) {
      expect(viaCursor(view)).toEqual(rows)
      expect(view.size).toBe(rows.length)
      expect(view.expiringCount).toBe(rows.filter((r) => r[3] !== 0).length)
    }
  })

  it('a view cursor and positions stay valid through later memtable writes', () => {
    const t = tableOf(range(60), 4)
    const v = t.view()
    const pos = v.indexOf(pad(42))
    const c = v.cursor({ gte: pad(10), lt: pad(20) })
    c.next()
    for (const k of range(60)) t.delete(k)
    for (let i = 0; i < 100; i++) t.set(`z${i}`, i, 200 + i, 0)
    const rest = [c.key]
    while (c.next()) rest.push(c.key)
    expect(rest).toEqual(range(20).slice(10))
    expect([v.keyAt(pos), v.valueAt(pos), v.versionAt(pos)]).toEqual([pad(42), pad(42), 43])
  })

  it('a view taken right after buffered writes contains them', () => {
    const t = new Memtable({ chunkSize: 4 })
    for (const k of shuffled(range(100))) t.set(k, k, 1, 0)
    const v = t.view()
    t.set('zz', 1, 2, 0)
    expect(keys(v)).toEqual(range(100))
  })

  it('returns the same view and epoch while nothing was written', () => {
    const t = tableOf(['a'])
    const v1 = t.view()
    const e = t.epoch
    expect(t.view()).toBe(v1)
    expect(t.epoch).toBe(e)
    t.set('b', 1, 2, 0)
    expect(t.view()).not.toBe(v1)
    expect(t.epoch).toBe(e + 1)
  })

  it('views of an empty memtable stay empty', () => {
    const t = new Memtable()
    const v = t.view()
    t.set('a', 1, 1, 0)
    expect([v.size, keys(v), v.get('a'), v.indexOf('a')]).toEqual([0, [], undefined, -1])
  })
})

describe('Memtable.fromSorted', () => {
  it('builds a table equal to one made by set', () => {
    const ks = range(100)
    const exps = ks.map((_, i) => (i % 10 === 0 ? 1000 + i : 0))
    const t = Memtable.fromSorted(ks, ks.map((k) => k), ks.map((_, i) => i + 1), exps, { chunkSize: 4 })
    expect(viaCursor(t)).toEqual(ks.map((k, i) => [k, k, i + 1, exps[i]]))
    expect([t.size, t.expiringCount, t.get(pad(55)), t.has(pad(99))]).toEqual([100, 10, pad(55), true])
  })

  it('accepts null expiries and empty input', () => {
    expect(Memtable.fromSorted(['a', 'b'], [1, 2], [1, 1], null).expiringCount).toBe(0)
    expect(Memtable.fromSorted([], [], [], null).size).toBe(0)
  })

  it('copies its input arrays', () => {
    const ks = ['a', 'b']
    const vals = [1, 2]
    const t = Memtable.fromSorted(ks, vals, [1, 1], null)
    ks[0] = 'z'
    vals[1] = 9
    expect(viaCursor(t).map((r) => r[0])).toEqual(['a', 'b'])
    expect(t.valueAt(t.indexOf('b'))).toBe(2)
  })

  it('rejects unsorted or duplicate keys', () => {
    expect(() => Memtable.fromSorted(['b', 'a'], [1, 2], [1, 1], null)).toThrow(RangeError)
    expect(() => Memtable.fromSorted(['a', 'a'], [1, 2], [1, 1], null)).toThrow(RangeError)
  })

  it('accepts writes, deletes and views after a bulk build', () => {
    const ks = range(50)
    const t = Memtable.fromSorted(ks, ks, ks.map(() => 1), null, { chunkSize: 4 })
    const v = t.view()
    t.set('k0010a', 'x', 2, 0)
    t.delete(pad(0))
    expect(keys(t)).toEqual([...range(50).slice(1, 11), 'k0010a', ...range(50).slice(11)])
    expect(keys(v)).toEqual(ks)
  })
})

describe('Memtable pending writes', () => {
  it('keeps the pending buffer below the table size under random overwrites that no ordered read follows', () => {
    const mt = new Memtable({ pendingLimit: 64 })
    for (let i = 0; i < 1000; i++) mt.set(`k${String(i).padStart(4, '0')}`, i, 1, 0)
    let seed = 7
    for (let i = 0; i < 50_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      mt.set(`k${String(seed % 1000).padStart(4, '0')}`, -i, i + 2, 0)
      expect(mt.pendingWrites).toBeLessThan(1000)
    }
    expect(mt.size).toBe(1000)
    expect(mt.get('k0007')).toBeDefined()
  })

  it('keeps a small table\'s buffer at the pending limit', () => {
    const mt = new Memtable({ pendingLimit: 64 })
    for (let i = 0; i < 10; i++) mt.set(`k${i}`, i, 1, 0)
    for (let i = 0; i < 5000; i++) {
      mt.set(`k${i % 10}`, i, i + 2, 0)
      expect(mt.pendingWrites).toBeLessThan(64)
    }
  })

  it('churns one key (set, delete, set, ...) with one pending entry and reads it right at every step', () => {
    const mt = new Memtable({ pendingLimit: 1_000_000 })
    for (let i = 0; i < 100; i++) mt.set(`k${i}`, i, 1, 0)
    mt.indexOf('k0')
    for (let i = 0; i < 10_000; i++) {
      mt.set('churn', i, i + 2, 0)
      expect(mt.get('churn')).toBe(i)
      expect(mt.delete('churn')).toBe(true)
      expect(mt.delete('churn')).toBe(false)
      expect(mt.has('churn')).toBe(false)
      expect(mt.get('churn')).toBeUndefined()
      expect(mt.pendingWrites).toBe(1)
    }
    expect(mt.size).toBe(100)
    expect(mt.indexOf('churn')).toBe(-1)
    expect(mt.set('churn', 1, 1, 0)).toBe(true)
    expect(mt.size).toBe(101)
  })

  it('reports a deleted key as new when it is set again before the delete is applied', () => {
    const mt = new Memtable()
    mt.set('a', 1, 1, 5)
    mt.indexOf('a')
    expect(mt.delete('a')).toBe(true)
    mt.set('b', 2, 2, 0)
    expect(mt.expiringCount).toBe(0)
    expect(mt.set('a', 3, 3, 0)).toBe(true)
    expect(mt.size).toBe(2)
    const rows: unknown[] = []
    mt.forEach({}, (k, v, ver, exp) => { rows.push([k, v, ver, exp]) })
    expect(rows).toEqual([['a', 3, 3, 0], ['b', 2, 2, 0]])
  })

  it('rejects a pending limit that is not a positive integer', () => {
    expect(() => new Memtable({ pendingLimit: 0 })).toThrow(RangeError)
    expect(() => new Memtable({ pendingLimit: 1.5 })).toThrow(RangeError)
  })
})
