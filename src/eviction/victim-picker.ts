// Which key to evict next, for each policy: Redis's sampling with a candidate pool for LRU
// and LFU (src/evict.c), a uniform random key for allkeys-random, and the exact soonest
// expiry (from the expiry heap) for volatile-ttl.
import type { Keyspace } from '../keyspace.js'
import { CandidatePool } from './candidate-pool.js'
import { isVolatile, type EvictionPolicy } from './policy.js'

/** Keys sampled per eviction (Redis `maxmemory-samples`). */
export const EVICTION_SAMPLES = 5

/** Rounds of sampling before giving up on finding a victim (all sampled keys refused). */
const ROUNDS = 8

/**
 * Picks eviction victims from a keyspace under one policy.
 *
 * LRU/LFU: each pick samples {@link EVICTION_SAMPLES} keys (of all keys, or of keys with an
 * expiry for `volatile-*`), offers them to a pool of the 16 best candidates seen so far and
 * takes the best one still valid. A candidate whose stamp changed since it was pooled (it
 * was read or rewritten) is scored again before it can be taken.
 */
export class VictimPicker {
  readonly #ks: Keyspace
  readonly #policy: EvictionPolicy
  readonly #pool = new CandidatePool()

  constructor(ks: Keyspace, policy: EvictionPolicy) {
    this.#ks = ks
    this.#policy = policy
  }

  /** The next key to evict that `skip` does not refuse, or `undefined` when there is none. */
  next(skip: (key: string) => boolean): string | undefined {
    const ks = this.#ks
    switch (this.#policy) {
      case 'noeviction':
        return undefined
      case 'volatile-ttl':
        return ks.soonestExpiringKey(skip)
      case 'allkeys-random':
        for (let i = 0; i < ROUNDS * EVICTION_SAMPLES; i++) {
          const key = ks.randomKey()
          if (key === undefined) return undefined
          if (!skip(key)) return key
        }
        return undefined
      default:
        return this.#sampled(skip)
    }
  }

  #sampled(skip: (key: string) => boolean): string | undefined {
    const ks = this.#ks
    const access = ks.access
    if (access === undefined) return undefined
    const volatile = isVolatile(this.#policy)
    const pool = this.#pool
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < EVICTION_SAMPLES; i++) {
        const key = volatile ? ks.randomExpiringKey(EVICTION_SAMPLES) : ks.randomKey()
        if (key === undefined) break
        if (skip(key)) continue
        const stamp = access.stampOf(key)
        pool.offer(key, access.scoreOf(stamp), stamp)
      }
      for (let c = pool.take(); c !== undefined; c = pool.take()) {
        const { key, stamp } = c
        if (skip(key) || ks.entryBytes(key) === 0 || (volatile && !ks.hasExpiry(key))) continue
        const now = access.stampOf(key)
        if (now !== stamp) {
          pool.offer(key, access.scoreOf(now), now)
          continue
        }
        return key
      }
    }
    return undefined
  }
}
