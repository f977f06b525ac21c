// keys(pattern): Redis globs over whole keys, results in UTF-16 code-unit order.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { redisStringMatch } from '../helpers/redis-glob-reference.js'
import { backends } from './backends.js'
import { codeOf, openWithClock, type StoreLike } from './harness.js'

async function fill(s: StoreLike, keys: readonly string[]): Promise<void> {
  await s.batch(keys.map((key) => ({ type: 'set' as const, key, value: 1 })))
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

describe.each(backends)('keys: $name', (backend) => {
  it('matches * and prefixes, in key order', async () => {
    const s = await backend.open()
    await fill(s, ['user:2', 'user:1', 'user:10', 'order:1', 'user', 'users:1', 'xuser:1'])
    expect(await s.keys('user:*')).toEqual(['user:1', 'user:10', 'user:2'])
    expect(await s.keys('user*')).toEqual(['user', 'user:1', 'user:10', 'user:2', 'users:1'])
    expect(await s.keys('*:1')).toEqual(['order:1', 'user:1', 'users:1', 'xuser:1'])
    expect(await s.keys('*user*')).toEqual(['user', 'user:1', 'user:10', 'user:2', 'users:1', 'xuser:1'])
    expect(await s.keys('*')).toEqual(['order:1', 'user', 'user:1', 'user:10', 'user:2', 'users:1', 'xuser:1'])
    expect(await s.keys()).toEqual(await s.keys('*'))
    expect(await s.keys('**')).toEqual(await s.keys('*'))
  })

  it('matches the whole key: a literal pattern is an exact lookup', async () => {
    const s = await backend.open()
    await fill(s, ['user', 'user:1', 'a.b', 'a/b'])
    expect(await s.keys('user')).toEqual(['user'])
    expect(await s.keys('use')).toEqual([])
    expect(await s.keys('a.b')).toEqual(['a.b']) // '.' is not special
    expect(await s.keys('a/*')).toEqual(['a/b']) // neither is '/'
    expect(await s.keys('nothing*')).toEqual([])
  })

  it('? matches exactly one character (a code point, so one emoji)', async () => {
    const s = await backend.open()
    await fill(s, ['a', 'ab', 'abc', '\u{1F600}', 'x\u{1F600}y', 'xy'])
    expect(await s.keys('?')).toEqual(['a', '\u{1F600}'])
    expect(await s.keys('a?')).toEqual(['ab'])
    expect(await s.keys('a??')).toEqual(['abc'])
    expect(await s.keys('x?y')).toEqual(['x\u{1F600}y'])
    expect(await s.keys('x??y')).toEqual([])
  })

  it('[abc], [^a] and [a-z] sets', async () => {
    const s = await backend.open()
    await fill(s, ['hallo', 'hello', 'hillo', 'hxllo', 'hAllo', 'h-llo'])
    expect(await s.keys('h[ae]llo')).toEqual(['hallo', 'hello'])
    expect(await s.keys('h[^e]llo')).toEqual(['h-llo', 'hAllo', 'hallo', 'hillo', 'hxllo'])
    expect(await s.keys('h[a-i]llo')).toEqual(['hallo', 'hello', 'hillo'])
    expect(await s.keys('h[i-a]llo')).toEqual(['hallo', 'hello', 'hillo']) // reversed range
    expect(await s.keys('h[A-Z]llo')).toEqual(['hAllo'])
    expect(await s.keys('h[^a-z]*')).toEqual(['h-llo', 'hAllo'])
  })

  it('\\ escapes make special characters literal', async () => {
    const s = await backend.open()
    await fill(s, ['a*b', 'axb', 'a?b', 'a[b]', 'ab', 'a\\b'])
    expect(await s.keys('a\\*b')).toEqual(['a*b'])
    expect(await s.keys('a\\?b')).toEqual(['a?b'])
    expect(await s.keys('a\\[b\\]')).toEqual(['a[b]'])
    expect(await s.keys('a\\\\b')).toEqual(['a\\b'])
    expect(await s.keys('a\\*')).toEqual([])
    expect(await s.keys('a?b')).toEqual(['a*b', 'a?b', 'a\\b', 'axb'])
  })

  it('orders by UTF-16 code units, not code points or locale', async () => {
    const s = await backend.open()
    const keys = ['b', 'B', 'a', 'a\u0000', 'a\u0001', 'aa', '\uff5e', '\u{1F600}', '\u00e9', 'e\u0301', '10', '9', '\uffff']
    await fill(s, keys)
    const expected = [...keys].sort(byCodeUnits)
    // U+1F600 is stored as the surrogates D83D DE00, which sort before U+FF5E.
    expect(expected.indexOf('\u{1F600}')).toBeLessThan(expected.indexOf('\uff5e'))
    expect(await s.keys()).toEqual(expected)
    expect(await s.keys('a*')).toEqual(['a', 'a\u0000', 'a\u0001', 'aa'])
  })

  it('lists keys of every type, and never expired ones', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('k:plain', 1)
    await s.set('k:soon', 1, { ttl: 100 })
    if (backend.capabilities.lists) await s.rpush('k:list', 1)
    if (backend.capabilities.hashes) await s.hset('k:hash', { f: 1 })
    const all = ['k:plain', 'k:soon']
    if (backend.capabilities.lists) all.push('k:list')
    if (backend.capabilities.hashes) all.push('k:hash')
    expect(await s.keys('k:*')).toEqual(all.sort(byCodeUnits))
    if (backend.capabilities.fakeClock) clock.advance(100)
    else await new Promise((r) => setTimeout(r, 150))
    expect(await s.keys('k:*')).toEqual(all.filter((k) => k !== 'k:soon').sort(byCodeUnits))
    expect(await s.keys('k:soon')).toEqual([])
    expect(await s.keys('k:s?on')).toEqual([])
  })

  it('rejects a non-string pattern with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    for (const bad of [1, null, {}, ['*']]) expect(await codeOf(() => s.keys(bad as never))).toBe('KV_INVALID_ARGUMENT')
  })

  it('agrees with Redis stringmatchlen on random patterns', async () => {
    const s = await backend.open()
    const alphabet = ['a', 'b', 'c', '-', '^', ']', '\u{1F600}']
    const keys = fc.sample(fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 4 }).map((cs) => cs.join('')), { numRuns: 80, seed: 7 })
    const unique = [...new Set(keys)]
    await fill(s, unique)
    const sorted = [...unique].sort(byCodeUnits)
    const patternChar = fc.constantFrom(...alphabet, '*', '?', '[', '\\')
    await fc.assert(
      fc.asyncProperty(fc.array(patternChar, { maxLength: 6 }).map((cs) => cs.join('')), async (pattern) => {
        expect(await s.keys(pattern)).toEqual(sorted.filter((k) => redisStringMatch(pattern, k)))
      }),
      { numRuns: 150, seed: 11 },
    )
  })
})
