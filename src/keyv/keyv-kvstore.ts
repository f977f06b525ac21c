// A keyv storage adapter over any kvstore backend. keyv hands it serialized strings
// (`{"value":…,"expires":…}`) and prefixes keys with `namespace:`; the store's own TTL
// removes expired keys, so keyv's expiry check and the store's agree.
import { EventEmitter } from 'node:events'
import type { KeyvStoreAdapter, StoredData } from 'keyv'
import { describeValue } from '../arguments.js'
import { StoreError } from '../errors.js'
import type { KeyValueStore } from '../key-value-store.js'
import { checkKeyList } from '../key-list.js'
import type { StoreOptions } from '../options.js'
import { Store } from '../store.js'
import type { BatchOp } from '../types.js'

/** What keyv reads from `adapter.opts`. */
export interface KeyvKvstoreOpts {
  /** Always `'kvstore'`. */
  readonly dialect: 'kvstore'
  /** `kvstore://memory`, `kvstore://dir/<path>` or `kvstore://file/<path>`; `kvstore://store` for a store passed in. */
  readonly url: string
  /** Anything keyv or its user sets here (keyv's suites set `deserialize`) is kept. */
  [option: string]: unknown
}

/** Keys deleted per batch by `clear()` and `deleteMany()`: well under etcd's ops-per-txn limit. */
const DELETE_CHUNK = 100

/**
 * A keyv storage adapter backed by kvstore: `new Keyv({ store: new KeyvKvstore(store) })`.
 *
 * Pass an open store (`Store`, `EtcdStore` or any {@link KeyValueStore}); the caller
 * keeps owning it and closes it. Or pass {@link StoreOptions} (`{ dir }`, `{ file }`, `{}`
 * for memory): the adapter opens that store on first use and closes it in
 * `disconnect()`. keyv's TTL (ms) becomes the key's expiry in the store; `clear()` with a
 * namespace removes only `namespace:` keys. Errors are `StoreError`s; keyv emits them as
 * `error` events unless `throwOnErrors` is set.
 */
export class KeyvKvstore extends EventEmitter implements KeyvStoreAdapter {
  /** Read by keyv: the adapter's dialect and location. */
  readonly opts: KeyvKvstoreOpts
  /** Set by keyv to its namespace; keys then arrive as `namespace:key`. */
  namespace?: string | undefined
  readonly #store: Promise<KeyValueStore<unknown>>
  readonly #owned: boolean

  /**
   * @param store - an open store, or options for `Store.open` (opened on first use).
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when `store` is neither.
   */
  constructor(store: KeyValueStore<unknown> | StoreOptions = {}) {
    super()
    if (typeof store !== 'object' || store === null) {
      throw new StoreError('KV_INVALID_ARGUMENT', `KeyvKvstore takes a store or store options, got ${describeValue(store)}`)
    }
    if (isStore(store)) {
      this.#owned = false
      this.#store = Promise.resolve(store)
      this.opts = { dialect: 'kvstore', url: 'kvstore://store' }
    } else {
      this.#owned = true
      const o = store as StoreOptions
      this.opts = { dialect: 'kvstore', url: o.dir !== undefined ? `kvstore://dir/${o.dir}` : o.file !== undefined ? `kvstore://file/${o.file}` : 'kvstore://memory' }
      const opening = Store.open<unknown>(o)
      // Until a method awaits it, a failed open must not be an unhandled rejection.
      opening.catch(() => undefined)
      this.#store = opening
    }
  }

  /** The stored (serialized) value of `key`, or `undefined`. */
  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return (await (await this.#store).get(key)) as StoredData<Value> | undefined
  }

  /** Stored values of `keys`, in order, `undefined` where missing. */
  async getMany<Value>(keys: string[]): Promise<StoredData<Value | undefined>[]> {
    return (await (await this.#store).getMany(keys)) as StoredData<Value | undefined>[]
  }

  /**
   * Store `value` under `key`; with `ttl` (ms, a positive number; fractions round up) the
   * key expires then. `0`, `Infinity` or `undefined` means no expiry.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for a negative or non-numeric ttl; as `Store.set`.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const store = await this.#store
    const ms = ttlOption(ttl)
    return store.set(key, value, ms === undefined ? undefined : { ttl: ms })
  }

  /** Store many entries (each with its own optional ttl) all or nothing, in one batch. */
  async setMany(values: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    if (!Array.isArray(values)) throw new StoreError('KV_INVALID_ARGUMENT', `setMany takes an array, got ${describeValue(values)}`)
    const ops: BatchOp<unknown>[] = values.map(({ key, value, ttl }) => {
      const ms = ttlOption(ttl)
      return ms === undefined ? { type: 'set', key, value } : { type: 'set', key, value, ttl: ms }
    })
    await (await this.#store).batch(ops)
  }

  /** Remove `key`; resolves whether it existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.#store).delete(key)
  }

  /** Remove `keys`; resolves whether any of them existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    const store = await this.#store
    const list = checkKeyList(keys, () => undefined)
    let any = false
    for (let i = 0; i < list.length; i += DELETE_CHUNK) {
      const results = await Promise.all(list.slice(i, i + DELETE_CHUNK).map((k) => store.delete(k)))
      if (results.includes(true)) any = true
    }
    return any
  }

  /** Whether `key` exists (and has not expired). */
  async has(key: string): Promise<boolean> {
    return (await this.#store).has(key)
  }

  /** Whether each of `keys` exists, in order. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const store = await this.#store
    return Promise.all(checkKeyList(keys, () => undefined).map((k) => store.has(k)))
  }

  /** Remove every key of the current namespace (`namespace:…`), or every key without one. */
  async clear(): Promise<void> {
    const store = await this.#store
    const ns = this.namespace
    if (ns === undefined || ns === '') return store.clear()
    let keys: string[] = []
    for await (const [key] of store.scan({ prefix: `${ns}:` })) {
      keys.push(key)
      if (keys.length === DELETE_CHUNK) {
        await store.batch(keys.map((k) => ({ type: 'delete', key: k })))
        keys = []
      }
    }
    if (keys.length > 0) await store.batch(keys.map((k) => ({ type: 'delete', key: k })))
  }

  /**
   * `[key, storedValue]` pairs in key order; with `namespace`, only keys under `namespace:`
   * (keys keep their prefix: keyv strips it). A point-in-time view, as `Store.scan`.
   */
  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    const store = await this.#store
    const options = namespace === undefined || namespace === '' ? {} : { prefix: `${namespace}:` }
    for await (const [key, value] of store.scan(options)) yield [key, value as Awaited<Value>]
  }

  /** Close the store when the adapter opened it; a store passed in is left open. */
  async disconnect(): Promise<void> {
    if (!this.#owned) return
    const store = await this.#store.catch(() => undefined)
    await store?.close()
  }
}

function isStore(x: object): x is KeyValueStore<unknown> {
  const s = x as Partial<Record<'get' | 'set' | 'scan', unknown>>
  return typeof s.get === 'function' && typeof s.set === 'function' && typeof s.scan === 'function'
}

/** keyv's ttl as the store's: whole ms, `undefined` for none. */
function ttlOption(ttl: unknown): number | undefined {
  if (ttl === undefined || ttl === null || ttl === 0 || ttl === Infinity) return undefined
  if (typeof ttl !== 'number' || !(ttl > 0)) {
    throw new StoreError('KV_INVALID_ARGUMENT', `ttl must be a positive number of milliseconds, got ${describeValue(ttl)}`)
  }
  return Math.ceil(ttl)
}
