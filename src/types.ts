// Public types of the Store API that are not owned by one part (options live in
// options.ts, changes in watch.ts, snapshot results in persistence/persistence.ts).
import type { RecoveryStats } from './recovery.js'
import type { FollowerStats } from './persistence/follower.js'
import type { EvictionPolicy, SyncPolicy } from './options.js'

/** Options for {@link Store.set}. */
export interface SetOptions {
  /** Time to live in milliseconds; the key expires at `now + ttl`. Must be a positive integer. */
  ttl?: number
  /** Absolute expiry time (ms since the epoch). Wins over `ttl`. */
  expiresAt?: number
  /** Keep the key's current expiry instead of clearing it (Redis `KEEPTTL`). */
  keepTtl?: boolean
  /** Only set when the key does not exist (Redis `NX`). */
  ifNotExists?: boolean
  /** Only set when the key exists (Redis `XX`). */
  ifExists?: boolean
}

/** An operation of {@link Store.batch}. */
export type BatchOp<V> =
  | { type: 'set'; key: string; value: V; ttl?: number }
  | { type: 'delete'; key: string }

/** A key with its metadata, from {@link Store.getEntry}. */
export interface Entry<V> {
  readonly value: V
  /** Sequence number of the last write to this key. Survives reopen and load. */
  readonly version: number
  /** Absolute expiry time in ms, when the key has one. */
  readonly expiresAt?: number
}

/** What a key holds, from {@link Store.type}. */
export type KeyType = 'string' | 'number' | 'boolean' | 'null' | 'json' | 'bytes' | 'list' | 'hash'

/** Counters from {@link Store.stats}. */
export interface StoreStats {
  readonly mode: 'memory' | 'dir' | 'file' | 'etcd'
  readonly path: string | undefined
  /** Keys held, including expired ones not yet swept. */
  readonly keys: number
  /** Keys that carry an expiry. */
  readonly expiringKeys: number
  /** Last committed sequence number. */
  readonly seq: number
  readonly sync: SyncPolicy | undefined
  readonly walSegment: number | undefined
  readonly walBytes: number
  readonly snapshots: number
  readonly compactions: number
  readonly expiredRemoved: number
  /**
   * Bytes the keys and values count for against `maxMemoryBytes` (README "Memory and eviction").
   * Kept by `Store`; `undefined` from `EtcdStore`, which has no memory budget.
   */
  readonly memoryBytes?: number
  /** The memory budget in bytes, 0 = none. `Store` only. */
  readonly maxMemoryBytes?: number
  /** The eviction policy in force. `Store` only. */
  readonly evictionPolicy?: EvictionPolicy
  /** Keys evicted to keep the budget since open (evictions during open's replay included). `Store` only. */
  readonly evictedKeys?: number
  /** What open found; `undefined` for memory and file mode. */
  readonly recovery: RecoveryStats | undefined
  /** Set once a write or fsync failed: the store then rejects writes until reopened. */
  readonly failure: string | undefined
  /** Where a read-only follower stands (`Store.open({ dir, readOnly: true })`); `undefined` on a writer. */
  readonly follower?: FollowerStats | undefined
}
