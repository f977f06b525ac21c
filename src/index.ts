// Public exports of kvstore. Everything else is internal.
export { Store } from './store.js'
export type {
  SetOptions,
  BatchOp,
  ScanOptions,
  Entry,
  KeyType,
  SnapshotResult,
  StoreStats,
} from './store.js'
export type { StoreOptions, SyncPolicy, RecoveryMode, SnapshotFormatName, ProgressEvent } from './options.js'
export { StoreError, isStoreError } from './errors.js'
export type { ErrorCode } from './errors.js'
export type { Value } from './value.js'
export type { Clock } from './clock.js'
export type { RecoveryStats } from './recovery.js'
export { Transaction } from './transaction.js'
export { AtomicOperation } from './atomic.js'
export type { AtomicResult } from './atomic.js'
export { ChangeFeed } from './watch.js'
export type { Change, WatchOptions } from './watch.js'
export type { RangeBounds } from './memtable.js'
export { compileGlob } from './glob.js'
export type { CompiledGlob } from './glob.js'
export { RwLock } from './rwlock.js'

// Command language (library side of the CLI).
export { createSession } from './commands/session.js'
export type { Session } from './commands/session.js'
export { tokenize, quote } from './commands/tokenizer.js'
export { commands } from './commands/table.js'
export type { CommandSpec, CommandContext } from './commands/table.js'
export type { Reply } from './commands/reply.js'
