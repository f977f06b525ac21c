// get / set / delete / has / type / count / clear, value immutability and set options.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { deepFrozen, openWithClock } from './harness.js'

describe.each(backends)('basics: $name', (backend) => {
  it('reads a missing key as undefined / false / -2, never as an error', async () => {
    const s = await backend.open()
    expect(await s.get('nope')).toBeUndefined()
    expect(await s.getEntry('nope')).toBeUndefined()
    expect(await s.version('nope')).toBeUndefined()
    expect(await s.has('nope')).toBe(false)
    expect(await s.type('nope')).toBeUndefined()
    expect(await s.ttl('nope')).toBe(-2)
    expect(await s.delete('nope')).toBe(false)
    expect(await s.count()).toBe(0)
    expect(await s.keys()).toEqual([])
  })

  it('stores and returns every kind of value exactly', async () => {
    const s = await backend.open()
    const values: [string, unknown, string][] = [
      ['str', 'Alice', 'string'],
      ['empty', '', 'string'],
      ['unicode', 'héllo \u{1F600} \u0000 end', 'string'],
      ['int', 42, 'number'],
      ['negzero', -0, 'number'],
      ['float', -1.5e-300, 'number'],
      ['max', Number.MAX_VALUE, 'number'],
      ['t', true, 'boolean'],
      ['f', false, 'boolean'],
      ['nul', null, 'null'],
      ['obj', { a: [1, { b: 'c' }], n: null, e: {} }, 'json'],
      ['arr', [1, 'two', [3], { four: 4 }], 'json'],
      ['emptyarr', [], 'json'],
      ['bytes', new Uint8Array([0, 1, 255]), 'bytes'],
      ['nobytes', new Uint8Array(0), 'bytes'],
    ]
    for (const [k, v] of values) expect(await s.set(k, v)).toBe(true)
    for (const [k, v, type] of values) {
      expect(await s.get(k)).toEqual(v)
      expect(await s.type(k)).toBe(type)
      expect(await s.has(k)).toBe(true)
    }
    expect(Object.is(await s.get('negzero'), -0)).toBe(true)
    expect(await s.count()).toBe(values.length)
  })

  it('keeps __proto__ and constructor as ordinary keys and object fields', async () => {
    const s = await backend.open()
    const obj = JSON.parse('{"__proto__": {"x": 1}, "constructor": 2}') as object
    await s.set('__proto__', obj)
    await s.set('constructor', 'c')
    const got = (await s.get('__proto__')) as Record<string, unknown>
    expect(Object.keys(got).sort()).toEqual(['__proto__', 'constructor'])
    expect(Object.getOwnPropertyDescriptor(got, '__proto__')?.value).toEqual({ x: 1 })
    expect(await s.get('constructor')).toBe('c')
    expect(await s.keys()).toEqual(['__proto__', 'constructor'])
  })

  it('freezes stored objects deeply and never lets the caller change a stored value', async () => {
    const s = await backend.open()
    const obj = { n: [1, 2], inner: { deep: [{ x: 1 }] } }
    await s.set('o', obj)
    obj.n.push(3)
    obj.inner.deep[0]!.x = 99
    const got = (await s.get('o')) as typeof obj
    expect(got).toEqual({ n: [1, 2], inner: { deep: [{ x: 1 }] } })
    expect(deepFrozen(got)).toBe(true)
    expect(() => got.n.push(4)).toThrow(TypeError)
    expect(() => {
      ;(got.inner.deep[0] as { x: number }).x = 5
    }).toThrow(TypeError)
    expect(await s.get('o')).toEqual({ n: [1, 2], inner: { deep: [{ x: 1 }] } })
    expect(deepFrozen((await s.getEntry('o'))?.value)).toBe(true)
  })

  it('copies byte arrays in and out', async () => {
    const s = await backend.open()
    const bytes = new Uint8Array([1, 2, 3])
    await s.set('b', bytes)
    bytes[0] = 9
    const first = (await s.get('b')) as Uint8Array
    expect(first).toBeInstanceOf(Uint8Array)
    expect([...first]).toEqual([1, 2, 3])
    first[1] = 9
    const second = (await s.get('b')) as Uint8Array
    expect([...second]).toEqual([1, 2, 3])
    expect(second).not.toBe(first)
    const entry = (await s.getEntry('b'))?.value as Uint8Array
    entry[2] = 9
    expect([...((await s.get('b')) as Uint8Array)]).toEqual([1, 2, 3])
    // A Buffer (a view on a shared pool) goes in as its own bytes only.
    const pooled = Buffer.from('xyz')
    await s.set('buf', pooled)
    pooled[0] = 0x41
    expect([...((await s.get('buf')) as Uint8Array)]).toEqual([0x78, 0x79, 0x7a])
  })

  it('set replaces whatever the key held, of any type', async () => {
    const s = await backend.open()
    await s.set('k', 'one')
    await s.set('k', { two: 2 })
    expect(await s.get('k')).toEqual({ two: 2 })
    await s.set('k', new Uint8Array([7]))
    expect(await s.type('k')).toBe('bytes')
    await s.set('k', null)
    expect(await s.type('k')).toBe('null')
    expect(await s.get('k')).toBeNull()
    expect(await s.has('k')).toBe(true)
    expect(await s.count()).toBe(1)
  })

  it('delete reports whether the key existed and removes it from every read', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.set('b', 2)
    expect(await s.delete('a')).toBe(true)
    expect(await s.delete('a')).toBe(false)
    expect(await s.get('a')).toBeUndefined()
    expect(await s.has('a')).toBe(false)
    expect(await s.keys()).toEqual(['b'])
    expect(await s.count()).toBe(1)
  })

  it('count counts live keys; clear removes them all', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    await s.set('b', 'x')
    await s.set('c', null)
    expect(await s.count()).toBe(3)
    await s.set('a', 2) // overwrite: no new key
    expect(await s.count()).toBe(3)
    await s.clear()
    expect(await s.count()).toBe(0)
    expect(await s.keys()).toEqual([])
    expect(await s.has('a')).toBe(false)
    expect(await s.get('c')).toBeUndefined()
    await s.set('after', 1)
    expect(await s.keys()).toEqual(['after'])
    await s.clear()
    await s.clear() // clearing an empty store is fine
    expect(await s.count()).toBe(0)
  })

  it('getEntry gives value and version, and expiresAt only for keys with an expiry', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('plain', 1)
    await s.set('ttl', 2, { ttl: 5000 })
    const plain = await s.getEntry('plain')
    expect(plain?.value).toBe(1)
    expect(Number.isSafeInteger(plain?.version) && (plain?.version ?? 0) > 0).toBe(true)
    expect(plain !== undefined && 'expiresAt' in plain).toBe(false)
    const ttl = await s.getEntry('ttl')
    expect(ttl?.value).toBe(2)
    expect(ttl?.version).toBeGreaterThan(plain?.version ?? Infinity)
    if (backend.capabilities.fakeClock) expect(ttl?.expiresAt).toBe(clock.now() + 5000)
    else expect(ttl?.expiresAt).toBeGreaterThan(Date.now())
    expect(await s.version('plain')).toBe(plain?.version)
    expect(await s.version('ttl')).toBe(ttl?.version)
  })

  it('applies writes in call order without awaiting, and a write is visible as soon as it is issued', async () => {
    const s = await backend.open()
    const pending = [s.set('k', 1), s.set('k', 2), s.delete('k'), s.set('k', 3)]
    const read = s.get('k')
    const results = await Promise.all(pending)
    expect(results).toEqual([true, true, true, true])
    expect(await read).toBe(3)
    const incrs = Array.from({ length: 20 }, () => s.incr('n'))
    expect(await Promise.all(incrs)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    expect(await s.get('n')).toBe(20)
  })

  describe('set options', () => {
    it('ifNotExists sets only a missing key (Redis NX)', async () => {
      const s = await backend.open()
      expect(await s.set('k', 1, { ifNotExists: true })).toBe(true)
      expect(await s.set('k', 2, { ifNotExists: true })).toBe(false)
      expect(await s.get('k')).toBe(1)
      await s.set('nul', null)
      expect(await s.set('nul', 'x', { ifNotExists: true })).toBe(false) // null is a value, not absence
      expect(await s.get('nul')).toBeNull()
      await s.delete('k')
      expect(await s.set('k', 3, { ifNotExists: true })).toBe(true)
      expect(await s.get('k')).toBe(3)
    })

    it('ifExists sets only an existing key (Redis XX)', async () => {
      const s = await backend.open()
      expect(await s.set('k', 1, { ifExists: true })).toBe(false)
      expect(await s.has('k')).toBe(false)
      await s.set('k', 1)
      expect(await s.set('k', 2, { ifExists: true })).toBe(true)
      expect(await s.get('k')).toBe(2)
    })

    it('a refused NX/XX set changes nothing, not even the version', async () => {
      const s = await backend.open()
      await s.set('k', 1)
      const v = await s.version('k')
      expect(await s.set('k', 2, { ifNotExists: true })).toBe(false)
      expect(await s.set('m', 2, { ifExists: true })).toBe(false)
      expect(await s.version('k')).toBe(v)
      expect(await s.keys()).toEqual(['k'])
    })

    it('keepTtl keeps the current expiry; a plain set clears it (Redis KEEPTTL)', async () => {
      const { store: s } = await openWithClock(backend)
      await s.set('k', 1, { ttl: 60_000 })
      const at = (await s.getEntry('k'))?.expiresAt
      expect(at).toBeGreaterThan(0)
      await s.set('k', 2, { keepTtl: true })
      expect(await s.getEntry('k')).toMatchObject({ value: 2, expiresAt: at })
      await s.set('k', 3)
      expect(await s.ttl('k')).toBe(-1)
      expect(await s.getEntry('k')).not.toHaveProperty('expiresAt')
      // keepTtl on a key without expiry, or a missing key, gives no expiry.
      await s.set('k', 4, { keepTtl: true })
      await s.set('new', 1, { keepTtl: true })
      expect(await s.ttl('k')).toBe(-1)
      expect(await s.ttl('new')).toBe(-1)
    })
  })
})
