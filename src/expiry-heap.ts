/**
 * Min-heap of (expiresAt, key) used by active expiry to find the next keys due.
 *
 * Entries are never removed when a key's expiry changes or the key goes away; the
 * sweeper checks each popped entry against the memtable (lazy deletion). Parallel
 * arrays keep it allocation-free per entry.
 */
export class ExpiryHeap {
  #times: number[] = []
  #keys: string[] = []

  /** Number of entries, stale ones included. */
  get size(): number {
    return this.#times.length
  }

  /** Earliest expiry time in the heap, or `Infinity` when empty. */
  peekTime(): number {
    return this.#times.length === 0 ? Infinity : (this.#times[0] as number)
  }

  push(expiresAt: number, key: string): void {
    const times = this.#times
    const keys = this.#keys
    let i = times.length
    times.push(expiresAt)
    keys.push(key)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pt = times[parent] as number
      // Stryker disable next-line EqualityOperator: equivalent, `<` only also moves an equal time up, and equal times may sit in either order
      if (pt <= expiresAt) break
      times[i] = pt
      keys[i] = keys[parent] as string
      i = parent
    }
    times[i] = expiresAt
    keys[i] = key
  }

  /** Remove and return the key with the earliest time; call only when `size > 0`. */
  pop(): string {
    const times = this.#times
    const keys = this.#keys
    const top = keys[0] as string
    const lastT = times.pop() as number
    const lastK = keys.pop() as string
    const n = times.length
    if (n > 0) siftDown(times, keys, 0, lastT, lastK, n)
    return top
  }

  /** Key of the entry at heap slot `i` (`0 <= i < size`), for random sampling; may be stale. */
  keyAt(i: number): string {
    return this.#keys[i] as string
  }

  /** Time of the entry at heap slot `i` (`0 <= i < size`). */
  timeAt(i: number): number {
    return this.#times[i] as number
  }

  clear(): void {
    this.#times = []
    this.#keys = []
  }

  /** Replace the contents with `entries` ([key, expiresAt]) in O(n) (bottom-up heapify). */
  rebuild(entries: Iterable<readonly [string, number]>): void {
    const times: number[] = []
    const keys: string[] = []
    for (const [key, time] of entries) {
      times.push(time)
      keys.push(key)
    }
    const n = times.length
    for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(times, keys, i, times[i] as number, keys[i] as string, n)
    this.#times = times
    this.#keys = keys
  }
}

/** Place (t, k) at slot `i` or below it, moving smaller children up: the heap's sift-down over `n` slots. */
function siftDown(times: number[], keys: string[], i: number, t: number, k: string, n: number): void {
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    // Stryker disable next-line ConditionalExpression,EqualityOperator,ArithmeticOperator: equivalent, `c + 1 < n` -> true / `<= n` / `c - 1 < n` only add a look at times[n], past the end (undefined < x is false); `<=` between the children picks either of two equal ones
    if (c + 1 < n && (times[c + 1] as number) < (times[c] as number)) c++
    // Stryker disable next-line EqualityOperator: equivalent, `>` only also moves a child equal to t up, and equal times may sit in either order
    if ((times[c] as number) >= t) break
    times[i] = times[c] as number
    keys[i] = keys[c] as string
    i = c
  }
  times[i] = t
  keys[i] = k
}
