import { describe, expect, it } from 'vitest'
import { lowerBound, upperBound } from '../../src/lower-bound.js'

const arr = ['b', 'd', 'd', 'd', 'f']

describe('lowerBound', () => {
  it('returns the index of the first element >= key', () => {
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => lowerBound(arr, k))).toEqual([0, 0, 1, 1, 4, 4, 5])
  })

  it('returns the first of equal elements', () => {
    expect(lowerBound(arr, 'd')).toBe(1)
  })

  it('returns 0 on an empty array', () => {
    expect(lowerBound([], 'x')).toBe(0)
  })

  it('searches only inside [lo, hi)', () => {
    expect(lowerBound(arr, 'a', 2, 4)).toBe(2)
    expect(lowerBound(arr, 'z', 2, 4)).toBe(4)
    expect(lowerBound(arr, 'd', 3, 5)).toBe(3)
    expect(lowerBound(arr, 'x', 3, 3)).toBe(3)
  })

  it('orders by UTF-16 code units', () => {
    // U+10000 is the surrogate pair D800 DC00, so it sorts before U+FFFF.
    const units = ['A', 'a', '\u{10000}', '\uffff']
    expect(lowerBound(units, 'B')).toBe(1)
    expect(lowerBound(units, '\ue000')).toBe(3)
  })
})

describe('upperBound', () => {
  it('returns the index of the first element > key', () => {
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => upperBound(arr, k))).toEqual([0, 1, 1, 4, 4, 5, 5])
  })

  it('returns 0 on an empty array', () => {
    expect(upperBound([], 'x')).toBe(0)
  })

  it('searches only inside [lo, hi)', () => {
    expect(upperBound(arr, 'd', 0, 2)).toBe(2)
    expect(upperBound(arr, 'a', 1, 3)).toBe(1)
  })

  it('agrees with a linear scan on random sorted arrays', () => {
    let seed = 7
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    for (let round = 0; round < 200; round++) {
      const a = Array.from({ length: rnd(20) }, () => String.fromCharCode(97 + rnd(6))).sort()
      const key = String.fromCharCode(96 + rnd(8))
      const lo = a.findIndex((x) => x >= key)
      const up = a.findIndex((x) => x > key)
      expect(lowerBound(a, key)).toBe(lo === -1 ? a.length : lo)
      expect(upperBound(a, key)).toBe(up === -1 ? a.length : up)
    }
  })
})
