// fast-check commands against a Map model, checking the whole ordered content after
// every step (memtable-model.property.test.ts checks at the end): cursors over random
// ranges, reads on views, and views re-checked after every later write.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Memtable, type MemtableReader, type MemtableView, type RangeBounds } from '../../src/memtable.js'
import { numRuns } from '../helpers/runs.js'

type Row = [key: string, value: number, version: number, expiresAt: number]

interface Model {
  rows: Map<string, Row>
  version: number
  views: { view: MemtableView; rows: Row[] }[]
}

function sortedRows(rows: Map<string, Row>): Row[] {
  return [...rows.values()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

function read(t: MemtableReader, bounds?: RangeBounds): Row[] {
  const out: Row[] = []
  const c = t.cursor(bounds)
  while (c.next()) out.push([c.key, c.value as number, c.version, c.expiresAt])
  return out
}

function inRange(rows: Row[], b: RangeBounds): Row[] {
  const sel = rows.filter(
    ([k]) =>
      (b.gt === undefined || k > b.gt) &&
      (b.gte === undefined || k >= b.gte) &&
      (b.lt === undefined || k < b.lt) &&
      (b.lte === undefined || k <= b.lte),
  )
  return b.reverse === true ? sel.reverse() : sel
}

/** Full comparison of a reader against rows, through every read method. */
function expectSame(t: MemtableReader, rows: Row[]): void {
  expect(read(t)).toEqual(rows)
  expect(t.size).toBe(rows.length)
  expect(t.expiringCount).toBe(rows.filter((r) => r[3] !== 0).length)
  for (const [k, v, ver, exp] of rows) {
    const pos = t.indexOf(k)
    expect([t.get(k), t.keyAt(pos), t.valueAt(pos), t.versionAt(pos), t.expiresAtAt(pos)]).toEqual([v, k, v, ver, exp])
  }
}

function check(m: Model, t: Memtable): void {
  expectSame(t, sortedRows(m.rows))
  for (const { view, rows } of m.views) expect(read(view)).toEqual(rows)
}

class SetCmd implements fc.Command<Model, Memtable> {
  constructor(readonly key: string, readonly value: number, readonly exp: number) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    const version = ++m.version
    expect(t.set(this.key, this.value, version, this.exp)).toBe(!m.rows.has(this.key))
    m.rows.set(this.key, [this.key, this.value, version, this.exp])
    check(m, t)
  }
  toString = (): string => `set(${JSON.stringify(this.key)}, ${this.value}, exp ${this.exp})`
}

/** Many sets in one step, so chunks fill up and later deletes thin them into merges. */
class SetManyCmd implements fc.Command<Model, Memtable> {
  constructor(readonly keys: string[]) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    for (const k of this.keys) {
      const version = ++m.version
      t.set(k, version, version, 0)
      m.rows.set(k, [k, version, version, 0])
    }
    check(m, t)
  }
  toString = (): string => `setMany(${JSON.stringify(this.keys)})`
}

class DeleteCmd implements fc.Command<Model, Memtable> {
  constructor(readonly key: string) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    expect(t.delete(this.key)).toBe(m.rows.delete(this.key))
    expect(t.has(this.key)).toBe(false)
    check(m, t)
  }
  toString = (): string => `delete(${JSON.stringify(this.key)})`
}

/** Deletes every key in a range, thinning neighbouring chunks at once. */
class DeleteRangeCmd implements fc.Command<Model, Memtable> {
  constructor(readonly bounds: RangeBounds) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    for (const [k] of inRange(sortedRows(m.rows), this.bounds)) {
      expect(t.delete(k)).toBe(true)
      m.rows.delete(k)
    }
    check(m, t)
  }
  toString = (): string => `deleteRange(${JSON.stringify(this.bounds)})`
}

class SetAtCmd implements fc.Command<Model, Memtable> {
  constructor(readonly key: string, readonly value: number, readonly exp: number) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    const pos = t.indexOf(this.key)
    expect(pos >= 0).toBe(m.rows.has(this.key))
    if (pos < 0) return
    const version = ++m.version
    t.setAt(pos, this.value, version, this.exp)
    m.rows.set(this.key, [this.key, this.value, version, this.exp])
    check(m, t)
  }
  toString = (): string => `setAt(${JSON.stringify(this.key)}, ${this.value}, exp ${this.exp})`
}

class ClearCmd implements fc.Command<Model, Memtable> {
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    t.clear()
    m.rows.clear()
    check(m, t)
  }
  toString = (): string => 'clear()'
}

class ViewCmd implements fc.Command<Model, Memtable> {
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    const epoch = t.epoch
    const view = t.view()
    expect(t.epoch).toBeGreaterThanOrEqual(epoch)
    const rows = sortedRows(m.rows)
    expectSame(view, rows)
    m.views.push({ view, rows })
  }
  toString = (): string => 'view()'
}

class RangeCmd implements fc.Command<Model, Memtable> {
  constructor(readonly bounds: RangeBounds) {}
  check = (): boolean => true
  run(m: Model, t: Memtable): void {
    expect(read(t, this.bounds)).toEqual(inRange(sortedRows(m.rows), this.bounds))
    const forEach: string[] = []
    t.forEach(this.bounds, (k) => {
      forEach.push(k)
    })
    expect(forEach).toEqual(inRange(sortedRows(m.rows), this.bounds).map((r) => r[0]))
    for (const { view, rows } of m.views) expect(read(view, this.bounds)).toEqual(inRange(rows, this.bounds))
  }
  toString = (): string => `range(${JSON.stringify(this.bounds)})`
}

// Few distinct keys so sets overwrite, deletes hit and ranges land on and between keys.
const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\uffff', '\u{10000}'), maxLength: 3 })
const value = fc.integer({ min: -1000, max: 1000 })
const exp = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 }))
const bounds = fc.record(
  { gt: key, gte: key, lt: key, lte: key, reverse: fc.boolean() },
  { requiredKeys: [] },
)
const commands = [
  fc.tuple(key, value, exp).map(([k, v, e]) => new SetCmd(k, v, e)),
  fc.tuple(key, value, exp).map(([k, v, e]) => new SetCmd(k, v, e)),
  fc.tuple(key, value, exp).map(([k, v, e]) => new SetCmd(k, v, e)),
  fc.array(key, { minLength: 5, maxLength: 30 }).map((ks) => new SetManyCmd(ks)),
  key.map((k) => new DeleteCmd(k)),
  key.map((k) => new DeleteCmd(k)),
  key.map((k) => new DeleteCmd(k)),
  fc.tuple(key, value, exp).map(([k, v, e]) => new SetAtCmd(k, v, e)),
  bounds.map((b) => new RangeCmd(b)),
  bounds.map((b) => new DeleteRangeCmd(b)),
  fc.constant(new ViewCmd()),
  fc.constant(new ClearCmd()),
]

describe('Memtable commands', () => {
  it('matches a Map after every set, delete, setAt, clear, view and range walk', () => {
    fc.assert(
      // 8 and 9: chunks below chunkSize / 4 merge, so merges happen too.
      fc.property(fc.constantFrom(2, 3, 4, 8, 9), fc.commands(commands, { maxCommands: 80 }), (chunkSize, cmds) => {
        const model: Model = { rows: new Map(), version: 0, views: [] }
        fc.modelRun(() => ({ model, real: new Memtable({ chunkSize }) }), cmds)
      }),
      { numRuns: numRuns(500) },
    )
  })
})
