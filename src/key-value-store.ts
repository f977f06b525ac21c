// The public interface every kvstore backend implements: the embedded `Store` and
// `EtcdStore` (kvstore-db/etcd). Code written against it runs on either; the conformance
// suite (test/conformance) checks both against it, with the differences named as
// capability flags. Each member's full contract is on `Store`.
import type { AtomicOperation } from './atomic.js'
import type { SnapshotFormatName } from './options.js'
import type { SnapshotResult } from './persistence/persistence.js'
import type { ScanOptions } from './scan-options.js'
import type { Transaction } from './transaction.js'
import type { BatchOp, Entry, KeyType, SetOptions, StoreStats } from './types.js'
import type { ChangeFeed, WatchOptions } from './watch.js'

/**
 * A typed, ordered key-value store: what `Store<V>` and `EtcdStore<V>` both implement.
 *
 * Every method rejects with a `StoreError` (stable `code`), never another error type.
 * See `Store` for each member's contract; backends state their differences in their own
 * TSDoc and in the README ("Beyond one machine").
 */
export interface KeyValueStore<V = unknown> {
  /** Value of a live plain key, or `undefined`. `KV_WRONG_TYPE` for a list or hash. */
  get(key: string): Promise<V | undefined>
  /** Values of many plain keys, in order (`undefined` where missing). */
  getMany(keys: readonly string[]): Promise<(V | undefined)[]>
  /** Value, version and expiry of a live plain key. */
  getEntry(key: string): Promise<Entry<V> | undefined>
  /** Version of a live key of any type. */
  version(key: string): Promise<number | undefined>
  /** Whether a live key of any type exists. */
  has(key: string): Promise<boolean>
  /** What a live key holds. */
  type(key: string): Promise<KeyType | undefined>
  /** Live keys matching a Redis-style glob, in key order. */
  keys(pattern?: string): Promise<string[]>
  /** Plain entries in a key range, in order (or reverse), as a point-in-time view. */
  scan(options?: ScanOptions): AsyncIterableIterator<[string, V]>
  /** Number of live keys. */
  count(): Promise<number>
  /** Write a value (options: ttl, expiresAt, keepTtl, NX, XX); resolves whether it was written. */
  set(key: string, value: V, options?: SetOptions): Promise<boolean>
  /** Delete a key of any type; resolves whether a live key was removed. */
  delete(key: string): Promise<boolean>
  /** Remove every key. */
  clear(): Promise<void>
  /** Sets and deletes applied all or nothing. */
  batch(ops: readonly BatchOp<V>[]): Promise<void>
  /** Replace a value with `fn(old)` atomically (undefined deletes). */
  update(key: string, fn: (old: V | undefined) => V | undefined | Promise<V | undefined>): Promise<V | undefined>
  /** Give a live key an expiry `ttlMs` from now. */
  expire(key: string, ttlMs: number): Promise<boolean>
  /** Give a live key an absolute expiry (ms since the epoch). */
  expireAt(key: string, at: number): Promise<boolean>
  /** Remove a live key's expiry. */
  persist(key: string): Promise<boolean>
  /** Ms left before expiry; -1 without one, -2 when missing. */
  ttl(key: string): Promise<number>
  /** Same as `expire`. */
  touch(key: string, ttlMs: number): Promise<boolean>
  /** Add to an integer (0 when missing). */
  incr(key: string, by?: number): Promise<number>
  /** Subtract from an integer. */
  decr(key: string, by?: number): Promise<number>
  /** Push at the head; resolves with the new length. */
  lpush(key: string, ...values: V[]): Promise<number>
  /** Push at the tail; resolves with the new length. */
  rpush(key: string, ...values: V[]): Promise<number>
  /** Remove and return the head. */
  lpop(key: string): Promise<V | undefined>
  /** Remove and return the tail. */
  rpop(key: string): Promise<V | undefined>
  /** Remove and return up to `count` elements. */
  popMany(key: string, count: number, left?: boolean): Promise<V[]>
  /** Elements `start..stop` inclusive (negative from the end). */
  lrange(key: string, start?: number, stop?: number): Promise<V[]>
  /** Length of a list (0 when missing). */
  llen(key: string): Promise<number>
  /** Element at an index (negative from the end). */
  lindex(key: string, index: number): Promise<V | undefined>
  /** Replace the element at an index. */
  lset(key: string, index: number, value: V): Promise<void>
  /** Keep only elements `start..stop`. */
  ltrim(key: string, start: number, stop: number): Promise<void>
  /** Set hash fields; resolves with how many were new. */
  hset(key: string, fields: Record<string, V> | ReadonlyMap<string, V>): Promise<number>
  /** Value of a hash field. */
  hget(key: string, field: string): Promise<V | undefined>
  /** Delete hash fields; resolves with how many existed. */
  hdel(key: string, ...fields: string[]): Promise<number>
  /** Every field of a hash. */
  hgetall(key: string): Promise<Map<string, V>>
  /** Number of fields of a hash. */
  hlen(key: string): Promise<number>
  /** Whether a hash field exists. */
  hexists(key: string, field: string): Promise<boolean>
  /** Run `fn` as a serializable optimistic transaction, retried on conflict. */
  transaction<R>(fn: (tx: Transaction<V>) => R | Promise<R>, options?: { retries?: number; signal?: AbortSignal }): Promise<R>
  /** A compare-and-set builder. */
  atomic(): AtomicOperation<V>
  /** A feed of committed changes; a `set` change carries the value as `V`. */
  watch(options?: WatchOptions): ChangeFeed<V>
  /** A view of the keys under `prefix`: the same API, with keys relative to the prefix. */
  namespace(prefix: string): Namespace<V>
  /** Write the contents to a kvstore snapshot file. */
  snapshot(path?: string, options?: { format?: SnapshotFormatName; compress?: 'gzip' | 'brotli'; signal?: AbortSignal }): Promise<SnapshotResult>
  /** Replace the contents with a kvstore snapshot file. */
  load(path: string, options?: { signal?: AbortSignal }): Promise<{ entries: number; timeMs: number }>
  /** Write a snapshot and drop the log it covers (a no-op where the engine compacts itself). */
  compact(options?: { signal?: AbortSignal }): Promise<SnapshotResult>
  /** Counters. */
  stats(): StoreStats
  /** Whether `close()` was called. */
  readonly closed: boolean
  /** Finish pending work and release the store. Idempotent. */
  close(): Promise<void>
}

/** The methods a {@link Namespace} shares with its store. */
type NamespacedMethod =
  | 'get' | 'getMany' | 'getEntry' | 'version' | 'has' | 'type' | 'keys' | 'scan' | 'count'
  | 'set' | 'delete' | 'clear' | 'batch' | 'update'
  | 'expire' | 'expireAt' | 'persist' | 'ttl' | 'touch' | 'incr' | 'decr'
  | 'lpush' | 'rpush' | 'lpop' | 'rpop' | 'popMany' | 'lrange' | 'llen' | 'lindex' | 'lset' | 'ltrim'
  | 'hset' | 'hget' | 'hdel' | 'hgetall' | 'hlen' | 'hexists'
  | 'watch'

/**
 * The keys of a store under one prefix, with the store's API (from `store.namespace(prefix)`).
 *
 * Keys are relative: `store.namespace('users:').set('ann', v)` writes `users:ann`. `keys`,
 * `scan`, `count`, `clear` and `watch` see only keys under the prefix and give them without
 * it; `clear` deletes them in batches (not one atomic write); a `watch` feed also delivers
 * the store's `clear` changes (`key` ''). A view holds nothing of its own: it needs no
 * closing and works while its store is open. Transactions, `atomic`, snapshots and `close`
 * stay on the store.
 */
export interface Namespace<V = unknown> extends Pick<KeyValueStore<V>, NamespacedMethod> {
  /** The full prefix of this view's keys in the store. */
  readonly prefix: string
  /** A view of the keys under `prefix` within this one (prefixes concatenate). */
  namespace(prefix: string): Namespace<V>
}
