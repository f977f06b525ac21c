// scan(): ordered ranges with bounds, prefix, reverse and limit over a point-in-time view.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, collect, fillInBatches, openWithClock, scanKeys, type StoreLike } from './harness.js'

const pad = (i: number): string => `k${String(i).padStart(2, '0')}`

async function twenty(s: StoreLike): Promise<void> {
  await s.batch([
    ...Array.from({ length: 20 }, (_, i) => ({ type: 'set' as const, key: pad(i), value: i })),
    { type: 'set' as const, key: 'j', value: -1 },
    { type: 'set' as const, key: 'other', value: -2 },
  ])
}

describe.each(backends)('scan: $name', (backend) => {
  it('walks everything in key order with values', async () => {
    const s = await backend.open()
    await s.batch([
      { type: 'set', key: 'b', value: 2 },
      { type: 'set', key: 'a', value: { x: 1 } },
      { type: 'set', key: 'c', value: 'three' },
    ])
    expect(await collect(s.scan())).toEqual([
      ['a', { x: 1 }],
      ['b', 2],
      ['c', 'three'],
    ])
    expect(await collect(s.scan({ reverse: true }))).toEqual([
      ['c', 'three'],
      ['b', 2],
      ['a', { x: 1 }],
    ])
  })

  it('honours gt, gte, lt and lte, alone and together', async () => {
    const s = await backend.open()
    await twenty(s)
    expect(await scanKeys(s, { gte: 'k05', lt: 'k08' })).toEqual(['k05', 'k06', 'k07'])
    expect(await scanKeys(s, { gt: 'k05', lte: 'k08' })).toEqual(['k06', 'k07', 'k08'])
    expect(await scanKeys(s, { gt: 'k05', lt: 'k06' })).toEqual([])
    expect(await scanKeys(s, { gte: 'k05', lte: 'k05' })).toEqual(['k05'])
    expect(await scanKeys(s, { gte: 'k18' })).toEqual(['k18', 'k19', 'other'])
    expect(await scanKeys(s, { gt: 'k18' })).toEqual(['k19', 'other'])
    expect(await scanKeys(s, { lt: 'k01' })).toEqual(['j', 'k00'])
    expect(await scanKeys(s, { lte: 'k01' })).toEqual(['j', 'k00', 'k01'])
    // Bounds between keys, and bounds that are not keys at all.
    expect(await scanKeys(s, { gt: 'k05x', lt: 'k07x' })).toEqual(['k06', 'k07'])
    expect(await scanKeys(s, { gte: 'zzz' })).toEqual([])
    expect(await scanKeys(s, { lt: 'a' })).toEqual([])
    // An empty (inverted) range.
    expect(await scanKeys(s, { gte: 'k10', lt: 'k05' })).toEqual([])
    // When both a strict and an inclusive bound are given, both hold.
    expect(await scanKeys(s, { gte: 'k03', gt: 'k03', lt: 'k06', lte: 'k04' })).toEqual(['k04'])
  })

  it('honours prefix, alone and with bounds', async () => {
    const s = await backend.open()
    await twenty(s)
    expect(await scanKeys(s, { prefix: 'k1' })).toEqual(['k10', 'k11', 'k12', 'k13', 'k14', 'k15', 'k16', 'k17', 'k18', 'k19'])
    expect(await scanKeys(s, { prefix: 'k', gte: 'k18' })).toEqual(['k18', 'k19'])
    expect(await scanKeys(s, { prefix: 'k', gt: 'k18' })).toEqual(['k19'])
    expect(await scanKeys(s, { prefix: 'k0', lt: 'k03' })).toEqual(['k00', 'k01', 'k02'])
    expect(await scanKeys(s, { prefix: 'k0', lte: 'k03' })).toEqual(['k00', 'k01', 'k02', 'k03'])
    expect(await scanKeys(s, { prefix: 'k0', gte: 'a', lte: 'z' })).toHaveLength(10) // wider bounds do not widen the prefix
    expect(await scanKeys(s, { prefix: 'k1', lt: 'k0' })).toEqual([])
    expect(await scanKeys(s, { prefix: 'nope' })).toEqual([])
    expect(await scanKeys(s, { prefix: 'k00' })).toEqual(['k00']) // the prefix itself is in range
    expect(await scanKeys(s, { prefix: '' })).toHaveLength(22)
  })

  it('handles prefixes at the top of the code-unit range', async () => {
    const s = await backend.open()
    const keys = ['\ufffe', '\ufffez', '\uffff', '\uffff\uffff', '\uffffa', 'z']
    await s.batch(keys.map((key) => ({ type: 'set' as const, key, value: key })))
    expect(await scanKeys(s, { prefix: '\uffff' })).toEqual(['\uffff', '\uffffa', '\uffff\uffff'])
    expect(await scanKeys(s, { prefix: '\ufffe' })).toEqual(['\ufffe', '\ufffez'])
    expect(await scanKeys(s, { prefix: '\uffff\uffff' })).toEqual(['\uffff\uffff'])
    expect(await scanKeys(s, { prefix: '\uffff', reverse: true })).toEqual(['\uffff\uffff', '\uffffa', '\uffff'])
  })

  it('reverses any range, and limits from the start of the walk', async () => {
    const s = await backend.open()
    await twenty(s)
    expect(await scanKeys(s, { prefix: 'k0', reverse: true, limit: 2 })).toEqual(['k09', 'k08'])
    expect(await scanKeys(s, { gte: 'k05', lt: 'k08', reverse: true })).toEqual(['k07', 'k06', 'k05'])
    expect(await scanKeys(s, { gt: 'k05', lte: 'k08', reverse: true })).toEqual(['k08', 'k07', 'k06'])
    expect(await scanKeys(s, { prefix: 'k1', limit: 3 })).toEqual(['k10', 'k11', 'k12'])
    expect(await scanKeys(s, { limit: 0 })).toEqual([])
    expect(await scanKeys(s, { limit: 1 })).toEqual(['j'])
    expect(await scanKeys(s, { limit: 1000 })).toHaveLength(22)
    expect(await scanKeys(s, { reverse: false, limit: 2 })).toEqual(['j', 'k00'])
  })

  it('sees a point-in-time view: writes made while iterating are not seen', async () => {
    const s = await backend.open()
    await fillInBatches(s, backend, Array.from({ length: 200 }, (_, i) => ({ type: 'set' as const, key: `k${String(i).padStart(3, '0')}`, value: i })))
    const it = s.scan()
    const first = await it.next()
    expect(first).toEqual({ done: false, value: ['k000', 0] })
    // While the scan is open: delete, overwrite and insert ahead of it, then clear.
    await s.delete('k100')
    await s.set('k150', 'changed')
    await s.set('k100a', 'new')
    await s.set('k199', 'changed too')
    const rest = await collect(it)
    expect(rest).toHaveLength(199)
    expect(rest.map(([k]) => k)).not.toContain('k100a')
    expect(rest.find(([k]) => k === 'k100')).toEqual(['k100', 100])
    expect(rest.find(([k]) => k === 'k150')).toEqual(['k150', 150])
    expect(rest.at(-1)).toEqual(['k199', 199])
    // A scan started now sees the new state.
    const now = await collect(s.scan({ gte: 'k100', lte: 'k101' }))
    expect(now).toEqual([
      ['k100a', 'new'],
      ['k101', 101],
    ])
  })

  it('is not disturbed by clear() during iteration', async () => {
    const s = await backend.open()
    await s.batch(Array.from({ length: 50 }, (_, i) => ({ type: 'set' as const, key: `k${String(i).padStart(2, '0')}`, value: i })))
    const seen: string[] = []
    for await (const [k] of s.scan()) {
      seen.push(k)
      if (seen.length === 5) await s.clear()
    }
    expect(seen).toHaveLength(50)
    expect(await s.count()).toBe(0)
  })

  it('skips expired keys', async () => {
    const { store: s, clock } = await openWithClock(backend)
    await s.set('a', 1)
    await s.set('b', 2, { ttl: 100 })
    await s.set('c', 3, { ttl: 10_000 })
    if (backend.capabilities.fakeClock) clock.advance(100)
    else await new Promise((r) => setTimeout(r, 150))
    expect(await scanKeys(s)).toEqual(['a', 'c'])
    expect(await scanKeys(s, { reverse: true })).toEqual(['c', 'a'])
    expect(await scanKeys(s, { gt: 'a', limit: 1 })).toEqual(['c']) // the limit counts only what is yielded
  })

  it('hands out values that cannot change what is stored', async () => {
    const s = await backend.open()
    await s.set('b', new Uint8Array([1, 2]))
    await s.set('o', { n: [1] })
    const [[, bytes], [, obj]] = (await collect(s.scan())) as [[string, Uint8Array], [string, { n: number[] }]]
    bytes[0] = 9
    expect(() => obj.n.push(2)).toThrow(TypeError)
    expect([...((await s.get('b')) as Uint8Array)]).toEqual([1, 2])
    expect(await s.get('o')).toEqual({ n: [1] })
  })

  it('rejects bad options with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    await s.set('a', 1)
    const bad: unknown[] = [
      { limit: -1 },
      { limit: 1.5 },
      { limit: '3' },
      { limit: Number.NaN },
      { gt: 1 },
      { lte: null },
      { prefix: 5 },
      { reverse: 'yes' },
      { revrse: true }, // misspelt option
      null,
      'a',
    ]
    for (const options of bad) {
      expect([options, await codeOf(() => collect(s.scan(options as never)))]).toEqual([options, 'KV_INVALID_ARGUMENT'])
    }
    expect(await scanKeys(s)).toEqual(['a'])
  })
})
