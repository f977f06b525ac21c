// KeyvKvstore beyond keyv's suite: TTL mapping, ownership of the store, namespaced clear,
// and StoreErrors for bad arguments.
import { describe, expect, it } from 'vitest'
import Keyv from 'keyv'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '../../src/store.js'
import { StoreError } from '../../src/errors.js'
import { KeyvKvstore } from '../../src/keyv/index.js'
import { FakeClock } from '../helpers/fake-clock.js'

const code = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (e: unknown) => (e instanceof StoreError ? e.code : e))

describe('KeyvKvstore', () => {
  it('turns keyv ttl into the key expiry in the store', async () => {
    const clock = new FakeClock()
    await using store = await Store.open({ clock })
    const keyv = new Keyv({ store: new KeyvKvstore(store) })
    await keyv.set('a', 1, 1000)
    expect(await store.ttl('keyv:a')).toBe(1000)
    clock.advance(1001)
    expect(await store.has('keyv:a')).toBe(false)
  })

  it('rounds a fractional ttl up and treats 0 and Infinity as no expiry', async () => {
    // A fake clock: on the real one the 1 ms ttl can run out before ttl() reads it.
    await using store = await Store.open({ clock: new FakeClock(), expirySweepIntervalMs: 0 })
    const adapter = new KeyvKvstore(store)
    await adapter.set('f', 'x', 0.5)
    expect(await store.ttl('f')).toBe(1)
    await adapter.set('z', 'x', 0)
    await adapter.set('i', 'x', Infinity)
    expect([await store.ttl('z'), await store.ttl('i')]).toEqual([-1, -1])
  })

  it('rejects a negative or non-numeric ttl with KV_INVALID_ARGUMENT', async () => {
    await using store = await Store.open()
    const adapter = new KeyvKvstore(store)
    expect(await code(adapter.set('k', 'v', -1))).toBe('KV_INVALID_ARGUMENT')
    expect(await code(adapter.set('k', 'v', '5' as unknown as number))).toBe('KV_INVALID_ARGUMENT')
    expect(await code(adapter.set('k', 'v', Number.NaN))).toBe('KV_INVALID_ARGUMENT')
    expect(await store.has('k')).toBe(false)
  })

  it('rejects what is neither a store nor options', () => {
    expect(() => new KeyvKvstore(42 as never)).toThrow(expect.objectContaining({ code: 'KV_INVALID_ARGUMENT' }))
    expect(() => new KeyvKvstore(null as never)).toThrow(StoreError)
  })

  it('clears only its namespace and keeps keys of other namespaces and plain keys', async () => {
    await using store = await Store.open()
    await store.set('other', 1)
    const a = new Keyv({ store: new KeyvKvstore(store), namespace: 'a' })
    const b = new Keyv({ store: new KeyvKvstore(store), namespace: 'b' })
    for (let i = 0; i < 250; i++) await a.set(`k${i}`, i)
    await b.set('k', 'b')
    await a.clear()
    expect(await store.keys()).toEqual(['b:k', 'other'])
  })

  it('getMany, hasMany, setMany and deleteMany work on many keys', async () => {
    await using store = await Store.open()
    const adapter = new KeyvKvstore(store)
    await adapter.setMany([{ key: 'x', value: 1 }, { key: 'y', value: 2, ttl: 50 }])
    expect(await adapter.getMany(['x', 'nope', 'y'])).toEqual([1, undefined, 2])
    expect(await adapter.hasMany(['x', 'nope'])).toEqual([true, false])
    expect(await adapter.deleteMany(['nope'])).toBe(false)
    expect(await adapter.deleteMany(['x', 'y'])).toBe(true)
    expect(await store.count()).toBe(0)
    expect(await code(adapter.getMany('x' as never))).toBe('KV_INVALID_ARGUMENT')
    expect(await code(adapter.setMany({} as never))).toBe('KV_INVALID_ARGUMENT')
  })

  it('opens a dir store from options, and closes it on disconnect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvstore-keyv-'))
    try {
      const keyv = new Keyv({ store: new KeyvKvstore({ dir }) })
      await keyv.set('a', 'b')
      await keyv.disconnect()
      await using store = await Store.open({ dir })
      expect(await store.get('keyv:a')).toBe('{"value":"b"}')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('leaves a store passed in open on disconnect', async () => {
    await using store = await Store.open()
    await new KeyvKvstore(store).disconnect()
    expect(store.closed).toBe(false)
  })

  it('reports a failed open on first use as a StoreError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvstore-keyv-'))
    try {
      const file = join(dir, 'a-file')
      writeFileSync(file, 'not a directory')
      const adapter = new KeyvKvstore({ dir: file })
      expect(await code(adapter.get('a'))).toMatch(/^KV_/)
      await adapter.disconnect()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('iterates one namespace in key order, keys keeping their prefix', async () => {
    await using store = await Store.open()
    const adapter = new KeyvKvstore(store)
    await store.batch([{ type: 'set', key: 'n:b', value: 2 }, { type: 'set', key: 'n:a', value: 1 }, { type: 'set', key: 'm:c', value: 3 }])
    const seen: unknown[] = []
    for await (const e of adapter.iterator('n')) seen.push(e)
    expect(seen).toEqual([['n:a', 1], ['n:b', 2]])
    const all: unknown[] = []
    for await (const [k] of adapter.iterator()) all.push(k)
    expect(all).toEqual(['m:c', 'n:a', 'n:b'])
  })
})

describe('a Store handed to keyv directly', () => {
  it('refuses keyv\'s numeric ttl with a KV_INVALID_ARGUMENT that names KeyvKvstore', async () => {
    await using store = await Store.open()
    const err = await store.set('k', 'v', 1000 as never).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'KV_INVALID_ARGUMENT', message: expect.stringContaining('KeyvKvstore') })
    expect(await store.has('k')).toBe(false)
  })
})
