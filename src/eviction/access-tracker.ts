// Per-key access stamps for approximate LRU and LFU: one Map value per key, updated in O(1)
// on every read and write, with no list to splice. Eviction compares stamps of sampled keys.
import type { Clock } from '../clock.js'
import { LFU_INIT, LFU_MAX, lfuDecayed, lfuIncremented, lfuStamp } from './lfu-counter.js'

const MS_PER_MINUTE = 60_000

/**
 * Access stamps of one keyspace.
 *
 * LRU: a logical clock bumped by every access, so stamps order keys exactly by recency.
 * LFU: Redis's logarithmic counter with decay ({@link lfuIncremented}, {@link lfuDecayed}).
 * A key without a stamp (present before the policy was chosen, or loaded from a snapshot)
 * counts as the coldest.
 */
export class AccessTracker {
  readonly kind: 'lru' | 'lfu'
  readonly #clock: Clock
  readonly #stamps = new Map<string, number>()
  #tick = 0

  constructor(kind: 'lru' | 'lfu', clock: Clock) {
    this.kind = kind
    this.#clock = clock
  }

  /** Number of keys with a stamp. */
  get size(): number {
    return this.#stamps.size
  }

  /** Record an access to `key` (a read, or a write that keeps or creates it). */
  touch(key: string): void {
    if (this.kind === 'lru') {
      this.#stamps.set(key, ++this.#tick)
      return
    }
    const minute = Math.floor(this.#clock.now() / MS_PER_MINUTE)
    const old = this.#stamps.get(key)
    const counter = old === undefined ? LFU_INIT : lfuIncremented(lfuDecayed(old, minute), Math.random())
    this.#stamps.set(key, lfuStamp(counter, minute))
  }

  /** The key is gone. */
  forget(key: string): void {
    this.#stamps.delete(key)
  }

  /** Every key is gone. */
  clear(): void {
    this.#stamps.clear()
  }

  /** The raw stamp of `key` (0 when it has none): changes whenever the key is accessed. */
  stampOf(key: string): number {
    return this.#stamps.get(key) ?? 0
  }

  /**
   * How good a victim a key with `stamp` (from {@link AccessTracker.stampOf}) is: higher evicts
   * first. LRU: accesses since the key's last one (idle time on the logical clock); LFU:
   * `255 − decayed counter`.
   */
  scoreOf(stamp: number): number {
    if (this.kind === 'lru') return this.#tick - stamp
    if (stamp === 0) return LFU_MAX
    return LFU_MAX - lfuDecayed(stamp, Math.floor(this.#clock.now() / MS_PER_MINUTE))
  }
}
