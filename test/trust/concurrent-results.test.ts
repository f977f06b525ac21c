// Regression: list and hash calls must resolve with the result of their own op, taken when
// the op is applied, not with whatever a later call left behind.
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'

const stores: Store<unknown>[] = []
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
})

async function open(dir?: string): Promise<Store<unknown>> {
  const s = await Store.open<unknown>(dir === undefined ? {} : { dir, sync: 'always' })
  stores.push(s)
  return s
}

describe.each([
  ['memory', (): string | undefined => undefined],
  ['dir', (): string | undefined => tmpDir()],
])('un-awaited list and hash calls (%s)', (_mode, where) => {
  it('lpush resolves with its own length, not a later set', async () => {
    const s = await open(where())
    const p = s.lpush('l', 'a')
    void s.set('x', 1)
    expect(await p).toBe(1)
  })

  it('rpop resolves with the popped element even when a push follows', async () => {
    const s = await open(where())
    await s.rpush('l', 'a')
    const q = s.rpop('l')
    void s.rpush('o', 'z')
    expect(await q).toBe('a')
    expect(await s.lrange('o')).toEqual(['z'])
  })

  it("hset never resolves with another key's data", async () => {
    const s = await open(where())
    await s.rpush('l2', 'secret')
    const h = s.hset('h', { f: 1 })
    const popped = s.lpop('l2')
    expect(await h).toBe(1)
    expect(await popped).toBe('secret')
  })

  it('hdel and popMany keep their own counts', async () => {
    const s = await open(where())
    await s.hset('h', { a: 1, b: 2, c: 3 })
    await s.rpush('l', 1, 2, 3, 4)
    const d = s.hdel('h', 'a', 'b')
    const m = s.popMany('l', 3)
    const n = s.rpush('l', 9)
    expect(await d).toBe(2)
    expect(await m).toEqual([1, 2, 3])
    expect(await n).toBe(2)
  })
})
