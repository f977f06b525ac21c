// Redis's eviction pool (src/evict.c, EVPOOL_SIZE): the best victims seen in past samples
// are kept between evictions, so sampling 5 keys per eviction approaches the exact order.

/** Candidates kept between evictions. */
export const POOL_SIZE = 16

/**
 * The best eviction candidates seen so far, sorted by score (highest last).
 *
 * Entries may be stale (the key was read, rewritten or deleted since): the caller checks
 * each one it takes against the live stamp and drops or re-offers it.
 */
export class CandidatePool {
  readonly #keys: string[] = []
  readonly #scores: number[] = []
  readonly #stamps: number[] = []

  /** Number of candidates held. */
  get size(): number {
    return this.#keys.length
  }

  /** Offer `key` with its `score` and the stamp it was scored at; kept when it beats the worst held (or there is room). */
  offer(key: string, score: number, stamp: number): void {
    const keys = this.#keys
    const scores = this.#scores
    const stamps = this.#stamps
    const at = keys.indexOf(key)
    if (at >= 0) {
      keys.splice(at, 1)
      scores.splice(at, 1)
      stamps.splice(at, 1)
    }
    if (keys.length >= POOL_SIZE) {
      if (score <= (scores[0] as number)) return
      keys.shift()
      scores.shift()
      stamps.shift()
    }
    let i = keys.length
    while (i > 0 && (scores[i - 1] as number) > score) i--
    keys.splice(i, 0, key)
    scores.splice(i, 0, score)
    stamps.splice(i, 0, stamp)
  }

  /** Remove and return the best candidate with the stamp it was scored at, or `undefined` when empty. */
  take(): { key: string; stamp: number } | undefined {
    const key = this.#keys.pop()
    if (key === undefined) return undefined
    this.#scores.pop()
    return { key, stamp: this.#stamps.pop() as number }
  }

  /** Drop every candidate (the policy changed). */
  clear(): void {
    this.#keys.length = 0
    this.#scores.length = 0
    this.#stamps.length = 0
  }
}
