// A prefix view over any KeyValueStore: every key argument gets the prefix, every key that
// comes back loses it. Validation stays with the store; only what must be checked before
// the prefix is added (key and bound types) is checked here.
import { checkOptionsObject, describeValue } from './arguments.js'
import { StoreError } from './errors.js'
import type { KeyValueStore, Namespace } from './key-value-store.js'
import { checkKeyList } from './key-list.js'
import { scanBounds, scanLimit, type ScanOptions } from './scan-options.js'
import type { BatchOp, Entry, KeyType, SetOptions } from './types.js'
import type { Change, ChangeFeed, WatchOptions } from './watch.js'

/** Keys deleted per batch by `clear()`: under etcd's ops-per-txn limit. */
const CLEAR_CHUNK = 100

/**
 * A {@link Namespace} of `store` under `prefix`.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when `prefix` is not a non-empty string.
 */
export function createNamespace<V>(store: KeyValueStore<V>, prefix: string): Namespace<V> {
  if (typeof prefix !== 'string' || prefix === '') {
    throw new StoreError('KV_INVALID_ARGUMENT', `namespace prefix must be a non-empty string, got ${describeValue(prefix)}`)
  }
  return new NamespaceView(store, prefix)
}

/** `s` with the glob's special characters escaped, so it matches only itself. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}

class NamespaceView<V> implements Namespace<V> {
  readonly prefix: string
  readonly #store: KeyValueStore<V>

  constructor(store: KeyValueStore<V>, prefix: string) {
    this.#store = store
    this.prefix = prefix
  }

  /** The store's key for `key`. @throws {@link StoreError} `KV_INVALID_KEY` for a non-string or empty key. */
  #k(key: string): string {
    if (typeof key !== 'string' || key === '') throw new StoreError('KV_INVALID_KEY', `key must be a non-empty string, got ${describeValue(key)}`)
    return this.prefix + key
  }

  #strip(key: string): string {
    return key.slice(this.prefix.length)
  }

  /** Run `fn` with the store's key, turning a bad key into a rejection like the store's. */
  async #at<T>(key: string, fn: (k: string) => Promise<T>): Promise<T> {
    return fn(this.#k(key))
  }

  get(key: string): Promise<V | undefined> { return this.#at(key, (k) => this.#store.get(k)) }
  async getMany(keys: readonly string[]): Promise<(V | undefined)[]> { return this.#store.getMany(checkKeyList(keys, () => undefined).map((k) => this.#k(k))) }
  getEntry(key: string): Promise<Entry<V> | undefined> { return this.#at(key, (k) => this.#store.getEntry(k)) }
  version(key: string): Promise<number | undefined> { return this.#at(key, (k) => this.#store.version(k)) }
  has(key: string): Promise<boolean> { return this.#at(key, (k) => this.#store.has(k)) }
  type(key: string): Promise<KeyType | undefined> { return this.#at(key, (k) => this.#store.type(k)) }

  async keys(pattern = '*'): Promise<string[]> {
    if (typeof pattern !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `pattern must be a string, got ${describeValue(pattern)}`)
    return (await this.#store.keys(escapeGlob(this.prefix) + pattern)).map((k) => this.#strip(k))
  }

  scan(options: ScanOptions = {}): AsyncIterableIterator<[string, V]> {
    // Checked as the store checks them before any bound is prefixed.
    scanBounds(options)
    scanLimit(options)
    const o: ScanOptions = { ...options, prefix: this.prefix + (options.prefix ?? '') }
    for (const name of ['gt', 'gte', 'lt', 'lte', 'cursor'] as const) {
      const v = options[name]
      if (v !== undefined) o[name] = this.prefix + v
    }
    const inner = this.#store.scan(o)
    const strip = (k: string): string => this.#strip(k)
    return (async function* () {
      for await (const [k, v] of inner) yield [strip(k), v] as [string, V]
    })()
  }

  async count(): Promise<number> {
    return (await this.keys()).length
  }

  set(key: string, value: V, options?: SetOptions): Promise<boolean> { return this.#at(key, (k) => this.#store.set(k, value, options)) }
  delete(key: string): Promise<boolean> { return this.#at(key, (k) => this.#store.delete(k)) }

  async clear(): Promise<void> {
    const keys = await this.#store.keys(`${escapeGlob(this.prefix)}*`)
    for (let i = 0; i < keys.length; i += CLEAR_CHUNK) {
      await this.#store.batch(keys.slice(i, i + CLEAR_CHUNK).map((key) => ({ type: 'delete', key })))
    }
  }

  async batch(ops: readonly BatchOp<V>[]): Promise<void> {
    if (!Array.isArray(ops)) return this.#store.batch(ops)
    return this.#store.batch(ops.map((op: BatchOp<V>) => (typeof op === 'object' && op !== null ? { ...op, key: this.#k(op.key) } : op)))
  }

  update(key: string, fn: (old: V | undefined) => V | undefined | Promise<V | undefined>): Promise<V | undefined> { return this.#at(key, (k) => this.#store.update(k, fn)) }
  expire(key: string, ttlMs: number): Promise<boolean> { return this.#at(key, (k) => this.#store.expire(k, ttlMs)) }
  expireAt(key: string, at: number): Promise<boolean> { return this.#at(key, (k) => this.#store.expireAt(k, at)) }
  persist(key: string): Promise<boolean> { return this.#at(key, (k) => this.#store.persist(k)) }
  ttl(key: string): Promise<number> { return this.#at(key, (k) => this.#store.ttl(k)) }
  touch(key: string, ttlMs: number): Promise<boolean> { return this.#at(key, (k) => this.#store.touch(k, ttlMs)) }
  incr(key: string, by?: number): Promise<number> { return this.#at(key, (k) => this.#store.incr(k, by)) }
  decr(key: string, by?: number): Promise<number> { return this.#at(key, (k) => this.#store.decr(k, by)) }
  lpush(key: string, ...values: V[]): Promise<number> { return this.#at(key, (k) => this.#store.lpush(k, ...values)) }
  rpush(key: string, ...values: V[]): Promise<number> { return this.#at(key, (k) => this.#store.rpush(k, ...values)) }
  lpop(key: string): Promise<V | undefined> { return this.#at(key, (k) => this.#store.lpop(k)) }
  rpop(key: string): Promise<V | undefined> { return this.#at(key, (k) => this.#store.rpop(k)) }
  popMany(key: string, count: number, left?: boolean): Promise<V[]> { return this.#at(key, (k) => this.#store.popMany(k, count, left)) }
  lrange(key: string, start?: number, stop?: number): Promise<V[]> { return this.#at(key, (k) => this.#store.lrange(k, start, stop)) }
  llen(key: string): Promise<number> { return this.#at(key, (k) => this.#store.llen(k)) }
  lindex(key: string, index: number): Promise<V | undefined> { return this.#at(key, (k) => this.#store.lindex(k, index)) }
  lset(key: string, index: number, value: V): Promise<void> { return this.#at(key, (k) => this.#store.lset(k, index, value)) }
  ltrim(key: string, start: number, stop: number): Promise<void> { return this.#at(key, (k) => this.#store.ltrim(k, start, stop)) }
  hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number> { return this.#at(key, (k) => this.#store.hset(k, fields)) }
  hget(key: string, field: string): Promise<V | undefined> { return this.#at(key, (k) => this.#store.hget(k, field)) }
  hdel(key: string, ...fields: string[]): Promise<number> { return this.#at(key, (k) => this.#store.hdel(k, ...fields)) }
  hgetall(key: string): Promise<Map<string, V>> { return this.#at(key, (k) => this.#store.hgetall(k)) }
  hlen(key: string): Promise<number> { return this.#at(key, (k) => this.#store.hlen(k)) }
  hexists(key: string, field: string): Promise<boolean> { return this.#at(key, (k) => this.#store.hexists(k, field)) }

  watch(options: WatchOptions = {}): ChangeFeed<V> {
    checkOptionsObject('watch option', options, ['key', 'prefix', 'highWaterMark', 'signal'])
    const o: WatchOptions = { ...options, prefix: this.prefix + (options.prefix ?? '') }
    if (options.prefix !== undefined && typeof options.prefix !== 'string') {
      throw new StoreError('KV_INVALID_ARGUMENT', `watch prefix must be a string, got ${describeValue(options.prefix)}`)
    }
    if (options.key !== undefined) {
      if (typeof options.key !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `watch key must be a string, got ${describeValue(options.key)}`)
      o.key = this.prefix + options.key
      delete o.prefix
    }
    return new PrefixFeed(this.#store.watch(o), this.prefix.length)
  }

  namespace(prefix: string): Namespace<V> {
    if (typeof prefix !== 'string' || prefix === '') {
      throw new StoreError('KV_INVALID_ARGUMENT', `namespace prefix must be a non-empty string, got ${describeValue(prefix)}`)
    }
    return new NamespaceView(this.#store, this.prefix + prefix)
  }
}

/** A store's feed with the namespace prefix taken off each key (`clear` changes keep `''`). */
class PrefixFeed<V> implements ChangeFeed<V> {
  readonly #inner: ChangeFeed<V>
  readonly #cut: number

  constructor(inner: ChangeFeed<V>, cut: number) {
    this.#inner = inner
    this.#cut = cut
  }

  get pending(): number {
    return this.#inner.pending
  }

  async next(): Promise<IteratorResult<Change<V>>> {
    const r = await this.#inner.next()
    if (r.done === true || r.value.type === 'clear') return r
    return { done: false, value: { ...r.value, key: r.value.key.slice(this.#cut) } }
  }

  return(): Promise<IteratorResult<Change<V>>> {
    return this.#inner.return()
  }

  close(): void {
    this.#inner.close()
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}
