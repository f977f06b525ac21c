// The eviction policies, with Redis's names and meanings.

/**
 * What a store under `maxMemoryBytes` does when a write would exceed it (Redis `maxmemory-policy`).
 *
 * - `'noeviction'`: the write fails with `KV_OUT_OF_MEMORY`; reads and deletes keep working.
 * - `'allkeys-lru'` / `'volatile-lru'`: evict the least recently used key (of all keys / of keys with a TTL).
 * - `'allkeys-lfu'` / `'volatile-lfu'`: evict the least frequently used key (logarithmic counter with decay).
 * - `'volatile-ttl'`: evict the key with a TTL that expires soonest.
 * - `'allkeys-random'`: evict a random key.
 *
 * LRU and LFU are approximated by sampling, as Redis does (README "Memory and eviction").
 */
export type EvictionPolicy = 'noeviction' | 'allkeys-lru' | 'volatile-lru' | 'allkeys-lfu' | 'volatile-lfu' | 'volatile-ttl' | 'allkeys-random'

/** Every {@link EvictionPolicy}, in the order the README lists them. */
export const EVICTION_POLICIES: readonly EvictionPolicy[] = [
  'noeviction', 'allkeys-lru', 'volatile-lru', 'allkeys-lfu', 'volatile-lfu', 'volatile-ttl', 'allkeys-random',
]

/** Which per-key access stamp a policy needs: a recency clock, a frequency counter, or none. */
export function stampKind(policy: EvictionPolicy): 'lru' | 'lfu' | undefined {
  if (policy === 'allkeys-lru' || policy === 'volatile-lru') return 'lru'
  if (policy === 'allkeys-lfu' || policy === 'volatile-lfu') return 'lfu'
  return undefined
}

/** Whether a policy only evicts keys that carry an expiry. */
export function isVolatile(policy: EvictionPolicy): boolean {
  return policy.startsWith('volatile-')
}
