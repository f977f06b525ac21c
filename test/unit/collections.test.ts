import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KvHash, KvList } from '../../src/collections.js'
import { numRuns } from '../helpers/values.js'

/** Redis LRANGE on a plain array: the reference model. */
function lrange(xs: readonly number[], start: number, stop: number): number[] {
  const n = xs.length
  let s = start < 0 ? n + start : start
  let e = stop < 0 ? n + stop : stop
  if (s < 0) s = 0
  if (e >= n) e = n - 1
  if (s > e || s >= n) return []
  return xs.slice(s, e + 1)
}

describe('KvList', () => {
  it('behaves like an array under any sequence of deque operations', () => {
    const opArb = fc.oneof(
      fc.record({ k: fc.constant('pushL' as const), v: fc.integer() }),
      fc.record({ k: fc.constant('pushR' as const), v: fc.integer() }),
      fc.constant({ k: 'popL' as const }),
      fc.constant({ k: 'popR' as const }),
      fc.record({ k: fc.constant('set' as const), i: fc.integer({ min: -40, max: 40 }), v: fc.integer() }),
      fc.record({ k: fc.constant('trim' as const), s: fc.integer({ min: -40, max: 40 }), e: fc.integer({ min: -40, max: 40 }) }),
    )
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 20 }), fc.array(opArb, { maxLength: 200 }), (init, ops) => {
        const list = new KvList(init)
        const model = [...init]
        for (const op of ops) {
          switch (op.k) {
            case 'pushL':
              expect(list.pushLeft(op.v)).toBe(model.unshift(op.v))
              break
            case 'pushR':
              expect(list.pushRight(op.v)).toBe(model.push(op.v))
              break
            case 'popL':
              expect(list.popLeft()).toBe(model.shift())
              break
            case 'popR':
              expect(list.popRight()).toBe(model.pop())
              break
            case 'set': {
              const i = op.i < 0 ? model.length + op.i : op.i
              const ok = i >= 0 && i < model.length
              expect(list.set(op.i, op.v)).toBe(ok)
              if (ok) model[i] = op.v
              break
            }
            case 'trim': {
              const kept = lrange(model, op.s, op.e)
              list.trim(op.s, op.e)
              model.splice(0, model.length, ...kept)
              break
            }
          }
          expect(list.length).toBe(model.length)
        }
        expect([...list]).toEqual(model)
        expect(list.toArray()).toEqual(model)
        for (let i = -model.length - 1; i <= model.length; i++) expect(list.at(i)).toBe(model.at(i))
      }),
      { numRuns: numRuns(200) },
    )
  })

  it('follows LRANGE index rules', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 30 }), fc.integer({ min: -50, max: 50 }), fc.integer({ min: -50, max: 50 }), (xs, s, e) => {
        expect(new KvList(xs).range(s, e)).toEqual(lrange(xs, s, e))
      }),
      { numRuns: numRuns(300) },
    )
    const l = new KvList(['a', 'b', 'c'])
    expect(l.range(0, -1)).toEqual(['a', 'b', 'c'])
    expect(l.range(-100, 100)).toEqual(['a', 'b', 'c'])
    expect(l.range(2, 1)).toEqual([])
    expect(l.range(5, 10)).toEqual([])
  })

  it('pushes a million times at the head in amortised constant time', () => {
    const l = new KvList()
    const t = performance.now()
    for (let i = 0; i < 1_000_000; i++) l.pushLeft(i)
    expect(performance.now() - t).toBeLessThan(1000)
    expect(l.at(0)).toBe(999_999)
    expect(l.at(-1)).toBe(0)
  })

  it('clones independently and carries the epoch', () => {
    const a = new KvList([1, 2], 3)
    const b = a.clone(4)
    b.pushRight(3)
    expect(a.toArray()).toEqual([1, 2])
    expect(b.toArray()).toEqual([1, 2, 3])
    expect(a.epoch).toBe(3)
    expect(b.epoch).toBe(4)
    expect(a.clone().epoch).toBe(3)
  })

  it('returns undefined when popping an empty list', () => {
    const l = new KvList()
    expect(l.popLeft()).toBeUndefined()
    expect(l.popRight()).toBeUndefined()
    expect(l.length).toBe(0)
  })
})

describe('KvHash', () => {
  it('treats __proto__ and constructor as ordinary fields', () => {
    const h = new KvHash()
    expect(h.set('__proto__', 1)).toBe(true)
    expect(h.set('constructor', 2)).toBe(true)
    expect(h.get('__proto__')).toBe(1)
    expect(h.has('toString')).toBe(false)
    expect([...h.keys()]).toEqual(['__proto__', 'constructor'])
  })

  it('reports new fields and deletions', () => {
    const h = new KvHash([['a', 1]])
    expect(h.set('a', 2)).toBe(false)
    expect(h.set('b', 3)).toBe(true)
    expect(h.delete('a')).toBe(true)
    expect(h.delete('a')).toBe(false)
    expect(h.size).toBe(1)
    expect([...h]).toEqual([['b', 3]])
    expect([...h.values()]).toEqual([3])
  })

  it('clones independently, keeping field order and the epoch', () => {
    const a = new KvHash([['x', 1], ['y', 2]], 7)
    const b = a.clone(8)
    b.set('z', 3)
    b.delete('x')
    expect([...a.entries()]).toEqual([['x', 1], ['y', 2]])
    expect([...b.entries()]).toEqual([['y', 2], ['z', 3]])
    expect([a.epoch, b.epoch]).toEqual([7, 8])
  })
})
