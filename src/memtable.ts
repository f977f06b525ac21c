// The in-memory table: a sorted list of bounded sorted chunks (as Python's
// sortedcontainers does), with parallel arrays instead of per-entry objects.
//
// Invariants:
// - keys across chunks are sorted and unique; no chunk is empty;
// - maxes[i] is the last key of chunks[i];
// - a chunk whose epoch differs from the table's current epoch may be shared with a
//   view and is cloned before it is changed (copy-on-write);
// - exps is null until a key in that chunk gets an expiry.

import { lowerBound, upperBound } from './lower-bound.js'

/** Bounds of an ordered walk. Lower bounds: `gt`/`gte`; upper: `lt`/`lte`. */
export interface RangeBounds {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  /** Walk from the upper end down. */
  reverse?: boolean
}

/** Ordered cursor; call `next()` before reading the first entry. */
export interface MemtableCursor {
  /** Advance; false when the range is exhausted. */
  next(): boolean
  readonly key: string
  readonly value: unknown
  readonly version: number
  /** Absolute expiry in ms, 0 = none. */
  readonly expiresAt: number
}

/** Read access shared by {@link Memtable} and {@link MemtableView}. */
export interface MemtableReader {
  readonly size: number
  /** Entries whose expiresAt is non-zero (lets callers skip expiry checks). */
  readonly expiringCount: number
  /** Position of `key`, or -1. Valid until the next mutation (for a view: forever). */
  indexOf(key: string): number
  keyAt(pos: number): string
  valueAt(pos: number): unknown
  versionAt(pos: number): number
  /** Expiry at a position, 0 = none. */
  expiresAtAt(pos: number): number
  /** Value of `key`, or `undefined`. O(1) expected on a live Memtable (hash index), O(log n) on a view. */
  get(key: string): unknown
  /** Cursor over `bounds`; on a live memtable valid only until the next mutation. */
  cursor(bounds?: RangeBounds): MemtableCursor
  /** Visit entries in order; return `false` from `visit` to stop. */
  forEach(bounds: RangeBounds, visit: (key: string, value: unknown, version: number, expiresAt: number) => boolean | void): void
}

/** Positions encode chunk index and offset; chunks stay below this size. */
const POS_SHIFT = 65_536
const DEFAULT_LOAD = 512
/**
 * Pending writes are applied when they reach max(this, the table's size) with no ordered
 * read first. Relative to the size, so bulk inserts still cost one sort + merge, and the
 * buffer never holds more entries than the table (overwrites alone cannot grow memory).
 */
const DEFAULT_PENDING_LIMIT = 8192
/** A pending delete. Never a stored value: values are JSON, bytes or collections. */
const TOMBSTONE: unique symbol = Symbol('kvstore.tombstone')

/**
 * The hash index's entry for a key with an expiry: value and expiry behind one lookup, so a
 * TTL read or write costs one hash probe, not one in the index and one in a map of expiries.
 * Mutable: rewriting a key that already expires updates the box in place (no Map write, no
 * allocation). Never handed out: the index is private and `get` unwraps it.
 */
class Expiring {
  constructor(
    public value: unknown,
    public expiresAt: number,
  ) {}
}

class Chunk {
  keys: string[]
  vals: unknown[]
  vers: number[]
  exps: number[] | null
  epoch: number

  constructor(keys: string[], vals: unknown[], vers: number[], exps: number[] | null, epoch: number) {
    this.keys = keys
    this.vals = vals
    this.vers = vers
    this.exps = exps
    this.epoch = epoch
  }

  clone(epoch: number): Chunk {
    return new Chunk(this.keys.slice(), this.vals.slice(), this.vers.slice(), this.exps === null ? null : this.exps.slice(), epoch)
  }
}

class TableCursor implements MemtableCursor {
  key = ''
  value: unknown = undefined
  version = 0
  expiresAt = 0
  readonly #chunks: readonly Chunk[]
  readonly #reverse: boolean
  readonly #stopKey: string | undefined
  readonly #stopInclusive: boolean
  #ci: number
  #i: number
  #started = false
  #done = false

  constructor(chunks: readonly Chunk[], maxes: readonly string[], b: RangeBounds) {
    this.#chunks = chunks
    this.#reverse = b.reverse === true
    const n = chunks.length
    if (!this.#reverse) {
      // Start at the first key >= gte / > gt; stop past lt / lte.
      if (b.gte !== undefined && (b.gt === undefined || b.gte > b.gt)) {
        this.#ci = lowerBound(maxes, b.gte, 0, n)
        this.#i = this.#ci < n ? lowerBound((chunks[this.#ci] as Chunk).keys, b.gte, 0, (chunks[this.#ci] as Chunk).keys.length) : 0
      } else if (b.gt !== undefined) {
        this.#ci = upperBound(maxes, b.gt, 0, n)
        this.#i = this.#ci < n ? upperBound((chunks[this.#ci] as Chunk).keys, b.gt, 0, (chunks[this.#ci] as Chunk).keys.length) : 0
      } else {
        this.#ci = 0
        this.#i = 0
      }
      if (b.lt !== undefined && (b.lte === undefined || b.lt <= b.lte)) {
        this.#stopKey = b.lt
        this.#stopInclusive = false
      } else {
        this.#stopKey = b.lte
        this.#stopInclusive = true
      }
    } else {
      // Start at the last key <= lte / < lt; stop below gt / gte.
      let ci = n - 1
      let i = ci >= 0 ? (chunks[ci] as Chunk).keys.length - 1 : -1
      if (b.lt !== undefined && (b.lte === undefined || b.lt <= b.lte)) {
        ci = lowerBound(maxes, b.lt, 0, n)
        if (ci === n) ci = n - 1
        i = ci >= 0 ? lowerBound((chunks[ci] as Chunk).keys, b.lt, 0, (chunks[ci] as Chunk).keys.length) - 1 : -1
      } else if (b.lte !== undefined) {
        ci = lowerBound(maxes, b.lte, 0, n)
        if (ci === n) ci = n - 1
        i = ci >= 0 ? upperBound((chunks[ci] as Chunk).keys, b.lte, 0, (chunks[ci] as Chunk).keys.length) - 1 : -1
      }
      if (i < 0 && ci > 0) {
        ci--
        i = (chunks[ci] as Chunk).keys.length - 1
      }
      this.#ci = ci
      this.#i = i
      if (b.gt !== undefined && (b.gte === undefined || b.gt >= b.gte)) {
        this.#stopKey = b.gt
        this.#stopInclusive = false
      } else {
        this.#stopKey = b.gte
        this.#stopInclusive = true
      }
    }
  }

  next(): boolean {
    if (this.#done) return false
    const chunks = this.#chunks
    if (!this.#reverse) {
      if (this.#started) this.#i++
      this.#started = true
      let c = chunks[this.#ci]
      if (c !== undefined && this.#i >= c.keys.length) {
        this.#ci++
        this.#i = 0
        c = chunks[this.#ci]
      }
      if (c === undefined) return this.#end()
      const key = c.keys[this.#i] as string
      const stop = this.#stopKey
      if (stop !== undefined && (this.#stopInclusive ? key > stop : key >= stop)) return this.#end()
      return this.#load(c, key)
    }
    if (this.#started) this.#i--
    this.#started = true
    if (this.#i < 0) {
      this.#ci--
      const prev = chunks[this.#ci]
      if (prev === undefined) return this.#end()
      this.#i = prev.keys.length - 1
    }
    const c = chunks[this.#ci]
    if (c === undefined || this.#i < 0) return this.#end()
    const key = c.keys[this.#i] as string
    const stop = this.#stopKey
    if (stop !== undefined && (this.#stopInclusive ? key < stop : key <= stop)) return this.#end()
    return this.#load(c, key)
  }

  #load(c: Chunk, key: string): boolean {
    const i = this.#i
    this.key = key
    this.value = c.vals[i]
    this.version = c.vers[i] as number
    this.expiresAt = c.exps === null ? 0 : (c.exps[i] as number)
    return true
  }

  #end(): boolean {
    this.#done = true
    this.key = ''
    this.value = undefined
    return false
  }
}

/** Shared read side. Fields are protected (not #private) so both subclasses can use them. */
abstract class Table implements MemtableReader {
  protected chunks: Chunk[]
  protected maxes: string[]
  protected count: number
  protected expiring: number

  protected constructor(chunks: Chunk[], maxes: string[], count: number, expiring: number) {
    this.chunks = chunks
    this.maxes = maxes
    this.count = count
    this.expiring = expiring
  }

  get size(): number {
    return this.count
  }

  get expiringCount(): number {
    return this.expiring
  }

  indexOf(key: string): number {
    const maxes = this.maxes
    // Inlined binary searches: this is the hottest path of every read.
    let lo = 0
    let hi = maxes.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((maxes[mid] as string) < key) lo = mid + 1
      else hi = mid
    }
    if (lo === maxes.length) return -1
    const ci = lo
    const keys = (this.chunks[ci] as Chunk).keys
    lo = 0
    hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((keys[mid] as string) < key) lo = mid + 1
      else hi = mid
    }
    return keys[lo] === key ? ci * POS_SHIFT + lo : -1
  }

  keyAt(pos: number): string {
    return (this.chunks[Math.floor(pos / POS_SHIFT)] as Chunk).keys[pos % POS_SHIFT] as string
  }

  valueAt(pos: number): unknown {
    return (this.chunks[Math.floor(pos / POS_SHIFT)] as Chunk).vals[pos % POS_SHIFT]
  }

  versionAt(pos: number): number {
    return (this.chunks[Math.floor(pos / POS_SHIFT)] as Chunk).vers[pos % POS_SHIFT] as number
  }

  expiresAtAt(pos: number): number {
    const exps = (this.chunks[Math.floor(pos / POS_SHIFT)] as Chunk).exps
    return exps === null ? 0 : (exps[pos % POS_SHIFT] as number)
  }

  get(key: string): unknown {
    const pos = this.indexOf(key)
    return pos < 0 ? undefined : this.valueAt(pos)
  }

  cursor(bounds: RangeBounds = {}): MemtableCursor {
    return new TableCursor(this.chunks, this.maxes, bounds)
  }

  forEach(bounds: RangeBounds, visit: (key: string, value: unknown, version: number, expiresAt: number) => boolean | void): void {
    const cur = new TableCursor(this.chunks, this.maxes, bounds)
    while (cur.next()) if (visit(cur.key, cur.value, cur.version, cur.expiresAt) === false) return
  }
}

/** An immutable point-in-time copy of a {@link Memtable}, from `view()`. Costs O(chunks) to take. */
export class MemtableView extends Table {
  /** @internal */
  constructor(chunks: Chunk[], maxes: string[], count: number, expiring: number) {
    super(chunks, maxes, count, expiring)
  }
}

/**
 * Sorted in-memory table of keys with value, version and expiry.
 *
 * Point lookups and inserts cost two binary searches plus a splice inside one chunk of
 * at most `2 × chunkSize` entries; ordered walks start anywhere in O(log n). Not
 * thread-safe (nothing in JS is); callers serialise mutations.
 */
export class Memtable extends Table {
  readonly #load: number
  #epoch = 0
  #view: MemtableView | undefined
  readonly #pendingLimit: number
  // Point reads hash instead of searching: a binary search over a million keys costs
  // ~20 cache misses. Invariant: #index has every present key with its value, plus
  // #indexTombs (< #pendingLimit) keys mapped to TOMBSTONE, each with a pending delete. A
  // deleted key stays in the Map until the flush: V8's Map keeps a deleted entry in its
  // bucket chain until it rehashes, so deleting and re-adding one key (a queue that empties
  // and refills) would lengthen that chain by one per cycle, and every lookup of the key
  // with it. A key with a non-zero expiresAt maps to an Expiring box holding value and
  // expiry, so TTL checks need no position (and no flush) and no second map.
  #index = new Map<string, unknown>()
  #indexTombs = 0
  // Invariant: the number of Expiring boxes in #index (the inherited field serves views).
  #expiring = 0
  // Writes and deletes wait here, unsorted, until something needs order or positions: a
  // bulk of them then costs one sort + merge instead of a splice each. Overlaps the chunks;
  // the last entry of a key wins; a TOMBSTONE value removes the key. Invariant: fewer than
  // max(#pendingLimit, count + 1) entries, and the chunks + pending, applied in order,
  // equal #index.
  #pendKeys: string[] = []
  #pendVals: unknown[] = []
  #pendVers: number[] = []
  #pendExps: number[] = []

  constructor(options: { chunkSize?: number; pendingLimit?: number } = {}) {
    super([], [], 0, 0)
    const load = options.chunkSize ?? DEFAULT_LOAD
    if (!Number.isSafeInteger(load) || load < 2 || load * 2 >= POS_SHIFT) throw new RangeError(`chunkSize must be in [2, ${POS_SHIFT / 2})`)
    const limit = options.pendingLimit ?? DEFAULT_PENDING_LIMIT
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError('pendingLimit must be a positive integer')
    this.#load = load
    this.#pendingLimit = limit
  }

  /**
   * Build from sorted, unique keys in O(n). Precondition: `keys` strictly ascending
   * (checked unless `sortedChecked`). `exps` may be null when nothing expires.
   */
  static fromSorted(
    keys: string[],
    vals: unknown[],
    vers: number[],
    exps: number[] | null,
    options: { chunkSize?: number; pendingLimit?: number; sortedChecked?: boolean } = {},
  ): Memtable {
    const mt = new Memtable(options)
    const load = mt.#load
    // Callers that already verified the order (snapshot loading) skip the second pass.
    if (options.sortedChecked !== true) {
      for (let i = 1; i < keys.length; i++) {
        if (!((keys[i - 1] as string) < (keys[i] as string))) throw new RangeError('fromSorted needs strictly ascending keys')
      }
    }
    const index = mt.#index
    let expiring = 0
    if (exps === null) {
      for (let i = 0; i < keys.length; i++) index.set(keys[i] as string, vals[i])
    } else {
      for (let i = 0; i < keys.length; i++) {
        const e = exps[i] as number
        if (e === 0) index.set(keys[i] as string, vals[i])
        else {
          index.set(keys[i] as string, new Expiring(vals[i], e))
          expiring++
        }
      }
    }
    for (let start = 0; start < keys.length; start += load) {
      const end = Math.min(start + load, keys.length)
      const e = exps === null || expiring === 0 ? null : exps.slice(start, end)
      mt.chunks.push(new Chunk(keys.slice(start, end), vals.slice(start, end), vers.slice(start, end), e, 0))
      mt.maxes.push(keys[end - 1] as string)
    }
    mt.count = keys.length
    mt.#expiring = expiring
    return mt
  }

  /** Copy-on-write epoch; a chunk or collection from another epoch may be shared with a view. */
  get epoch(): number {
    return this.#epoch
  }

  override get(key: string): unknown {
    const v = this.#index.get(key)
    if (v instanceof Expiring) return v.value
    return v === TOMBSTONE ? undefined : v
  }

  /**
   * The value at `key` when present and not expired at `now` (ms), else undefined: what
   * `get` plus an expiry check answer, in one hash probe. O(1) expected, no flush.
   */
  getUnexpired(key: string, now: number): unknown {
    const v = this.#index.get(key)
    if (v instanceof Expiring) return v.expiresAt > now ? v.value : undefined
    return v === TOMBSTONE ? undefined : v
  }

  /** Whether `key` is present and not expired at `now` (ms): `has` plus an expiry check in one hash probe. */
  hasUnexpired(key: string, now: number): boolean {
    const v = this.#index.get(key)
    if (v instanceof Expiring) return v.expiresAt > now
    return v !== undefined && v !== TOMBSTONE
  }

  /** Whether `key` is present, O(1) expected. */
  has(key: string): boolean {
    const v = this.#index.get(key)
    return v !== undefined && v !== TOMBSTONE
  }

  /** Writes and deletes not yet applied to the sorted chunks (fewer than max(pending limit, size + 1)). @internal */
  get pendingWrites(): number {
    return this.#pendKeys.length
  }

  /**
   * Every present key with an expiry, with it ([key, expiresAt]), in no particular order.
   * O(size): it walks the whole index (checks and tests; the expiry heap keeps its own list).
   */
  *expiries(): IterableIterator<[string, number]> {
    if (this.#expiring === 0) return
    for (const [key, v] of this.#index) if (v instanceof Expiring) yield [key, v.expiresAt]
  }

  /** Expiry of `key` in ms, 0 when it has none or is absent. O(1) expected, no flush. */
  expiresAtOf(key: string): number {
    if (this.#expiring === 0) return 0
    const v = this.#index.get(key)
    return v instanceof Expiring ? v.expiresAt : 0
  }

  /**
   * Insert or replace. Returns true when the key was new. O(1) expected: the sorted
   * chunks catch up when order or a position is next needed.
   */
  set(key: string, value: unknown, version: number, expiresAt: number): boolean {
    this.#touch()
    const isNew = this.#indexPut(key, value, expiresAt)
    if (isNew) this.count++
    this.#pend(key, value, version, expiresAt)
    return isNew
  }

  /** Point `key` at `value` (boxed with `expiresAt` when non-zero) in the index; true when it was absent. */
  #indexPut(key: string, value: unknown, expiresAt: number): boolean {
    const index = this.#index
    if (expiresAt === 0 && this.#expiring === 0 && this.#indexTombs === 0) {
      // The hot path without TTLs: one probe, the size tells whether the key was new.
      const before = index.size
      index.set(key, value)
      return index.size !== before
    }
    const old = index.get(key)
    if (old instanceof Expiring) {
      if (expiresAt !== 0) {
        old.value = value
        old.expiresAt = expiresAt
        return false
      }
      this.#expiring--
      index.set(key, value)
      return false
    }
    if (expiresAt !== 0) {
      index.set(key, new Expiring(value, expiresAt))
      this.#expiring++
    } else index.set(key, value)
    if (old === TOMBSTONE) {
      this.#indexTombs--
      return true
    }
    return old === undefined
  }

  /** Remove `key`; true when it was there. O(1) expected, like {@link Memtable.set}. */
  delete(key: string): boolean {
    return this.take(key) !== undefined
  }

  /**
   * Remove `key` and return the value it held (expired or not), or undefined when absent:
   * `get` and `delete` in one hash probe. O(1) expected, like {@link Memtable.set}.
   */
  take(key: string): unknown {
    const index = this.#index
    const old = index.get(key)
    if (old === undefined || old === TOMBSTONE) return undefined
    index.set(key, TOMBSTONE)
    this.#indexTombs++
    this.#touch()
    let value: unknown = old
    if (old instanceof Expiring) {
      this.#expiring--
      value = old.value
    }
    this.count--
    this.#pend(key, TOMBSTONE, 0, 0)
    // Deleted keys held in the index cost memory and slow its growth: apply them in bulk.
    if (this.#indexTombs >= this.#pendingLimit) this.#flush()
    return value
  }

  #pend(key: string, value: unknown, version: number, expiresAt: number): void {
    const keys = this.#pendKeys
    const last = keys.length - 1
    // The same key again (a counter, a queue that empties and refills): replace in place,
    // so one hot key never grows the buffer.
    if (last >= 0 && keys[last] === key) {
      this.#pendVals[last] = value
      this.#pendVers[last] = version
      this.#pendExps[last] = expiresAt
      return
    }
    keys.push(key)
    this.#pendVals.push(value)
    this.#pendVers.push(version)
    this.#pendExps.push(expiresAt)
    if (keys.length >= this.#pendingLimit && keys.length >= this.count) this.#flush()
  }

  /** Remove one pending delete's key from the chunks by binary search, when there. */
  #deleteSorted(key: string): void {
    const maxes = this.maxes
    const ci = lowerBound(maxes, key, 0, maxes.length)
    if (ci === maxes.length) return
    let c = this.chunks[ci] as Chunk
    const i = lowerBound(c.keys, key, 0, c.keys.length)
    if (c.keys[i] !== key) return
    if (c.epoch !== this.#epoch) c = this.#own(ci)
    c.keys.splice(i, 1)
    c.vals.splice(i, 1)
    c.vers.splice(i, 1)
    if (c.exps !== null) c.exps.splice(i, 1)
    if (c.keys.length === 0) {
      this.chunks.splice(ci, 1)
      this.maxes.splice(ci, 1)
      return
    }
    if (i === c.keys.length) this.maxes[ci] = c.keys[i - 1] as string
    if (c.keys.length < this.#load >> 2 && this.chunks.length > 1) this.#merge(ci)
  }

  /**
   * Apply one pending upsert to the chunks by binary search. `hint` is a chunk index at or
   * below the key's (pending keys are applied in ascending order, so the previous one's).
   * Returns the chunk index the key went to.
   */
  #upsertSorted(key: string, value: unknown, version: number, expiresAt: number, hint: number): number {
    const chunks = this.chunks
    if (chunks.length === 0) {
      chunks.push(new Chunk([key], [value], [version], expiresAt === 0 ? null : [expiresAt], this.#epoch))
      this.maxes.push(key)
      return 0
    }
    const maxes = this.maxes
    // Gallop from the hint: the next key is usually in the same chunk or one close by.
    let lo = hint < maxes.length ? hint : maxes.length - 1
    let step = 1
    let hi = lo
    while (hi < maxes.length && (maxes[hi] as string) < key) {
      lo = hi + 1
      hi += step
      step *= 2
    }
    let ci = lowerBound(maxes, key, lo, hi < maxes.length ? hi + 1 : maxes.length)
    if (ci === maxes.length) ci--
    let c = chunks[ci] as Chunk
    const i = lowerBound(c.keys, key, 0, c.keys.length)
    if (c.epoch !== this.#epoch) c = this.#own(ci)
    if (c.keys[i] === key) {
      c.vals[i] = value
      c.vers[i] = version
      if (c.exps !== null) c.exps[i] = expiresAt
      else if (expiresAt !== 0) {
        c.exps = new Array<number>(c.keys.length).fill(0)
        c.exps[i] = expiresAt
      }
      return ci
    }
    if (i === c.keys.length) {
      c.keys.push(key)
      c.vals.push(value)
      c.vers.push(version)
      if (c.exps !== null) c.exps.push(0)
      maxes[ci] = key
    } else {
      c.keys.splice(i, 0, key)
      c.vals.splice(i, 0, value)
      c.vers.splice(i, 0, version)
      if (c.exps !== null) c.exps.splice(i, 0, 0)
    }
    if (expiresAt !== 0) {
      c.exps ??= new Array<number>(c.keys.length).fill(0)
      c.exps[i] = expiresAt
    }
    if (c.keys.length > 2 * this.#load) this.#split(ci)
    return ci
  }

  /**
   * Apply pending writes to the chunks, in key order (the last write of a key wins).
   * Few: one by one; many: one merge pass that builds fresh chunks (views keep the old).
   */
  #flush(): void {
    const keys = this.#pendKeys
    const vals = this.#pendVals
    const vers = this.#pendVers
    const exps = this.#pendExps
    const k = keys.length
    this.#pendKeys = []
    this.#pendVals = []
    this.#pendVers = []
    this.#pendExps = []
    const order = new Array<number>(k)
    for (let i = 0; i < k; i++) order[i] = i
    // Stable by position for equal keys, so the last write of a key sorts last.
    order.sort((a, b) => {
      const ka = keys[a] as string
      const kb = keys[b] as string
      return ka < kb ? -1 : ka > kb ? 1 : a - b
    })
    // Keep only the last write of each key.
    let m = 0
    for (let j = 0; j < k; j++) {
      const i = order[j] as number
      const next = order[j + 1]
      if (next !== undefined && keys[next] === keys[i]) continue
      order[m++] = i
    }
    order.length = m
    if (this.#indexTombs !== 0) {
      // The last write of each key is kept: a kept TOMBSTONE is the index's TOMBSTONE.
      const index = this.#index
      for (let j = 0; j < m; j++) {
        const i = order[j] as number
        if (vals[i] === TOMBSTONE) index.delete(keys[i] as string)
      }
      this.#indexTombs = 0
    }
    if (m * 8 < this.count) {
      let hint = 0
      for (const i of order) {
        const v = vals[i]
        if (v === TOMBSTONE) {
          this.#deleteSorted(keys[i] as string)
          // A delete may merge the chunk at the hint into the one before it.
          if (hint > 0) hint--
        } else hint = this.#upsertSorted(keys[i] as string, v, vers[i] as number, exps[i] as number, hint)
      }
      return
    }
    // Merge the chunks' sorted run with the sorted pending run into new chunks.
    const load = this.#load
    const outChunks: Chunk[] = []
    const outMaxes: string[] = []
    let ck: string[] = []
    let cv: unknown[] = []
    let cr: number[] = []
    let ce: number[] = []
    let anyExp = false
    const cut = (): void => {
      if (ck.length === 0) return
      outChunks.push(new Chunk(ck, cv, cr, anyExp ? ce : null, this.#epoch))
      outMaxes.push(ck[ck.length - 1] as string)
      ck = []
      cv = []
      cr = []
      ce = []
      anyExp = false
    }
    const emit = (key: string, value: unknown, version: number, exp: number): void => {
      if (value === TOMBSTONE) return
      ck.push(key)
      cv.push(value)
      cr.push(version)
      ce.push(exp)
      if (exp !== 0) anyExp = true
      if (ck.length === load) cut()
    }
    let p = 0
    for (const c of this.chunks) {
      for (let i = 0; i < c.keys.length; i++) {
        const key = c.keys[i] as string
        let pk: string | undefined
        while (p < m && (pk = keys[order[p] as number] as string) < key) {
          const j = order[p++] as number
          emit(pk, vals[j], vers[j] as number, exps[j] as number)
        }
        if (p < m && keys[order[p] as number] === key) {
          const j = order[p++] as number
          emit(key, vals[j], vers[j] as number, exps[j] as number)
        } else {
          emit(key, c.vals[i], c.vers[i] as number, c.exps === null ? 0 : (c.exps[i] as number))
        }
      }
    }
    while (p < m) {
      const j = order[p++] as number
      emit(keys[j] as string, vals[j], vers[j] as number, exps[j] as number)
    }
    cut()
    this.chunks = outChunks
    this.maxes = outMaxes
  }

  /** Entries with an expiry; exact and O(1), pending writes included. */
  override get expiringCount(): number {
    return this.#expiring
  }

  override indexOf(key: string): number {
    if (this.#pendKeys.length !== 0) this.#flush()
    return super.indexOf(key)
  }

  override cursor(bounds: RangeBounds = {}): MemtableCursor {
    if (this.#pendKeys.length !== 0) this.#flush()
    return super.cursor(bounds)
  }

  override forEach(bounds: RangeBounds, visit: (key: string, value: unknown, version: number, expiresAt: number) => boolean | void): void {
    if (this.#pendKeys.length !== 0) this.#flush()
    super.forEach(bounds, visit)
  }

  /** Replace value, version and expiry at a position from `indexOf` (copy-on-write applies). */
  setAt(pos: number, value: unknown, version: number, expiresAt: number): void {
    const ci = Math.floor(pos / POS_SHIFT)
    const i = pos % POS_SHIFT
    this.#touch()
    let c = this.chunks[ci] as Chunk
    if (c.epoch !== this.#epoch) c = this.#own(ci)
    c.vals[i] = value
    c.vers[i] = version
    this.#setExp(c, i, expiresAt)
    this.#indexPut(c.keys[i] as string, value, expiresAt)
  }

  /**
   * A uniformly random position, or -1 when empty. Expected O(1): a random chunk and a
   * random slot below the largest chunk size, retried when the slot is past the chunk's end
   * (rejection sampling, so every key is equally likely whatever the chunk sizes). Chunks
   * hold at least a quarter of the load, so a try succeeds with probability at least 1/8.
   * `random` returns numbers in [0, 1).
   */
  randomPosition(random: () => number): number {
    if (this.count === 0) return -1
    if (this.#pendKeys.length !== 0) this.#flush()
    const chunks = this.chunks
    const n = chunks.length
    if (n === 1) return Math.floor(random() * (chunks[0] as Chunk).keys.length)
    const slots = 2 * this.#load
    for (let tries = 0; ; tries++) {
      const ci = Math.floor(random() * n)
      const len = (chunks[ci] as Chunk).keys.length
      const i = Math.floor(random() * slots)
      if (i < len) return ci * POS_SHIFT + i
      // Bounded: after many misses (astronomically unlikely) take a slot of this chunk.
      if (tries >= 64) return ci * POS_SHIFT + Math.floor(random() * len)
    }
  }

  /** Remove everything. Views keep their contents. */
  clear(): void {
    this.#touch()
    this.chunks = []
    this.maxes = []
    this.count = 0
    this.#index = new Map()
    this.#indexTombs = 0
    this.#expiring = 0
    this.#pendKeys = []
    this.#pendVals = []
    this.#pendVers = []
    this.#pendExps = []
  }

  /**
   * An immutable point-in-time view in O(number of chunks). Later writes copy the
   * chunks they touch; repeated calls with no write in between return the same view.
   */
  view(): MemtableView {
    if (this.#pendKeys.length !== 0) this.#flush()
    if (this.#view === undefined) {
      this.#view = new MemtableView(this.chunks.slice(), this.maxes.slice(), this.count, this.#expiring)
      this.#epoch++
    }
    return this.#view
  }

  /** Every mutation passes here: the cached view no longer matches. */
  #touch(): void {
    this.#view = undefined
  }

  #own(ci: number): Chunk {
    const copy = (this.chunks[ci] as Chunk).clone(this.#epoch)
    this.chunks[ci] = copy
    return copy
  }

  #setExp(c: Chunk, i: number, expiresAt: number): void {
    if (c.exps === null) {
      if (expiresAt === 0) return
      c.exps = new Array<number>(c.keys.length).fill(0)
    }
    c.exps[i] = expiresAt
  }

  #split(ci: number): void {
    const c = this.chunks[ci] as Chunk
    const half = c.keys.length >> 1
    const right = new Chunk(
      c.keys.splice(half),
      c.vals.splice(half),
      c.vers.splice(half),
      c.exps === null ? null : c.exps.splice(half),
      this.#epoch,
    )
    this.chunks.splice(ci + 1, 0, right)
    this.maxes.splice(ci, 1, c.keys[half - 1] as string, right.keys[right.keys.length - 1] as string)
  }

  /** Merge a small chunk with a neighbour (then split again if the result is too big). */
  #merge(ci: number): void {
    const left = ci + 1 < this.chunks.length ? ci : ci - 1
    const a = this.chunks[left] as Chunk
    const b = this.chunks[left + 1] as Chunk
    const exps = a.exps === null && b.exps === null ? null : [...(a.exps ?? new Array<number>(a.keys.length).fill(0)), ...(b.exps ?? new Array<number>(b.keys.length).fill(0))]
    const merged = new Chunk(a.keys.concat(b.keys), a.vals.concat(b.vals), a.vers.concat(b.vers), exps, this.#epoch)
    this.chunks.splice(left, 2, merged)
    this.maxes.splice(left, 2, merged.keys[merged.keys.length - 1] as string)
    if (merged.keys.length > 2 * this.#load) this.#split(left)
  }
}
