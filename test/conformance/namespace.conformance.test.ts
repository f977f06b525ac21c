// store.namespace(prefix) on every backend: relative keys, and keys/scan/count/clear/watch
// confined to the prefix.
import { describe, expect, it } from 'vitest'
import { backends } from './backends.js'
import { codeOf, type StoreLike } from './harness.js'

async function fill(s: StoreLike): Promise<void> {
  await s.batch(['users:ann', 'users:bob', 'users:*odd', 'usersx', 'other'].map((key) => ({ type: 'set', key, value: key })))
}

describe.each(backends)('namespace: $name', (backend) => {
  it('reads and writes keys relative to the prefix', async () => {
    const s = await backend.open()
    const users = s.namespace('users:')
    expect(users.prefix).toBe('users:')
    await users.set('ann', { age: 41 })
    expect(await s.get('users:ann')).toEqual({ age: 41 })
    expect(await users.get('ann')).toEqual({ age: 41 })
    expect(await users.getMany(['ann', 'nope'])).toEqual([{ age: 41 }, undefined])
    expect(await users.incr('visits', 2)).toBe(2)
    expect(await s.get('users:visits')).toBe(2)
    expect(await users.delete('ann')).toBe(true)
    expect(await s.has('users:ann')).toBe(false)
  })

  it('confines keys, scan, count and clear to the prefix, glob characters included', async () => {
    const s = await backend.open()
    await fill(s)
    const users = s.namespace('users:')
    expect(await users.keys()).toEqual(['*odd', 'ann', 'bob'])
    expect(await users.keys('a*')).toEqual(['ann'])
    expect(await s.namespace('users:*').keys()).toEqual(['odd'])
    const scanned: string[] = []
    for await (const [k, v] of users.scan({ gte: 'b' })) scanned.push(`${k}=${String(v)}`)
    expect(scanned).toEqual(['bob=users:bob'])
    const resumed: string[] = []
    for await (const [k] of users.scan({ cursor: 'ann', reverse: true })) resumed.push(k)
    expect(resumed).toEqual(['*odd'])
    expect(await users.count()).toBe(3)
    await users.clear()
    expect(await s.keys()).toEqual(['other', 'usersx'])
  })

  it('nests: a namespace of a namespace concatenates the prefixes', async () => {
    const s = await backend.open()
    const ann = s.namespace('users:').namespace('ann:')
    await ann.batch([{ type: 'set', key: 'age', value: 41 }])
    expect(ann.prefix).toBe('users:ann:')
    expect(await s.keys()).toEqual(['users:ann:age'])
  })

  it('watches only its keys and gives them without the prefix', async (ctx) => {
    if (!backend.capabilities.watch) return ctx.skip()
    const s = await backend.open()
    const feed = s.namespace('users:').watch()
    await s.set('other', 1)
    await s.set('users:ann', 2)
    const { value } = await feed.next()
    expect(value).toMatchObject({ type: 'set', key: 'ann', value: 2 })
    feed.close()
  })

  it('rejects a bad prefix, key or bound with a stable code', async () => {
    const s = await backend.open()
    expect(await codeOf(() => s.namespace(''))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => s.namespace(3 as never))).toBe('KV_INVALID_ARGUMENT')
    const users = s.namespace('users:')
    expect(await codeOf(() => users.set(7 as never, 1))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => users.get(''))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => users.batch([{ type: 'set', key: 1 as never, value: 1 }]))).toBe('KV_INVALID_KEY')
    expect(await codeOf(() => users.scan({ gt: 1 as never }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => users.keys(1 as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(() => users.watch({ key: 1 as never }))).toBe('KV_INVALID_ARGUMENT')
    expect(await s.keys()).toEqual([])
  })
})
