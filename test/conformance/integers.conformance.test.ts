// incr / decr: safe-integer counters over numbers and canonical decimal strings.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, dump } from './harness.js'

const MAX = Number.MAX_SAFE_INTEGER
const MIN = Number.MIN_SAFE_INTEGER

describe.each(backends)('integers: $name', (backend) => {
  it('creates a missing counter at 0 and resolves with the result', async () => {
    const s = await backend.open()
    expect(await s.incr('n')).toBe(1)
    expect(await s.incr('n', 41)).toBe(42)
    expect(await s.decr('n')).toBe(41)
    expect(await s.decr('n', 50)).toBe(-9)
    expect(await s.incr('n', -1)).toBe(-10)
    expect(await s.decr('n', -20)).toBe(10)
    expect(await s.incr('n', 0)).toBe(10)
    expect(await s.get('n')).toBe(10)
    expect(await s.type('n')).toBe('number')
    expect(await s.decr('fresh')).toBe(-1)
  })

  it('counts a canonical decimal string as an integer and stores the result as a number', async () => {
    const s = await backend.open()
    for (const [str, n] of [['17', 18], ['-5', -4], ['0', 1], [String(MAX - 1), MAX]] as const) {
      await s.set('s', str)
      expect(await s.incr('s')).toBe(n)
      expect(await s.get('s')).toBe(n)
      expect(await s.type('s')).toBe('number')
    }
  })

  it('reaches the edges of the safe range exactly', async () => {
    const s = await backend.open()
    await s.set('hi', MAX - 1)
    expect(await s.incr('hi')).toBe(MAX)
    await s.set('lo', MIN + 1)
    expect(await s.decr('lo')).toBe(MIN)
    expect(await s.incr('big', MAX)).toBe(MAX)
    expect(await s.decr('small', MAX)).toBe(-MAX)
  })

  it('rejects a result outside the safe range with KV_NOT_INTEGER and changes nothing', async () => {
    const s = await backend.open()
    await s.set('hi', MAX)
    await s.set('lo', MIN)
    const before = await dump(s)
    expect(await codeOf(() => s.incr('hi'))).toBe('KV_NOT_INTEGER')
    expect(await codeOf(() => s.decr('lo'))).toBe('KV_NOT_INTEGER')
    expect(await codeOf(() => s.incr('lo', -1))).toBe('KV_NOT_INTEGER')
    expect(await codeOf(() => s.incr('hi', MAX))).toBe('KV_NOT_INTEGER')
    expect(await dump(s)).toEqual(before)
  })

  it.each([
    ['a fraction', 1.5],
    ['a fractional string', '1.5'],
    ['a word', 'abc'],
    ['a leading zero', '01'],
    ['a leading space', ' 1'],
    ['a plus sign', '+1'],
    ['an exponent', '1e3'],
    ['an empty string', ''],
    ['a string past the safe range', '9007199254740993'],
    ['true', true],
    ['null', null],
    ['an object', { n: 1 }],
    ['an array', [1]],
    ['bytes', new Uint8Array([1])],
  ])('rejects incr of %s with KV_NOT_INTEGER and changes nothing', async (_what, value) => {
    const s = await backend.open()
    await s.set('bad', value)
    const before = await dump(s)
    expect(await codeOf(() => s.incr('bad'))).toBe('KV_NOT_INTEGER')
    expect(await codeOf(() => s.decr('bad'))).toBe('KV_NOT_INTEGER')
    expect(await dump(s)).toEqual(before)
  })

  it('rejects a non-integer amount with KV_INVALID_ARGUMENT and changes nothing', async () => {
    const s = await backend.open()
    await s.set('n', 1)
    for (const by of [1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX + 1, '2', null]) {
      expect([by, await codeOf(() => s.incr('n', by as number))]).toEqual([by, 'KV_INVALID_ARGUMENT'])
      expect([by, await codeOf(() => s.decr('n', by as number))]).toEqual([by, 'KV_INVALID_ARGUMENT'])
    }
    expect(await codeOf(() => s.incr('missing', 0.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await s.get('n')).toBe(1)
    expect(await s.has('missing')).toBe(false)
  })

  it('each incr is a new version of the key', async () => {
    const s = await backend.open()
    await s.incr('n')
    const v1 = (await s.version('n')) as number
    await s.incr('n')
    const v2 = (await s.version('n')) as number
    expect(v2).toBeGreaterThan(v1)
    if (backend.capabilities.versionsAreSeqs) expect(v2).toBe(v1 + 1)
    else expect(Number.isSafeInteger(v2)).toBe(true)
  })
})
