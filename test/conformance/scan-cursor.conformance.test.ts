// Resumable scans on every backend: the last key yielded, passed back as `cursor`, continues
// the scan in either direction and within the other bounds.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, type StoreLike } from './harness.js'

async function collect(s: StoreLike, options: Parameters<StoreLike['scan']>[0]): Promise<string[]> {
  const out: string[] = []
  for await (const [k] of s.scan(options)) out.push(k)
  return out
}

/** Every key of a scan, read `page` entries at a time through the cursor. */
async function paged(s: StoreLike, options: Parameters<StoreLike['scan']>[0], page: number): Promise<string[]> {
  const out: string[] = []
  let cursor: string | undefined
  for (;;) {
    const got = await collect(s, cursor === undefined ? { ...options, limit: page } : { ...options, limit: page, cursor })
    out.push(...got)
    if (got.length < page) return out
    cursor = got[got.length - 1]
  }
}

describe.each(backends)('scan cursor: $name', (backend) => {
  const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g']

  it('pages through a scan forward and in reverse without repeats or gaps', async () => {
    const s = await backend.open()
    await s.batch(keys.map((key) => ({ type: 'set', key, value: key })))
    expect(await paged(s, {}, 3)).toEqual(keys)
    expect(await paged(s, { reverse: true }, 2)).toEqual([...keys].reverse())
    expect(await paged(s, { gte: 'b', lt: 'f' }, 2)).toEqual(['b', 'c', 'd', 'e'])
    expect(await paged(s, { prefix: 'c' }, 1)).toEqual(['c'])
  })

  it('starts after the cursor even when it is not a key, and keeps tighter bounds', async () => {
    const s = await backend.open()
    await s.batch(keys.map((key) => ({ type: 'set', key, value: key })))
    expect(await collect(s, { cursor: 'bb' })).toEqual(['c', 'd', 'e', 'f', 'g'])
    expect(await collect(s, { cursor: 'a', gte: 'e' })).toEqual(['e', 'f', 'g'])
    expect(await collect(s, { cursor: 'e', reverse: true, lte: 'c' })).toEqual(['c', 'b', 'a'])
    expect(await collect(s, { cursor: 'e', reverse: true })).toEqual(['d', 'c', 'b', 'a'])
  })

  it('sees keys written between pages', async () => {
    const s = await backend.open()
    await s.batch(keys.map((key) => ({ type: 'set', key, value: key })))
    const first = await collect(s, { limit: 2 })
    await s.set('cc', 'new')
    await s.delete('d')
    expect(await collect(s, { cursor: first[1] as string })).toEqual(['c', 'cc', 'e', 'f', 'g'])
  })

  it('rejects a non-string cursor with KV_INVALID_ARGUMENT', async () => {
    const s = await backend.open()
    expect(await codeOf(() => collect(s, { cursor: 3 as never }))).toBe('KV_INVALID_ARGUMENT')
  })
})
