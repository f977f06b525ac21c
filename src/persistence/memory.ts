import type { Op } from '../codec/ops.js'
import { StoreError } from '../errors.js'
import type { Keyspace } from '../keyspace.js'
import type { MemoryBudget } from '../memory-budget.js'
import type { Memtable } from '../memtable.js'
import type { Persistence, PersistenceStats, PointInTime, SnapshotResult } from './persistence.js'

const RESOLVED: Promise<void> = Promise.resolve()

/** No persistence: the state lives and dies with the process. Writes are durable at once. */
export class MemoryPersistence implements Persistence {
  readonly mode = 'memory'
  readonly path = undefined
  readonly failure = undefined
  readonly wantsCompaction = false
  readonly unsaved = false

  async open(_keyspace: Keyspace, _budget: MemoryBudget): Promise<number> {
    return 0
  }

  log(_seq: number, _ops: readonly Op[]): Promise<void> {
    return RESOLVED
  }

  flush(): Promise<void> {
    return RESOLVED
  }

  async save(_point: PointInTime): Promise<SnapshotResult> {
    throw new StoreError('KV_INVALID_ARGUMENT', 'an in-memory store needs a snapshot path')
  }

  async replaceAll(_mt: Memtable, _seq: number, install: () => void): Promise<void> {
    install()
  }

  async close(): Promise<void> {}

  stats(): PersistenceStats {
    return { mode: 'memory', path: undefined, sync: undefined, walSegment: undefined, walBytes: 0, recovery: undefined }
  }
}
