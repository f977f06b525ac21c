// Public exports of kvstore. Everything else is internal.
export { Store } from './store.js'
export type { KeyValueStore, Namespace } from './key-value-store.js'
export type {
  SetOptions,
  BatchOp,
  ScanOptions,
  Entry,
  KeyType,
  SnapshotResult,
  StoreStats,
} from './store.js'
export type { StoreOptions, SyncPolicy, RecoveryMode, SnapshotFormatName, ProgressEvent, EvictionPolicy, MemoryOptions } from './options.js'
export { StoreError, isStoreError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { Value } from './value-check.js'
export type { Clock } from './clock.js'
export type { RecoveryStats } from './recovery.js'
export type { FollowerStats } from './persistence/follower.js'
// Handles passed to callbacks and returned by methods: types only, never constructed by users.
export type { Transaction } from './transaction.js'
export type { AtomicOperation, AtomicResult } from './atomic.js'
export type { ChangeFeed, Change, RemovalReason, WatchOptions } from './watch.js'
export type { RangeBounds } from './memtable.js'

// The command language also has its own entry, `kvstore-db/commands`; re-exported here so
// existing imports keep working. It is a layer above the store and imports none of this file.
export { createSession, tokenize, quote, commands } from './commands/index.js'
export type { Session, CommandSpec, CommandContext, Reply } from './commands/index.js'
