// keyv's own adapter suite (@keyv/test-suite) against KeyvKvstore, as keyv's adapters run
// it: every test builds `new Keyv({ store: store() })`, each adapter over one shared store.
import * as test from 'vitest'
import Keyv from 'keyv'
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Store } from '../../src/store.js'
import type { StoreOptions } from '../../src/options.js'
import { KeyvKvstore } from '../../src/keyv/index.js'

/** keyv 5 wires `Keyv#iterator()` only for the dialects it lists; this does the same for kvstore. */
class IterableKeyv extends Keyv {
  constructor(options?: ConstructorParameters<typeof Keyv>[0]) {
    super(options)
    const store = this.store as unknown
    if (store instanceof KeyvKvstore) this.iterator = this.generateIterator(store.iterator.bind(store))
  }
}

const modes: [string, () => StoreOptions][] = [
  ['memory', () => ({})],
  ['dir', () => ({ dir: mkdtempSync(join(tmpdir(), 'kvstore-keyv-')), sync: 'never' })],
]

test.describe.each(modes)('@keyv/test-suite over a %s store', (_name, options) => {
  let store: Store<unknown>
  let dir: string | undefined
  test.beforeAll(async () => {
    const o = options()
    dir = o.dir
    store = await Store.open(o)
  })
  test.afterAll(async () => {
    await store.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })
  keyvTestSuite(test, Keyv, () => new KeyvKvstore(store))
  keyvIteratorTests(test, IterableKeyv as typeof Keyv, () => new KeyvKvstore(store))
})
