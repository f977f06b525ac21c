import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compileGlob } from '../../src/glob.js'
import { redisStringMatch } from '../helpers/redis-glob-reference.js'

const NUM_RUNS = Number.parseInt(process.env['FC_NUM_RUNS'] ?? '', 10) || 5000

/** [pattern, key, matches] — each also checked against the Redis port. */
const REDIS_CASES: readonly (readonly [string, string, boolean])[] = [
  ['*', 'anything', true],
  ['*', 'a\nb', true],
  ['**', 'x', true],
  ['user:*', 'user:1', true],
  ['user:*', 'user:', true],
  ['user:*', 'user', false],
  ['user:*', 'xuser:1', false],
  ['h?llo', 'hello', true],
  ['h?llo', 'hallo', true],
  ['h?llo', 'hllo', false],
  ['h?llo', 'heello', false],
  ['h*llo', 'hllo', true],
  ['h*llo', 'heeeello', true],
  ['h*llo', 'hello!', false],
  ['h[ae]llo', 'hello', true],
  ['h[ae]llo', 'hallo', true],
  ['h[ae]llo', 'hillo', false],
  ['h[^e]llo', 'hallo', true],
  ['h[^e]llo', 'hello', false],
  ['h[^e]llo', 'hllo', false],
  ['h[a-b]llo', 'hbllo', true],
  ['h[a-b]llo', 'hcllo', false],
  ['[z-a]', 'm', true],
  ['[z-a]', 'A', false],
  ['[a-cx-z]', 'y', true],
  ['[a-cx-z]', 'd', false],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a\\?', 'a?', true],
  ['a\\?', 'ab', false],
  ['\\[a]', '[a]', true],
  ['[\\]]', ']', true],
  ['[\\-]', '-', true],
  ['[a\\-z]', '-', true],
  ['[a\\-z]', 'b', false],
  ['[\\^a]', '^', true],
  ['[a^]', '^', true],
  ['a/b/*', 'a/b/c/d', true],
  ['a?b', 'a/b', true],
  ['a?b', 'a\nb', true],
  ['a*b', 'a\n\nb', true],
  ['A', 'a', false],
  ['a**b', 'ab', true],
  ['a*', 'a', true],
  ['*a', 'a', true],
  ['*a*', 'bab', true],
  ['*a*b*c', 'xaybzc', true],
  ['*a*b*c', 'xaybzcz', false],
  ['*a*a*a*a*b', 'aaaaaaaa', false],
  ['?*?', 'ab', true],
  ['?*?', 'a', false],
  ['ab*b', 'ab', false],
  ['ab*b', 'abb', true],
  ['a?*?b', 'axb', false],
  ['*ab*b', 'ab', false],
  ['*ab*b', 'abb', true],
  ['*a?*?b', 'axb', false],
  ['*a?*?b', 'axyb', true],
  // An unclosed bracket runs to the end of the pattern.
  ['[abc', 'b', true],
  ['[abc', 'bc', false],
  ['x[abc', 'xc', true],
  ['[a-', 'a', true],
  ['[a-', '-', true],
  ['[', '[', false],
  ['[^', 'q', true],
  ['[^a', 'a', false],
  // `]` right after `[` closes an empty set; `-` before the last two characters is a range.
  ['[]', ']', false],
  ['[]a', ']a', false],
  ['[^]a', 'xa', true],
  ['[a-]', ']', true],
  ['[a-]', '_', true],
  ['[a-]', '-', false],
  ['[a-]]', 'a', true],
  ['[a-]]', 'a]', false],
  ['[-a]', '-', true],
  ['[]-a]', '-a]', false],
  // A trailing backslash is literal, outside and inside a set.
  ['\\', '\\', true],
  ['ab\\', 'ab\\', true],
  ['[\\', '\\', true],
  // Code points, not bytes.
  ['?', '😀', true],
  ['??', '😀', false],
  ['[😀-😂]', '😁', true],
  ['[😀-😂]', '😃', false],
  ['a?c', 'a\u00e9c', true],
]

describe('compileGlob', () => {
  it.each(REDIS_CASES)('matches %j against %j as Redis does (%s)', (pattern, key, expected) => {
    expect(compileGlob(pattern).match(key)).toBe(expected)
    expect(redisStringMatch(pattern, key)).toBe(expected)
  })

  it('matches the empty key only with an empty or all-star pattern', () => {
    expect(compileGlob('').match('')).toBe(true)
    expect(compileGlob('*').match('')).toBe(true)
    expect(compileGlob('**').match('')).toBe(true)
    expect(compileGlob('?').match('')).toBe(false)
    expect(compileGlob('*?').match('')).toBe(false)
    expect(compileGlob('').match('a')).toBe(false)
  })

  it('treats lone surrogates as code points of their own', () => {
    expect(compileGlob('\ud83d\\\ude00').match('😀')).toBe(false)
    expect(compileGlob('?').match('\ud83d')).toBe(true)
    expect(compileGlob('??').match('\ud83d\ud83d')).toBe(true)
    expect(compileGlob('\ud83d*').match('😀')).toBe(false)
    expect(compileGlob('*\ude00').match('😀')).toBe(false)
    expect(compileGlob('*\ude00').match('a\ude00')).toBe(true)
  })

  it('reports the literal prefix with escapes resolved', () => {
    expect(compileGlob('user:*').prefix).toBe('user:')
    expect(compileGlob('user\\*:*').prefix).toBe('user*:')
    expect(compileGlob('user[:]*').prefix).toBe('user:')
    expect(compileGlob('ab?c*').prefix).toBe('ab')
    expect(compileGlob('a[bc]').prefix).toBe('a')
    expect(compileGlob('abc').prefix).toBe('abc')
    expect(compileGlob('*abc').prefix).toBe('')
    expect(compileGlob('?abc').prefix).toBe('')
    expect(compileGlob('[^a]').prefix).toBe('')
    expect(compileGlob('😀:*').prefix).toBe('😀:')
  })

  it('reports the one key a wildcard-free pattern matches', () => {
    expect(compileGlob('abc').literal).toBe('abc')
    expect(compileGlob('a\\*').literal).toBe('a*')
    expect(compileGlob('[a]b[c-c]').literal).toBe('abc')
    expect(compileGlob('\\').literal).toBe('\\')
    expect(compileGlob('').literal).toBe('')
    expect(compileGlob('a*').literal).toBeUndefined()
    expect(compileGlob('a?').literal).toBeUndefined()
    expect(compileGlob('a[bc]').literal).toBeUndefined()
    expect(compileGlob('[]').literal).toBeUndefined()
  })

  it('flags exactly the all-star patterns as matching everything', () => {
    expect(compileGlob('*').matchesAll).toBe(true)
    expect(compileGlob('***').matchesAll).toBe(true)
    expect(compileGlob('*?').matchesAll).toBe(false)
    expect(compileGlob('\\*').matchesAll).toBe(false)
    expect(compileGlob('').matchesAll).toBe(false)
    expect(compileGlob('a*').matchesAll).toBe(false)
  })

  it('keeps the source pattern', () => {
    expect(compileGlob('a[b').pattern).toBe('a[b')
  })

  it('rejects a pattern that is not a string with a TypeError', () => {
    expect(() => compileGlob(42 as unknown as string)).toThrow(TypeError)
  })

  it('stays fast on patterns that make backtracking engines explode', () => {
    const key = 'a'.repeat(100_000)
    const evil = ['*a*a*a*a*a*a*a*a*b', '*a*a*a*a*a*a*a*a*?b', '*?*?*?*?*?*?*?*b*a', '*[ab]*[ab]*[ab]*[ab]*c*a', `${'a*'.repeat(30)}c`]
    const started = performance.now()
    for (const pattern of evil) expect(compileGlob(pattern).match(key)).toBe(false)
    expect(compileGlob('*a*a*a*a*a*a*a*a*a').match(key)).toBe(true)
    expect(performance.now() - started).toBeLessThan(500)
  })
})

const KEY_UNITS = ['a', 'b', 'c', '/', '-', '[', ']', '^', '\\', '*', '?', '\n', '😀'] as const

const patternUnit = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('*', '?', '[', ']', '^', '-', '\\') },
  { weight: 3, arbitrary: fc.constantFrom('a', 'b', 'c', '/') },
  { weight: 1, arbitrary: fc.constant('😀') },
)
// Few specials but many stars: stresses how star-free segments are placed.
const starHeavyUnit = fc.constantFrom('*', '*', '?', 'a', 'b', 'b')
const patternArb = fc.oneof(
  fc.string({ unit: patternUnit, maxLength: 12 }),
  fc.string({ unit: starHeavyUnit, maxLength: 12 }),
)
const keyUnit = fc.constantFrom(...KEY_UNITS)
const randomKey = fc.string({ unit: keyUnit, minLength: 1, maxLength: 10 })

/** A key shaped after `pattern` (wildcards filled in), so that many of them match. */
function keyLike(pattern: string): fc.Arbitrary<string> {
  const parts = Array.from(pattern, (ch): fc.Arbitrary<string> => {
    if (ch === '*') return fc.string({ unit: keyUnit, maxLength: 3 })
    if (ch === '?') return keyUnit
    return fc.oneof({ weight: 4, arbitrary: fc.constant(ch) }, { weight: 1, arbitrary: fc.constant('') }, keyUnit)
  })
  // Store keys are non-empty, and Redis and this matcher differ on '' by design.
  return fc.tuple(...parts).map((chunks) => chunks.join('') || 'a')
}

const patternAndKey = patternArb.chain((pattern) =>
  fc.tuple(fc.constant(pattern), fc.oneof(randomKey, keyLike(pattern), keyLike(pattern))),
)

describe('compileGlob against a port of Redis stringmatchlen', () => {
  it('agrees with the reference on random patterns and non-empty keys', () => {
    let matched = 0
    fc.assert(
      fc.property(patternAndKey, ([pattern, key]) => {
        const actual = compileGlob(pattern).match(key)
        if (actual) matched++
        expect(actual).toBe(redisStringMatch(pattern, key))
      }),
      { numRuns: NUM_RUNS },
    )
    // Guard against a generator that only ever tests non-matches.
    if (NUM_RUNS >= 1000) expect(matched).toBeGreaterThan(NUM_RUNS / 20)
  })

  it('only matches keys that start with the computed prefix', () => {
    let matched = 0
    fc.assert(
      fc.property(patternAndKey, ([pattern, key]) => {
        const glob = compileGlob(pattern)
        if (!glob.match(key)) return
        matched++
        expect(key.startsWith(glob.prefix)).toBe(true)
        if (glob.literal !== undefined) expect(key).toBe(glob.literal)
      }),
      { numRuns: NUM_RUNS },
    )
    if (NUM_RUNS >= 1000) expect(matched).toBeGreaterThan(NUM_RUNS / 20)
  })

  it('matches every key when matchesAll, and only the literal when literal is set', () => {
    fc.assert(
      fc.property(patternAndKey, ([pattern, key]) => {
        const glob = compileGlob(pattern)
        if (glob.matchesAll) expect(glob.match(key)).toBe(true)
        if (glob.literal !== undefined) expect(glob.match(key)).toBe(key === glob.literal)
        if (glob.literal !== undefined) expect(glob.match(glob.literal)).toBe(true)
      }),
      { numRuns: NUM_RUNS },
    )
  })
})
