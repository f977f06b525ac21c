// The in-memory state of a store: the memtable (keys, values, versions, expiry times), the
// expiry heap, and the one `apply(op, seq)` that both live writes and WAL replay go through,
// so replay reproduces exactly the state that was served. The same apply keeps the memory
// account (`memoryBytes`, formula in eviction/entry-size.ts) and the access stamps eviction
// samples, so both agree between live writes and replay.
import type { Clock } from './clock.js'
import type { Op } from './codec/ops.js'
import { KvHash, KvList } from './collections.js'
import { StoreError } from './errors.js'
import { AccessTracker } from './eviction/access-tracker.js'
import { ELEMENT_OVERHEAD_BYTES, ENTRY_OVERHEAD_BYTES, elementBytes, fieldBytes, keyBytes, valueBytes } from './eviction/entry-size.js'
import { ExpiryHeap } from './expiry-heap.js'
import { compileGlob } from './glob.js'
import { prefixBounds } from './key.js'
import { Memtable } from './memtable.js'
import { copyBytes } from './value-check.js'

/** Stale expiry-heap entries tolerated beyond the live ones before a rebuild. */
const HEAP_SLACK = 1024

/** A list or hash. */
export type Collection = KvList | KvHash

/** True for the values only list and hash calls may touch. */
export function isCollection(v: unknown): v is Collection {
  return v instanceof KvList || v instanceof KvHash
}

/** Copy what must not be shared with callers (bytes); everything else is immutable. */
export function copyOut<V>(v: unknown): V {
  return (v instanceof Uint8Array ? copyBytes(v) : v) as V
}

/** The error for an operation on a key that holds another type. */
export function wrongType(key: string, want: string): StoreError {
  return new StoreError('KV_WRONG_TYPE', `key ${JSON.stringify(key)} holds a value of another type (wanted ${want})`)
}

/** The integer a stored value stands for (Redis `INCR` rules: numbers and canonical decimal strings). */
export function toInteger(key: string, v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v
  } else if (typeof v === 'string') {
    if (/^(0|-?[1-9][0-9]{0,15})$/.test(v)) {
      const n = Number(v)
      if (Number.isSafeInteger(n)) return n
    }
  } else if (typeof v === 'object' && v !== null && isCollection(v)) {
    throw wrongType(key, 'an integer')
  }
  throw new StoreError('KV_NOT_INTEGER', `value of ${JSON.stringify(key)} is not an integer`)
}

/**
 * Keys, values, versions and expiry of one store, in memory.
 *
 * Invariants: every entry with an expiry has an entry in the heap (the heap may hold stale
 * ones, checked on pop). `generation` is bumped when the whole table is replaced, since
 * versions from before are not comparable with those after. `memoryBytes` is the sum of
 * {@link Keyspace.entryBytes} over the table; `#collectionBytes` holds, for each list or
 * hash key, the bytes of its elements.
 */
export class Keyspace {
  readonly #clock: Clock
  readonly #expiry = new ExpiryHeap()
  #mt = new Memtable()
  #generation = 0
  #bytes = 0
  #collectionBytes = new Map<string, number>()
  #access: AccessTracker | undefined

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** The live table. Views taken from it are point-in-time copies. */
  get table(): Memtable {
    return this.#mt
  }

  /** Entries in the expiry heap, stale ones included. @internal */
  get expiryHeapSize(): number {
    return this.#expiry.size
  }

  /** Bumped by {@link Keyspace.install}. */
  get generation(): number {
    return this.#generation
  }

  /** The clock's now, in ms. */
  now(): number {
    return this.#clock.now()
  }

  /** Bytes the table counts for against `maxMemoryBytes` (README "Memory and eviction"). */
  get memoryBytes(): number {
    return this.#bytes
  }

  /** Access stamps for LRU or LFU eviction, or `undefined` when the policy needs none. */
  get access(): AccessTracker | undefined {
    return this.#access
  }

  /** Keep access stamps of `kind` from now on (`undefined`: none). Existing keys start unstamped (coldest). */
  trackAccess(kind: 'lru' | 'lfu' | undefined): void {
    if (kind === this.#access?.kind) return
    this.#access = kind === undefined ? undefined : new AccessTracker(kind, this.#clock)
  }

  /** A read of `key` (present): refresh its access stamp. O(1). */
  touch(key: string): void {
    this.#access?.touch(key)
  }

  /** Bytes the entry at `key` counts for, or 0 when it is absent. */
  entryBytes(key: string): number {
    const v = this.#mt.get(key)
    return v === undefined ? 0 : this.#bytesOf(key, v)
  }

  /**
   * The memory account from scratch: the sum of {@link Keyspace.entryBytes} over every entry,
   * walking every element of every collection. O(total size). For tests of the incremental
   * account, and for {@link Keyspace.install}.
   * @internal
   */
  recomputeMemoryBytes(): number {
    let total = 0
    this.#mt.forEach({}, (key, v) => {
      total += keyBytes(key) + storedBytes(v)
    })
    return total
  }

  /**
   * An upper bound of how many bytes `ops` add to `memoryBytes` when applied in order (0 when
   * they add none). Exact for one op; for several, each op's growth is measured against the
   * current state and only growth counts, which never underestimates.
   */
  growthOf(ops: readonly Op[]): number {
    // A cheap bound first: UTF-16 units × 3 bound UTF-8 bytes, and growth never exceeds what is added.
    return this.growthBound(ops) === 0 ? 0 : this.#exactGrowthOf(ops)
  }

  /**
   * A cheap upper bound of {@link Keyspace.growthOf}: what `ops` add, with strings counted at 3
   * bytes per UTF-16 unit and nothing subtracted. No lookups, no UTF-8 encoding.
   */
  growthBound(ops: readonly Op[]): number {
    let bound = 0
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Op
      switch (op.t) {
        case 'set':
          bound += op.key.length * 3 + ENTRY_OVERHEAD_BYTES + valueBound(op.value)
          break
        case 'push':
          bound += op.key.length * 3 + ENTRY_OVERHEAD_BYTES
          for (const v of op.values) bound += valueBound(v) + ELEMENT_OVERHEAD_BYTES
          break
        case 'hset':
          bound += op.key.length * 3 + ENTRY_OVERHEAD_BYTES
          for (let j = 0; j < op.fields.length; j++) bound += (op.fields[j] as string).length * 3 + valueBound(op.values[j]) + ELEMENT_OVERHEAD_BYTES
          break
        case 'lset':
          bound += valueBound(op.value) + ELEMENT_OVERHEAD_BYTES
          break
        default:
          break
      }
    }
    return bound
  }

  #exactGrowthOf(ops: readonly Op[]): number {
    let growth = 0
    for (let i = 0; i < ops.length; i++) {
      const g = this.#growthOf(ops[i] as Op)
      if (g > 0) growth += g
    }
    return growth
  }

  #growthOf(op: Op): number {
    const mt = this.#mt
    switch (op.t) {
      case 'set':
        return keyBytes(op.key) + storedBytes(op.value) - this.entryBytes(op.key)
      case 'push': {
        let g = mt.has(op.key) ? 0 : keyBytes(op.key)
        for (const v of op.values) g += elementBytes(v)
        return g
      }
      case 'hset': {
        const h = mt.get(op.key)
        let g = h === undefined ? keyBytes(op.key) : 0
        for (let i = 0; i < op.fields.length; i++) {
          const f = op.fields[i] as string
          g += fieldBytes(f, op.values[i])
          if (h instanceof KvHash && h.has(f)) g -= fieldBytes(f, h.get(f))
        }
        return g
      }
      case 'lset': {
        const list = mt.get(op.key)
        const old = list instanceof KvList ? list.at(op.index) : undefined
        return elementBytes(op.value) - (old === undefined ? 0 : elementBytes(old))
      }
      default:
        return 0
    }
  }

  /** A random key, uniformly, or `undefined` when the table is empty. Expected O(1). */
  randomKey(): string | undefined {
    const pos = this.#mt.randomPosition(Math.random)
    return pos < 0 ? undefined : this.#mt.keyAt(pos)
  }

  /**
   * A random key that carries an expiry, or `undefined` after `tries` misses: a random slot of
   * the expiry heap, checked against the table (the heap holds stale entries).
   */
  randomExpiringKey(tries: number): string | undefined {
    const heap = this.#expiry
    for (let t = 0; t < tries && heap.size > 0; t++) {
      const i = Math.floor(Math.random() * heap.size)
      const key = heap.keyAt(i)
      if (this.#expiresExactlyAt(key, heap.timeAt(i))) return key
    }
    return undefined
  }

  /**
   * The key with the soonest expiry that `skip` does not refuse, or `undefined`. Its heap
   * entry is taken out (it is about to be evicted; {@link Keyspace.reindexExpiry} puts it
   * back if not), stale entries met on the way are dropped, refused ones are kept.
   */
  soonestExpiringKey(skip: (key: string) => boolean): string | undefined {
    const heap = this.#expiry
    const kept: [number, string][] = []
    let found: string | undefined
    while (heap.size > 0) {
      const time = heap.peekTime()
      const key = heap.pop()
      if (!this.#expiresExactlyAt(key, time)) continue
      if (!skip(key)) {
        found = key
        break
      }
      kept.push([time, key])
    }
    for (const [time, key] of kept) heap.push(time, key)
    return found
  }

  /** Put the expiry-heap entries of `keys` back (victims of an eviction that did not happen). */
  reindexExpiry(keys: readonly string[]): void {
    for (const key of keys) {
      const exp = this.#mt.expiresAtOf(key)
      if (exp !== 0) this.#expiry.push(exp, key)
    }
  }

  /** Whether `key` carries an expiry (expired or not). */
  hasExpiry(key: string): boolean {
    return this.#mt.expiresAtOf(key) !== 0
  }

  #expiresExactlyAt(key: string, time: number): boolean {
    return this.#mt.expiresAtOf(key) === time
  }

  /** Bytes of the present entry `key` holding `v`. */
  #bytesOf(key: string, v: unknown): number {
    if (typeof v === 'object' && v !== null && isCollection(v)) return keyBytes(key) + (this.#collectionBytes.get(key) ?? 0)
    return keyBytes(key) + valueBytes(v)
  }

  /** Remove `key` with its account and stamp; false when it was absent. */
  #remove(key: string): boolean {
    const v = this.#mt.take(key)
    if (v === undefined) return false
    this.#bytes -= this.#bytesOf(key, v)
    if (typeof v === 'object' && v !== null && isCollection(v)) this.#collectionBytes.delete(key)
    this.#access?.forget(key)
    return true
  }

  /** Replace the whole table (open from a snapshot, load). Keys already expired are dropped. */
  install(mt: Memtable, onExpire?: (key: string) => void): void {
    this.#generation++
    this.#mt = mt
    this.#expiry.clear()
    this.#access?.clear()
    this.#collectionBytes = new Map()
    let total = 0
    mt.forEach({}, (key, v, _ver, exp) => {
      if (exp !== 0) this.#expiry.push(exp, key)
      if (typeof v === 'object' && v !== null && isCollection(v)) {
        const n = collectionBytes(v)
        this.#collectionBytes.set(key, n)
        total += keyBytes(key) + n
      } else {
        total += keyBytes(key) + valueBytes(v)
      }
    })
    this.#bytes = total
    this.purgeExpired(Infinity, onExpire)
  }

  /**
   * Position of `key` when present and not expired, else -1. Costs a flush of pending
   * writes and a binary search: callers that need no version use {@link Keyspace.isLive}.
   */
  live(key: string): number {
    if (!this.isLive(key)) return -1
    return this.#mt.indexOf(key)
  }

  /** Whether `key` is present and not expired. O(1) expected. */
  isLive(key: string): boolean {
    const mt = this.#mt
    return mt.expiringCount === 0 ? mt.has(key) : mt.hasUnexpired(key, this.#clock.now())
  }

  /** Whether `key` has an expiry that has passed (false when absent). O(1) expected. */
  isExpired(key: string): boolean {
    const exp = this.#mt.expiresAtOf(key)
    return exp !== 0 && exp <= this.#clock.now()
  }

  /** Current version of a live key, or 0 when missing or expired. */
  versionOf(key: string): number {
    const pos = this.live(key)
    return pos < 0 ? 0 : this.#mt.versionAt(pos)
  }

  /**
   * The live collection at `key` of class `kind`, or `undefined` when missing. When `ops` is
   * given (a write that creates the collection follows) and the key is not live, a delete is
   * queued first: an expired value may be gone from memory (swept, which is not logged) yet
   * still be in the log, and replay must not push onto it.
   * @throws {@link StoreError} `KV_WRONG_TYPE` when the key holds something else.
   */
  collection<C extends Collection>(key: string, kind: new () => C, want: string, ops: Op[] | undefined): C | undefined {
    const mt = this.#mt
    const v = mt.get(key)
    if (v === undefined || (mt.expiringCount > 0 && this.isExpired(key))) {
      ops?.push({ t: 'del', key })
      return undefined
    }
    if (!(v instanceof kind)) throw wrongType(key, want)
    this.#access?.touch(key)
    return v
  }

  /**
   * Apply one op at `seq` and return its result (what the caller's promise resolves with).
   * @throws {@link StoreError} `KV_CORRUPT` when a collection op meets another type, which only
   *   a damaged log can cause: live writes check types before they log.
   */
  apply(op: Op, seq: number): unknown {
    const mt = this.#mt
    switch (op.t) {
      case 'set': {
        const old = mt.get(op.key)
        const value = op.value
        const oldPlain = old !== undefined && !(typeof old === 'object' && old !== null && isCollection(old))
        if (oldPlain && !(typeof value === 'object' && value !== null && isCollection(value))) {
          // The hot overwrite: the key's bytes cancel out.
          this.#bytes += valueBytes(value) - valueBytes(old)
        } else {
          if (old !== undefined) {
            this.#bytes -= this.#bytesOf(op.key, old)
            this.#collectionBytes.delete(op.key)
          }
          if (typeof value === 'object' && value !== null && isCollection(value)) {
            // Only a log written by hand holds a collection in a set; account it all the same.
            const n = collectionBytes(value)
            this.#collectionBytes.set(op.key, n)
            this.#bytes += keyBytes(op.key) + n
          } else {
            this.#bytes += keyBytes(op.key) + valueBytes(value)
          }
        }
        mt.set(op.key, op.value, seq, op.expiresAt)
        if (op.expiresAt !== 0) this.#pushExpiry(op.expiresAt, op.key)
        this.#access?.touch(op.key)
        return true
      }
      case 'del':
        return this.#remove(op.key)
      case 'expire': {
        const v = mt.get(op.key)
        if (v === undefined) return false
        mt.set(op.key, v, seq, op.expiresAt)
        if (op.expiresAt !== 0) this.#pushExpiry(op.expiresAt, op.key)
        return true
      }
      case 'clear':
        mt.clear()
        this.#expiry.clear()
        this.#bytes = 0
        this.#collectionBytes = new Map()
        this.#access?.clear()
        return undefined
      case 'push': {
        const list = this.#mutable(op.key, seq, KvList)
        let added = 0
        if (op.left) {
          for (const v of op.values) {
            list.pushLeft(v)
            added += elementBytes(v)
          }
        } else {
          for (const v of op.values) {
            list.pushRight(v)
            added += elementBytes(v)
          }
        }
        this.#grow(op.key, added)
        return list.length
      }
      case 'pop': {
        const list = this.#mutable(op.key, seq, KvList)
        const popped: unknown[] = []
        let removed = 0
        for (let i = 0; i < op.count && list.length > 0; i++) {
          const v = op.left ? list.popLeft() : list.popRight()
          removed += elementBytes(v)
          popped.push(copyOut(v))
        }
        this.#grow(op.key, -removed)
        if (list.length === 0) this.#remove(op.key)
        return popped
      }
      case 'lset': {
        // Live writes check the index first; only a damaged log gets here with a bad one.
        const list = this.#mutable(op.key, seq, KvList)
        const old = list.at(op.index)
        if (!list.set(op.index, op.value)) {
          throw new StoreError('KV_CORRUPT', `lset index ${op.index} out of range for ${JSON.stringify(op.key)}`)
        }
        this.#grow(op.key, elementBytes(op.value) - elementBytes(old))
        return true
      }
      case 'ltrim': {
        const list = this.#mutable(op.key, seq, KvList)
        this.#grow(op.key, -trimmedBytes(list, op.start, op.stop))
        list.trim(op.start, op.stop)
        if (list.length === 0) this.#remove(op.key)
        return true
      }
      case 'hset': {
        const h = this.#mutable(op.key, seq, KvHash)
        let added = 0
        let delta = 0
        for (let i = 0; i < op.fields.length; i++) {
          const f = op.fields[i] as string
          if (h.has(f)) delta -= fieldBytes(f, h.get(f))
          else added++
          h.set(f, op.values[i])
          delta += fieldBytes(f, op.values[i])
        }
        this.#grow(op.key, delta)
        return added
      }
      case 'hdel': {
        const h = this.#mutable(op.key, seq, KvHash)
        let removed = 0
        let freed = 0
        for (const f of op.fields) {
          const v = h.get(f)
          if (h.delete(f)) {
            removed++
            freed += fieldBytes(f, v)
          }
        }
        this.#grow(op.key, -freed)
        if (h.size === 0) this.#remove(op.key)
        return removed
      }
    }
  }

  /**
   * Index a new expiry. Overwrites leave the old entry behind (popped and skipped later),
   * so when stale entries outnumber live ones the heap is rebuilt from the live ones:
   * O(live) once per as many pushes, which keeps the heap at most about twice the keys with
   * a TTL however often they are rewritten.
   */
  #pushExpiry(expiresAt: number, key: string): void {
    const heap = this.#expiry
    heap.push(expiresAt, key)
    const mt = this.#mt
    const live = mt.expiringCount
    if (heap.size <= 2 * live + HEAP_SLACK) return
    // The table's walk is sequential but covers every key; the heap's own entries are fewer
    // when few keys expire, at one random lookup each. Either way O(live) when chosen so.
    heap.rebuild(4 * live >= mt.size ? mt.expiries() : this.#liveHeapEntries())
  }

  /**
   * The heap entries that match the table, one per key: every key with an expiry, since
   * each has its entry (the invariant above). O(heap size).
   */
  #liveHeapEntries(): [string, number][] {
    const heap = this.#expiry
    const out: [string, number][] = []
    const seen = new Set<string>()
    for (let i = 0; i < heap.size; i++) {
      const key = heap.keyAt(i)
      const time = heap.timeAt(i)
      if (this.#expiresExactlyAt(key, time) && !seen.has(key)) {
        seen.add(key)
        out.push([key, time])
      }
    }
    return out
  }

  /** The collection at `key` (present) grew by `delta` element bytes. */
  #grow(key: string, delta: number): void {
    if (delta === 0) return
    this.#bytes += delta
    this.#collectionBytes.set(key, (this.#collectionBytes.get(key) ?? 0) + delta)
  }

  /**
   * Remove keys whose expiry has passed, for at most `budgetMs`; `onExpire` hears each one.
   * Not logged: expiry is absolute and recorded with the key, so replay hides the same keys.
   * Returns how many were removed.
   */
  purgeExpired(budgetMs: number, onExpire?: (key: string) => void): number {
    const heap = this.#expiry
    if (heap.size === 0) return 0
    const now = this.#clock.now()
    const started = budgetMs === Infinity ? 0 : performance.now()
    const mt = this.#mt
    let n = 0
    let removed = 0
    while (heap.peekTime() <= now) {
      const key = heap.pop()
      const exp = mt.expiresAtOf(key)
      if (exp !== 0 && exp <= now) {
        this.#remove(key)
        removed++
        onExpire?.(key)
      }
      if ((++n & 255) === 0 && budgetMs !== Infinity && performance.now() - started > budgetMs) break
    }
    return removed
  }

  /** Live keys matching a Redis-style glob, in order; only the pattern's literal prefix range is visited. */
  keys(pattern: string): string[] {
    const glob = compileGlob(pattern)
    if (glob.literal !== undefined) return this.isLive(glob.literal) ? [glob.literal] : []
    const result: string[] = []
    const mt = this.#mt
    const now = mt.expiringCount > 0 ? this.#clock.now() : 0
    const all = glob.matchesAll
    mt.forEach(prefixBounds(glob.prefix), (key, _v, _ver, exp) => {
      if (exp !== 0 && exp <= now) return
      if (all || glob.match(key)) result.push(key)
    })
    return result
  }

  /** Whether keys are due for removal now. */
  get hasDue(): boolean {
    return this.#expiry.size > 0 && this.#expiry.peekTime() <= this.#clock.now()
  }

  /**
   * The collection at `key`, safe to mutate in place: created when missing, cloned first when
   * a view may share it (copy-on-write, same epoch rule as memtable chunks). The write's
   * version is stamped on the key.
   */
  #mutable<C extends Collection>(key: string, seq: number, kind: new (items: [], epoch: number) => C): C {
    const mt = this.#mt
    const v = mt.get(key)
    this.#access?.touch(key)
    if (v === undefined) {
      const fresh = new kind([], mt.epoch)
      mt.set(key, fresh, seq, 0)
      this.#bytes += keyBytes(key)
      this.#collectionBytes.set(key, 0)
      return fresh
    }
    let c = v as C
    if (!(c instanceof kind)) {
      throw new StoreError('KV_CORRUPT', `WAL op for ${JSON.stringify(key)} does not match the stored type`)
    }
    if (c.epoch !== mt.epoch) c = c.clone(mt.epoch) as C
    mt.set(key, c, seq, mt.expiresAtOf(key))
    return c
  }
}

/** What a stored value is, for `Store.type`. */
export function typeOf(v: unknown): 'string' | 'number' | 'boolean' | 'null' | 'json' | 'bytes' | 'list' | 'hash' {
  switch (typeof v) {
    case 'string':
      return 'string'
    case 'number':
      return 'number'
    case 'boolean':
      return 'boolean'
    default:
      if (v === null) return 'null'
      if (v instanceof Uint8Array) return 'bytes'
      if (v instanceof KvList) return 'list'
      if (v instanceof KvHash) return 'hash'
      return 'json'
  }
}

/** At least {@link valueBytes} of `v`, without encoding strings (3 bytes per UTF-16 unit). */
function valueBound(v: unknown): number {
  if (typeof v === 'string') return v.length * 3
  return typeof v === 'object' && v !== null && isCollection(v) ? collectionBytes(v) : valueBytes(v)
}

/** Bytes of a stored value without its key: element bytes of a collection, else {@link valueBytes}. */
function storedBytes(v: unknown): number {
  return typeof v === 'object' && v !== null && isCollection(v) ? collectionBytes(v) : valueBytes(v)
}

/** Element bytes of a list or hash, walked in full. */
function collectionBytes(c: Collection): number {
  let n = 0
  if (c instanceof KvList) for (const v of c) n += elementBytes(v)
  else for (const [f, v] of c) n += fieldBytes(f, v)
  return n
}

/** Bytes of the elements LTRIM `start` `stop` removes from `list` (the same index rules as {@link KvList.trim}). O(removed). */
function trimmedBytes(list: KvList, start: number, stop: number): number {
  const len = list.length
  let from = start < 0 ? Math.max(0, len + start) : start
  let to = stop < 0 ? len + stop : Math.min(stop, len - 1)
  if (from >= len || from > to) {
    from = len
    to = len - 1
  }
  let n = 0
  for (let i = 0; i < from && i < len; i++) n += elementBytes(list.at(i))
  for (let i = Math.max(to + 1, from); i < len; i++) n += elementBytes(list.at(i))
  return n
}
