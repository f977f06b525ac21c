// compileGlob: what mutation testing found unpinned by glob.test.ts — the exact edges of
// the surrogate range, an escape at the very end of an unclosed set, sets that reach one
// end of the code point range without covering it, duplicate set members, lone high
// surrogates in keys before a `?` tail, and the TypeError message.
import { describe, expect, it } from 'vitest'
import { compileGlob } from '../../src/glob.js'
import { redisStringMatch } from '../helpers/redis-glob-reference.js'

describe('compileGlob edges', () => {
  it('a lone surrogate at either end of the surrogate range ends the literal prefix', () => {
    expect(compileGlob('a\ud800*').prefix).toBe('a')
    expect(compileGlob('a\udfff*').prefix).toBe('a')
    expect(compileGlob('a\ud7ff*').prefix).toBe('a\ud7ff')
    expect(compileGlob('a\ue000*').prefix).toBe('a\ue000')
    expect(compileGlob('a\ud800').literal).toBeUndefined()
    expect(compileGlob('a\udfff').literal).toBeUndefined()
  })

  it('an escape that ends an unclosed set is a member: [\\] holds "]"', () => {
    for (const [key, expected] of [
      [']', true],
      ['\\', false],
    ] as const) {
      expect(compileGlob('[\\]').match(key)).toBe(expected)
      expect(redisStringMatch('[\\]', key)).toBe(expected)
    }
  })

  it('a set reaching one end of the code point range does not match everything', () => {
    const upper = compileGlob('[b-\u{10ffff}]')
    expect(upper.match('a')).toBe(false)
    expect(upper.match('b')).toBe(true)
    expect(upper.match('\u{10ffff}')).toBe(true)
    const lower = compileGlob('[\u0000-a]')
    expect(lower.match('a')).toBe(true)
    expect(lower.match('\u0000')).toBe(true)
    expect(lower.match('b')).toBe(false)
    // Covering it all is the same as `?`; its complement matches nothing.
    expect(compileGlob('[\u0000-\u{10ffff}]').match('😀')).toBe(true)
    expect(compileGlob('[^\u0000-\u{10ffff}]').match('x')).toBe(false)
  })

  it('a set that repeats its one member is a literal', () => {
    expect(compileGlob('[xx]y*').prefix).toBe('xy')
    expect(compileGlob('[xx]').literal).toBe('x')
    expect(compileGlob('[x-xx]').literal).toBe('x')
    expect(compileGlob('[a-cc-e]').match('d')).toBe(true)
  })

  it('a `?` tail takes a lone high surrogate in the key as one code point', () => {
    expect(compileGlob('a*?').match('a\ud800x')).toBe(true)
    expect(compileGlob('a*?').match('a\ud800')).toBe(true)
    expect(compileGlob('a*??').match('a\ud800x')).toBe(true)
    expect(compileGlob('a*[x]').match('a\ud800x')).toBe(true)
    expect(compileGlob('a*?').match('a😀')).toBe(true)
    expect(compileGlob('a*??').match('a😀')).toBe(false)
  })

  it('says why a non-string pattern is refused', () => {
    expect(() => compileGlob(1 as unknown as string)).toThrow(new TypeError('glob pattern must be a string'))
  })
})
