// watch() carries the store's value type: a `set` change's value is a V.
import { describe, expect, expectTypeOf, it } from 'vitest'
import { Store } from '../../src/store.js'
import type { EtcdStore } from '../../src/etcd/index.js'
import type { KeyValueStore } from '../../src/key-value-store.js'
import type { ChangeFeed } from '../../src/watch.js'

describe('typed watch', () => {
  it('types the value of a set change as the store V', async () => {
    await using s = await Store.open<{ n: number }>()
    const feed = s.watch({ prefix: 'a' })
    await s.set('a', { n: 1 })
    for await (const change of feed) {
      expect(change).toMatchObject({ type: 'set', key: 'a', value: { n: 1 } })
      if (change.type === 'set') expectTypeOf(change.value).toEqualTypeOf<{ n: number }>()
      break
    }
  })

  it('does so on every backend', () => {
    expectTypeOf<ReturnType<EtcdStore<string>['watch']>>().toEqualTypeOf<ChangeFeed<string>>()
    expectTypeOf<ReturnType<KeyValueStore<number>['watch']>>().toEqualTypeOf<ChangeFeed<number>>()
    expectTypeOf<ReturnType<Store['watch']>>().toEqualTypeOf<ChangeFeed<unknown>>()
  })
})
