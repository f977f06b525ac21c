// The store's internal collection values. Elements and field values are never
// collections themselves. `epoch` supports copy-on-write: the store clones a
// collection whose epoch differs from the memtable's before mutating it, so a
// snapshot or transaction that still holds the old object keeps seeing old contents.

const MIN_CAPACITY = 4

/**
 * A list value: a deque with amortised O(1) push and pop at both ends.
 *
 * Backed by a power-of-two ring buffer that doubles when full and halves when a
 * quarter full, so memory stays proportional to the length.
 */
export class KvList implements Iterable<unknown> {
  /** Copy-on-write generation; the store compares it with the memtable's. */
  epoch: number
  #buf: unknown[]
  #mask: number
  #head = 0
  #len = 0

  /** A list holding `values` in order. O(n). */
  constructor(values: Iterable<unknown> = [], epoch = 0) {
    this.epoch = epoch
    const items = Array.isArray(values) ? (values as unknown[]) : [...values]
    const cap = capacityFor(items.length)
    this.#buf = new Array<unknown>(cap)
    for (let i = 0; i < items.length; i++) this.#buf[i] = items[i]
    this.#mask = cap - 1
    this.#len = items.length
  }

  /** Number of elements. */
  get length(): number {
    return this.#len
  }

  /** Append at the tail (RPUSH); returns the new length. Amortised O(1). */
  pushRight(value: unknown): number {
    if (this.#len === this.#buf.length) this.#resize(this.#buf.length * 2)
    this.#buf[(this.#head + this.#len) & this.#mask] = value
    return ++this.#len
  }

  /** Insert at the head (LPUSH); returns the new length. Amortised O(1). */
  pushLeft(value: unknown): number {
    if (this.#len === this.#buf.length) this.#resize(this.#buf.length * 2)
    this.#head = (this.#head - 1) & this.#mask
    this.#buf[this.#head] = value
    return ++this.#len
  }

  /** Remove and return the head element; `undefined` when empty. Amortised O(1). */
  popLeft(): unknown {
    if (this.#len === 0) return undefined
    const v = this.#buf[this.#head]
    this.#buf[this.#head] = undefined
    this.#head = (this.#head + 1) & this.#mask
    this.#len--
    this.#maybeShrink()
    return v
  }

  /** Remove and return the tail element; `undefined` when empty. Amortised O(1). */
  popRight(): unknown {
    if (this.#len === 0) return undefined
    const i = (this.#head + this.#len - 1) & this.#mask
    const v = this.#buf[i]
    this.#buf[i] = undefined
    this.#len--
    this.#maybeShrink()
    return v
  }

  /** Element at `index` (negative counts from the tail, as LINDEX); `undefined` out of range. O(1). */
  at(index: number): unknown {
    const i = index < 0 ? this.#len + index : index
    if (!(i >= 0 && i < this.#len)) return undefined
    return this.#buf[(this.#head + i) & this.#mask]
  }

  /** Replace the element at `index` (negative counts from the tail, as LSET); false when out of range. O(1). */
  set(index: number, value: unknown): boolean {
    const i = index < 0 ? this.#len + index : index
    if (!(Number.isInteger(i) && i >= 0 && i < this.#len)) return false
    this.#buf[(this.#head + i) & this.#mask] = value
    return true
  }

  /**
   * Elements from `start` to `stop` inclusive, with LRANGE rules.
   *
   * Negative indices count from the tail (-1 = last); out-of-range indices are
   * clamped; `start` past the end or after `stop` gives `[]`. O(returned).
   */
  range(start: number, stop: number): unknown[] {
    const [from, to] = this.#normalize(start, stop)
    const out = new Array<unknown>(Math.max(0, to - from + 1))
    for (let i = from; i <= to; i++) out[i - from] = this.#buf[(this.#head + i) & this.#mask]
    return out
  }

  /**
   * Keep only the elements from `start` to `stop` inclusive, with LTRIM rules (the
   * same index rules as {@link KvList.range}; an empty range empties the list).
   * O(min(kept, removed)).
   */
  trim(start: number, stop: number): void {
    const [from, to] = this.#normalize(start, stop)
    const kept = to - from + 1
    if (kept <= 0) {
      this.#buf = new Array<unknown>(MIN_CAPACITY)
      this.#mask = MIN_CAPACITY - 1
      this.#head = 0
      this.#len = 0
      return
    }
    if (kept < this.#len - kept) {
      this.#replace(this.range(from, to))
      return
    }
    const dropTail = this.#len - 1 - to
    for (let i = 0; i < from; i++) {
      this.#buf[this.#head] = undefined
      this.#head = (this.#head + 1) & this.#mask
    }
    for (let i = 0; i < dropTail; i++) this.#buf[(this.#head + kept + i) & this.#mask] = undefined
    this.#len = kept
    this.#maybeShrink()
  }

  /** A copy with the same elements (elements are immutable values, so shallow). O(n). */
  clone(epoch = this.epoch): KvList {
    return new KvList(this.toArray(), epoch)
  }

  /** The elements as a new array, head first. O(n). */
  toArray(): unknown[] {
    return this.range(0, -1)
  }

  /** Iterate head to tail. The list must not be mutated during iteration. */
  *[Symbol.iterator](): Iterator<unknown> {
    for (let i = 0; i < this.#len; i++) yield this.#buf[(this.#head + i) & this.#mask]
  }

  // Redis index rules; returns [from, to] with to < from meaning empty.
  #normalize(start: number, stop: number): [number, number] {
    const n = this.#len
    let from = start < 0 ? n + start : start
    let to = stop < 0 ? n + stop : stop
    if (from < 0) from = 0
    if (to >= n) to = n - 1
    if (from > to || from >= n) return [0, -1]
    return [from, to]
  }

  #replace(items: unknown[]): void {
    const cap = capacityFor(items.length)
    const buf = new Array<unknown>(cap)
    for (let i = 0; i < items.length; i++) buf[i] = items[i]
    this.#buf = buf
    this.#mask = cap - 1
    this.#head = 0
    this.#len = items.length
  }

  #resize(cap: number): void {
    const buf = new Array<unknown>(cap)
    for (let i = 0; i < this.#len; i++) buf[i] = this.#buf[(this.#head + i) & this.#mask]
    this.#buf = buf
    this.#mask = cap - 1
    this.#head = 0
  }

  #maybeShrink(): void {
    // Shrink at a quarter (not half) so alternating push/pop at the boundary cannot thrash.
    const cap = this.#buf.length
    if (cap > 16 && this.#len < cap >>> 2) this.#resize(cap >>> 1)
  }
}

function capacityFor(n: number): number {
  let cap = MIN_CAPACITY
  while (cap < n) cap *= 2
  return cap
}

/**
 * A hash value: string fields to values, in insertion order.
 *
 * Backed by a `Map`, never a plain object, so `__proto__` and `constructor` are
 * ordinary fields. All operations are O(1) except iteration and `clone` (O(n)).
 */
export class KvHash implements Iterable<[string, unknown]> {
  /** Copy-on-write generation; the store compares it with the memtable's. */
  epoch: number
  #map: Map<string, unknown>

  /** A hash holding `entries` (later duplicates win, keeping the first position). O(n). */
  constructor(entries: Iterable<readonly [string, unknown]> = [], epoch = 0) {
    this.epoch = epoch
    this.#map = new Map(entries)
  }

  /** Number of fields. */
  get size(): number {
    return this.#map.size
  }

  /** The value of `field`, or `undefined` when absent. */
  get(field: string): unknown {
    return this.#map.get(field)
  }

  /** True when `field` exists. */
  has(field: string): boolean {
    return this.#map.has(field)
  }

  /** Set `field`; returns true when the field is new (HSET counts those). */
  set(field: string, value: unknown): boolean {
    const isNew = !this.#map.has(field)
    this.#map.set(field, value)
    return isNew
  }

  /** Remove `field`; returns true when it existed. */
  delete(field: string): boolean {
    return this.#map.delete(field)
  }

  /** `[field, value]` pairs in insertion order. */
  entries(): IterableIterator<[string, unknown]> {
    return this.#map.entries()
  }

  /** Field names in insertion order. */
  keys(): IterableIterator<string> {
    return this.#map.keys()
  }

  /** Values in insertion order. */
  values(): IterableIterator<unknown> {
    return this.#map.values()
  }

  /** A copy with the same fields in the same order (values are immutable, so shallow). O(n). */
  clone(epoch = this.epoch): KvHash {
    return new KvHash(this.#map, epoch)
  }

  /** Same as {@link KvHash.entries}. */
  [Symbol.iterator](): IterableIterator<[string, unknown]> {
    return this.#map.entries()
  }
}
