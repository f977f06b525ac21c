import { describe, expect, it } from 'vitest'
import { jsonText } from '../../src/codec/json-text.js'

describe('jsonText', () => {
  it('reuses the text of the same frozen value and recomputes for another', () => {
    const a = Object.freeze({ x: 1 })
    const b = Object.freeze([1, 2])
    expect(jsonText(a)).toBe('{"x":1}')
    expect(jsonText(a)).toBe('{"x":1}')
    expect(jsonText(b)).toBe('[1,2]')
    expect(jsonText(a)).toBe('{"x":1}')
  })

  it('never caches a value that could still change', () => {
    const m: { x: number } = { x: 1 }
    expect(jsonText(m)).toBe('{"x":1}')
    m.x = 2
    expect(jsonText(m)).toBe('{"x":2}')
  })
})
