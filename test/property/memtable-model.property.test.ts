// Model test of the chunked memtable against a Map + sorted keys, with tiny chunks so
// splits and merges happen constantly, and views checked against the model's history.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Memtable, type MemtableReader, type RangeBounds } from '../../src/memtable.js'
import { numRuns } from '../helpers/runs.js'

type Row = [key: string, value: number, version: number, expiresAt: number]

function sortedRows(model: Map<string, Row>): Row[] {
  return [...model.values()].sort((a, b) => (a[0] < b[0] ? -1 : 1))
}

function contents(t: MemtableReader, bounds: RangeBounds = {}): Row[] {
  const out: Row[] = []
  t.forEach(bounds, (k, v, ver, exp) => {
    out.push([k, v as number, ver, exp])
  })
  return out
}

function expectedRange(rows: Row[], b: RangeBounds): Row[] {
  const sel = rows.filter(([k]) => {
    if (b.gt !== undefined && !(k > b.gt)) return false
    if (b.gte !== undefined && !(k >= b.gte)) return false
    if (b.lt !== undefined && !(k < b.lt)) return false
    if (b.lte !== undefined && !(k <= b.lte)) return false
    return true
  })
  return b.reverse ? sel.reverse() : sel
}

const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', '\uffff', 'é'), maxLength: 4 })
const op = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('set' as const), key, value: fc.integer(), exp: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('del' as const), key }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('take' as const), key }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('setAt' as const), key, value: fc.integer(), exp: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 })) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('view' as const) }) },
  // An ordered read applies the pending writes and deletes mid-sequence.
  { weight: 1, arbitrary: fc.record({ t: fc.constant('ordered' as const), key }) },
  { weight: 1, arbitrary: fc.constant({ t: 'clear' as const }) },
)
const bounds = fc.record(
  { gt: key, gte: key, lt: key, lte: key, reverse: fc.boolean() },
  { requiredKeys: [] },
)

describe('Memtable model', () => {
  it('matches a sorted Map through sets, deletes, clears and views at every step', () => {
    const prefillExp = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 }))
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 40 }), fc.uniqueArray(fc.tuple(key, prefillExp), { maxLength: 150, selector: (e) => e[0] }), fc.boolean(), fc.array(op, { maxLength: 120 }), fc.array(bounds, { maxLength: 4 }), (chunkSize, pendingLimit, prefill, bulk, ops, ranges) => {
        const model = new Map<string, Row>()
        const views: { view: MemtableReader; rows: Row[] }[] = []
        let version = 0
        // A sorted base, so later inserts take both paths: one by one and bulk merge. Built
        // either by writes or in one piece from sorted arrays (open from a snapshot).
        let mt = new Memtable({ chunkSize, pendingLimit })
        if (bulk) {
          const sorted = [...prefill].sort((a, b) => (a[0] < b[0] ? -1 : 1))
          const exps = sorted.map((e) => e[1])
          mt = Memtable.fromSorted(sorted.map((e) => e[0]), sorted.map(() => -1), sorted.map(() => 1), exps.some((e) => e !== 0) ? exps : null, { chunkSize, pendingLimit })
          for (const [k, exp] of sorted) model.set(k, [k, -1, 1, exp])
          version = 1
        } else {
          for (const [k, exp] of prefill) {
            mt.set(k, -1, ++version, exp)
            model.set(k, [k, -1, version, exp])
          }
        }
        if (prefill.length > 0) views.push({ view: mt.view(), rows: sortedRows(model) })
        for (const o of ops) {
          version++
          switch (o.t) {
            case 'set': {
              const isNew = mt.set(o.key, o.value, version, o.exp)
              expect(isNew).toBe(!model.has(o.key))
              model.set(o.key, [o.key, o.value, version, o.exp])
              break
            }
            case 'del':
              expect(mt.delete(o.key)).toBe(model.delete(o.key))
              break
            case 'take': {
              // The value the key held, expired or not (the table keeps no clock).
              const row = model.get(o.key)
              expect(mt.take(o.key)).toBe(row === undefined ? undefined : row[1])
              model.delete(o.key)
              break
            }
            case 'setAt': {
              const pos = mt.indexOf(o.key)
              const row = model.get(o.key)
              expect(pos >= 0).toBe(row !== undefined)
              if (row !== undefined) {
                mt.setAt(pos, o.value, version, o.exp)
                model.set(o.key, [o.key, o.value, version, o.exp])
              }
              break
            }
            case 'view':
              views.push({ view: mt.view(), rows: sortedRows(model) })
              break
            case 'clear':
              mt.clear()
              model.clear()
              break
            case 'ordered': {
              const row = model.get(o.key)
              const pos = mt.indexOf(o.key)
              expect(pos >= 0).toBe(row !== undefined)
              if (row !== undefined) expect([mt.keyAt(pos), mt.valueAt(pos), mt.versionAt(pos), mt.expiresAtAt(pos)]).toEqual(row)
              expect(mt.pendingWrites).toBe(0)
              break
            }
          }
          expect(mt.size).toBe(model.size)
          expect(mt.pendingWrites).toBeLessThan(Math.max(pendingLimit, mt.size + 1))
          // Key-addressed reads answer from the hash index (expiries included), pending
          // writes and deletes included, without applying them.
          if ('key' in o) {
            const row = model.get(o.key)
            expect(mt.get(o.key)).toBe(row?.[1])
            expect(mt.has(o.key)).toBe(row !== undefined)
            expect(mt.expiresAtOf(o.key)).toBe(row?.[3] ?? 0)
            // Live at the last millisecond before its expiry, gone at the expiry itself.
            const exp = row?.[3] ?? 0
            for (const now of [exp - 1, exp]) {
              const live = row !== undefined && (exp === 0 || exp > now)
              expect(mt.getUnexpired(o.key, now)).toBe(live ? row[1] : undefined)
              expect(mt.hasUnexpired(o.key, now)).toBe(live)
            }
          }
          let expiring = 0
          for (const r of model.values()) if (r[3] !== 0) expiring++
          expect(mt.expiringCount).toBe(expiring)
          expect(new Map(mt.expiries())).toEqual(new Map([...model.values()].filter((r) => r[3] !== 0).map((r) => [r[0], r[3]])))
        }
        const rows = sortedRows(model)
        expect(contents(mt)).toEqual(rows)
        expect(mt.expiringCount).toBe(rows.filter((r) => r[3] !== 0).length)
        for (const [k, v, ver, exp] of rows) {
          const pos = mt.indexOf(k)
          expect([mt.keyAt(pos), mt.valueAt(pos), mt.versionAt(pos), mt.expiresAtAt(pos)]).toEqual([k, v, ver, exp])
        }
        for (const b of ranges) expect(contents(mt, b)).toEqual(expectedRange(rows, b))
        for (const { view, rows: then } of views) {
          expect(contents(view)).toEqual(then)
          expect(view.size).toBe(then.length)
          for (const b of ranges) expect(contents(view, b)).toEqual(expectedRange(then, b))
        }
      }),
      { numRuns: numRuns(500) },
    )
  })

  it('stays sorted and finds every key at 200K random keys', () => {
    const mt = new Memtable()
    const keys = new Set<string>()
    let seed = 42
    for (let i = 0; i < 200_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      const k = `k${seed.toString(36)}`
      keys.add(k)
      mt.set(k, i, i + 1, 0)
    }
    expect(mt.size).toBe(keys.size)
    let prev = ''
    let n = 0
    mt.forEach({}, (k) => {
      expect(k > prev).toBe(true)
      prev = k
      n++
    })
    expect(n).toBe(keys.size)
    for (const k of keys) expect(mt.indexOf(k)).toBeGreaterThanOrEqual(0)
    let deleted = 0
    for (const k of keys) if (deleted++ % 2 === 0) mt.delete(k)
    expect(mt.size).toBe(keys.size - Math.ceil(keys.size / 2))
  })

  it('builds from sorted arrays and rejects unsorted input', () => {
    const keys = Array.from({ length: 2000 }, (_, i) => `k${String(i).padStart(5, '0')}`)
    const mt = Memtable.fromSorted(keys, keys.map((_, i) => i), keys.map(() => 1), null, { chunkSize: 64 })
    expect(mt.size).toBe(2000)
    expect(mt.get('k01234')).toBe(1234)
    expect(contents(mt, { gte: 'k01998' }).map((r) => r[0])).toEqual(['k01998', 'k01999'])
    expect(() => Memtable.fromSorted(['b', 'a'], [1, 2], [1, 1], null)).toThrow(RangeError)
  })
})
