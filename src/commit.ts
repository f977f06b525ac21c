// The commit funnel: every write goes through `commit`, which logs the ops as one record,
// applies them to the keyspace and publishes them to watchers, in that order and
// synchronously. Invariant: log order == apply order == seq order.
import type { Op } from './codec/ops.js'
import { StoreError } from './errors.js'
import type { Keyspace } from './keyspace.js'
import type { MemoryBudget } from './memory-budget.js'
import type { Memtable } from './memtable.js'
import type { Persistence } from './persistence/persistence.js'
import type { ChangeHub } from './watch.js'

const RESOLVED: Promise<void> = Promise.resolve()
const RESOLVED_TRUE: Promise<boolean> = Promise.resolve(true)
const RESOLVED_FALSE: Promise<boolean> = Promise.resolve(false)

/** `result` once `done` settles; no extra promise when nothing is pending (memory mode). */
export function after<T>(done: Promise<void>, result: T): Promise<T> {
  if (done === RESOLVED) {
    if (result === true) return RESOLVED_TRUE as Promise<T>
    if (result === false) return RESOLVED_FALSE as Promise<T>
    return Promise.resolve(result)
  }
  return done.then(() => result)
}

/** A settled promise of `void`, `true` or `false`, shared so hot paths allocate none. */
export const resolved = { void: RESOLVED, true: RESOLVED_TRUE, false: RESOLVED_FALSE } as const

/** Sequence numbers and the path from ops to the log, the keyspace and the watchers. */
export class CommitFunnel {
  readonly #persist: Persistence
  readonly #ks: Keyspace
  readonly #hub: ChangeHub
  readonly #onLogGrown: () => void
  /** Result of the last op applied by `commit`; read synchronously right after it. */
  #lastResult: unknown
  /** Last committed sequence number. */
  seq = 0
  /** Admits each write against `maxMemoryBytes` before it is logged; set once by the store. */
  budget: MemoryBudget | undefined

  /** `onLogGrown` runs after a commit that made the persistence want a compaction. */
  constructor(persist: Persistence, ks: Keyspace, hub: ChangeHub, onLogGrown: () => void) {
    this.#persist = persist
    this.#ks = ks
    this.#hub = hub
    this.#onLogGrown = onLogGrown
  }

  /**
   * Refuse writes once a write failed (the store must be reopened).
   * @throws {@link StoreError} `KV_IO` with the failure as `cause`.
   */
  checkWritable(): void {
    const failure = this.#persist.failure
    if (failure === undefined) return
    if (failure instanceof StoreError && failure.code === 'KV_IO') throw failure
    throw new StoreError('KV_IO', 'an earlier write failed; reopen the store to recover', { cause: failure })
  }

  /**
   * Commit `ops` as one record; the promise settles when it is durable under the sync policy.
   * @throws {@link StoreError} `KV_OUT_OF_MEMORY` when the memory budget refuses the write
   *   (before anything is logged; evictions it needs are logged first, as their own record).
   */
  commit(ops: Op[]): Promise<void> {
    this.budget?.admit(ops)
    return this.#commit(ops)
  }

  /**
   * Evict `keys` (present, chosen by the budget): one record of deletes, published with
   * reason `'evicted'`. A failure of this record poisons the log, so the write that needed
   * the room fails too; its own promise reports it.
   */
  evict(keys: readonly string[]): void {
    const ops: Op[] = keys.map((key) => ({ t: 'del', key }))
    const seq = this.seq + 1
    const done = this.#persist.log(seq, ops)
    done.catch(() => undefined)
    if (this.#persist.failure !== undefined) return
    this.seq = seq
    const hub = this.#hub
    for (const op of ops) {
      if (this.#ks.apply(op, seq) === true && hub.size > 0) hub.publish({ type: 'delete', key: (op as { key: string }).key, version: seq, reason: 'evicted' })
    }
  }

  /** Log (and apply) ops the budget does not judge: deletes of keys replay already evicted. */
  commitUnbudgeted(ops: Op[]): Promise<void> {
    return this.#commit(ops)
  }

  #commit(ops: Op[]): Promise<void> {
    const seq = this.seq + 1
    const done = this.#persist.log(seq, ops)
    if (this.#persist.failure !== undefined) return done
    this.seq = seq
    this.#applyAll(ops, seq)
    if (this.#persist.wantsCompaction) this.#onLogGrown()
    return done
  }

  /** Apply the ops of record `seq` in order and offer each change to the watchers. */
  #applyAll(ops: readonly Op[], seq: number): void {
    const ks = this.#ks
    const hub = this.#hub
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op
      const result = ks.apply(op, seq)
      this.#lastResult = result
      // A delete that found nothing changed nothing: watchers hear of it only when it did.
      if (hub.size > 0 && !(op.t === 'del' && result === false)) {
        hub.publishOp(op, seq, op.t !== 'set' && op.t !== 'del' && op.t !== 'clear' && ks.table.has(op.key))
      }
    }
  }

  /**
   * Follower: apply record `seq` of the writer's WAL, which is logged already, and publish
   * it like a commit. The same `Keyspace.apply` as replay and live writes.
   */
  applyFollowed(ops: readonly Op[], seq: number): void {
    this.#applyAll(ops, seq)
    this.seq = seq
  }

  /**
   * Follower: replace the whole state with `mt` at `seq` (open, or a rebuild after the writer
   * loaded a file or compacted past what the follower read). Watchers hear a `clear`, as for
   * a `load`, since the follower cannot tell them what changed.
   */
  resetFollowed(mt: Memtable, seq: number): void {
    this.#ks.install(mt)
    this.seq = seq
    if (this.#hub.size > 0) this.#hub.publish({ type: 'clear', key: '', version: seq })
  }

  /**
   * Commit `ops` and resolve with the last op's result. The result is read right after the
   * synchronous apply: a later call overwrites it before this promise settles.
   */
  commitFor<T>(ops: Op[]): Promise<T> {
    const done = this.commit(ops)
    return after(done, this.#lastResult as T)
  }
}
