// The memory budget: admits or refuses each live write against `maxMemoryBytes`, picks the
// keys to evict under the policy, and keeps the budget while WAL replay fills the keyspace.
// Evictions are ordinary deletes logged through the commit funnel, so replay after a crash
// reproduces exactly the state that was served.
import type { Op } from './codec/ops.js'
import { StoreError } from './errors.js'
import { stampKind, type EvictionPolicy } from './eviction/policy.js'
import { VictimPicker } from './eviction/victim-picker.js'
import type { Keyspace } from './keyspace.js'

/** Deletes per record when the evictions of a replay are logged at open. */
const REPLAY_DELS_PER_RECORD = 4096

const NEVER_SKIP = (): boolean => false

/** Most deletes in one record when {@link MemoryBudget.enforce} evicts. */
const ENFORCE_BATCH = 256

/** How the budget reaches the rest of the store (wired by `store.ts`). */
export interface BudgetHost {
  /** Log and apply deletes of `keys` as one record, published with reason `'evicted'`. */
  evict(keys: readonly string[]): void
  /** Remove keys whose expiry has passed (telling watchers), before anything is evicted. */
  purgeExpired(): void
  /** Log deletes of keys already removed from memory; resolves when durable. */
  logRemoved(ops: Op[]): Promise<void>
}

/**
 * `maxMemoryBytes` and `evictionPolicy` of one store, and what they decide.
 *
 * Invariant: after every live write that {@link MemoryBudget.admit} let through,
 * `memoryBytes <= maxBytes`, except when the budget was lowered (or a load replaced the
 * contents) and the policy cannot evict: then only writes that add no bytes pass.
 */
export class MemoryBudget {
  readonly #ks: Keyspace
  readonly #host: BudgetHost
  #max: number
  #policy: EvictionPolicy
  #picker: VictimPicker
  /** Keys evicted during the current replay, absent from memory, not yet logged as deletes. */
  #replayEvicted = new Set<string>()
  /** Keys evicted since open (replay included). */
  evictedKeys = 0

  constructor(ks: Keyspace, host: BudgetHost, maxBytes: number, policy: EvictionPolicy) {
    this.#ks = ks
    this.#host = host
    this.#max = maxBytes
    this.#policy = policy
    this.#picker = new VictimPicker(ks, policy)
    ks.trackAccess(maxBytes > 0 ? stampKind(policy) : undefined)
  }

  /** The budget in bytes; 0 = none. */
  get maxBytes(): number {
    return this.#max
  }

  get policy(): EvictionPolicy {
    return this.#policy
  }

  /** Change the budget and policy (arguments already checked). Takes effect at the next write. */
  configure(maxBytes: number, policy: EvictionPolicy): void {
    if (policy !== this.#policy) this.#picker = new VictimPicker(this.#ks, policy)
    this.#max = maxBytes
    this.#policy = policy
    this.#ks.trackAccess(maxBytes > 0 ? stampKind(policy) : undefined)
  }

  /**
   * Let `ops` through, evicting first when they would take `memoryBytes` past the budget.
   * Runs synchronously before the ops are logged.
   * @throws {@link StoreError} `KV_OUT_OF_MEMORY` when they would not fit (under
   *   `'noeviction'`, or when the policy finds too few keys to evict); nothing is evicted then.
   */
  admit(ops: readonly Op[]): void {
    const max = this.#max
    if (max === 0) return
    const ks = this.#ks
    // Far from the limit, the cheap bound decides; near it, the exact growth.
    const bound = ks.growthBound(ops)
    if (bound === 0 || ks.memoryBytes + bound <= max) return
    const growth = ks.growthOf(ops)
    if (growth <= 0 || ks.memoryBytes + growth <= max) return
    if (ks.hasDue) {
      this.#host.purgeExpired()
      if (ks.memoryBytes + growth <= max) return
    }
    if (this.#policy === 'noeviction' || growth > max) throw this.#outOfMemory(growth)
    const touched = touchedKeys(ops)
    const victims: string[] = []
    const chosen = new Set<string>()
    const skip = (key: string): boolean => chosen.has(key) || touched(key)
    let freed = 0
    while (ks.memoryBytes - freed + growth > max) {
      const key = this.#picker.next(skip)
      if (key === undefined) {
        ks.reindexExpiry(victims)
        throw this.#outOfMemory(growth)
      }
      victims.push(key)
      chosen.add(key)
      freed += ks.entryBytes(key)
    }
    this.#host.evict(victims)
    this.evictedKeys += victims.length
  }

  /**
   * Evict until `memoryBytes` is within the budget, through the log (after a load or a
   * lower budget). Under `'noeviction'` nothing happens.
   */
  enforce(): void {
    const ks = this.#ks
    if (this.#max === 0 || ks.memoryBytes <= this.#max) return
    if (ks.hasDue) this.#host.purgeExpired()
    // In records of at most ENFORCE_BATCH deletes: a budget cut in half may evict millions of
    // keys, and the keys chosen for one record are skipped by the picker until it is applied.
    while (ks.memoryBytes > this.#max) {
      const victims: string[] = []
      const chosen = new Set<string>()
      const skip = (key: string): boolean => chosen.has(key)
      let freed = 0
      while (ks.memoryBytes - freed > this.#max && victims.length < ENFORCE_BATCH) {
        const key = this.#picker.next(skip)
        if (key === undefined) break
        victims.push(key)
        chosen.add(key)
        freed += ks.entryBytes(key)
      }
      if (victims.length === 0) return
      this.#host.evict(victims)
      this.evictedKeys += victims.length
    }
  }

  // ------------------------------------------------------------ replay

  /**
   * Apply one replayed op. An op on a key this replay evicted is skipped unless it is a
   * `set` (which rewrites the key whole, so the result is the same with or without the
   * eviction): the key stays evicted, and {@link MemoryBudget.logReplayEvictions} logs its delete.
   */
  replayApply(op: Op, seq: number): void {
    const evicted = this.#replayEvicted
    if (evicted.size > 0) {
      if (op.t === 'clear') evicted.clear()
      else if (evicted.has(op.key)) {
        if (op.t !== 'set') return
        evicted.delete(op.key)
      }
    }
    this.#ks.apply(op, seq)
  }

  /**
   * After a replayed record or an installed snapshot: evict (in memory only) while over the
   * budget, so replay never holds much more than the budget. The evicted keys are logged as
   * deletes once the store is open.
   */
  replaySettle(): void {
    const ks = this.#ks
    const max = this.#max
    if (max === 0 || this.#policy === 'noeviction' || ks.memoryBytes <= max) return
    const evicted = this.#replayEvicted
    while (ks.memoryBytes > max) {
      const key = this.#picker.next(NEVER_SKIP)
      if (key === undefined) return
      ks.apply({ t: 'del', key }, 0)
      evicted.add(key)
      this.evictedKeys++
    }
  }

  /** Replay starts again from the base snapshot: what it evicted so far is back. */
  replayRestart(): void {
    this.evictedKeys = 0
    this.#replayEvicted = new Set()
  }

  /**
   * Log a delete for every key replay evicted (all absent from memory now), so the next
   * replay, under any budget, yields the state this one served. Resolves when durable.
   */
  async logReplayEvictions(): Promise<void> {
    const keys = [...this.#replayEvicted]
    this.#replayEvicted = new Set()
    const done: Promise<void>[] = []
    for (let i = 0; i < keys.length; i += REPLAY_DELS_PER_RECORD) {
      done.push(this.#host.logRemoved(keys.slice(i, i + REPLAY_DELS_PER_RECORD).map((key) => ({ t: 'del', key }))))
    }
    await Promise.all(done)
  }

  #outOfMemory(growth: number): StoreError {
    return new StoreError(
      'KV_OUT_OF_MEMORY',
      `write of ~${growth} bytes does not fit: memoryBytes ${this.#ks.memoryBytes} of maxMemoryBytes ${this.#max} (evictionPolicy '${this.#policy}')`,
    )
  }
}

/** Whether a key is written by `ops` (such keys are never evicted to make room for them). */
function touchedKeys(ops: readonly Op[]): (key: string) => boolean {
  if (ops.length === 1) {
    const op = ops[0] as Op
    const only = op.t === 'clear' ? undefined : op.key
    return (key) => key === only
  }
  const keys = new Set<string>()
  for (const op of ops) if (op.t !== 'clear') keys.add(op.key)
  return (key) => keys.has(key)
}
