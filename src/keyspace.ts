// The in-memory state of a store: the memtable (keys, values, versions, expiry times), the
// expiry heap, and the one `apply(op, seq)` that both live writes and WAL replay go through,
// so replay reproduces exactly the state that was served.
import type { Clock } from './clock.js'
import type { Op } from './codec/ops.js'
import { KvHash, KvList } from './collections.js'
import { StoreError } from './errors.js'
import { ExpiryHeap } from './expiry-heap.js'
import { compileGlob } from './glob.js'
import { prefixBounds } from './key.js'
import { Memtable } from './memtable.js'
import { copyBytes } from './value-check.js'

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
    if (/^-?(0|[1-9][0-9]{0,15})$/.test(v)) {
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
 * Invariant: every entry with an expiry has an entry in the heap (the heap may hold stale
 * ones, checked on pop). `generation` is bumped when the whole table is replaced, since
 * versions from before are not comparable with those after.
 */
export class Keyspace {
  readonly #clock: Clock
  readonly #expiry = new ExpiryHeap()
  #mt = new Memtable()
  #generation = 0

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** The live table. Views taken from it are point-in-time copies. */
  get table(): Memtable {
    return this.#mt
  }

  /** Bumped by {@link Keyspace.install}. */
  get generation(): number {
    return this.#generation
  }

  /** The clock's now, in ms. */
  now(): number {
    return this.#clock.now()
  }

  /** Replace the whole table (open from a snapshot, load). Keys already expired are dropped. */
  install(mt: Memtable, onExpire?: (key: string) => void): void {
    this.#generation++
    this.#mt = mt
    this.#expiry.clear()
    if (mt.expiringCount > 0) {
      mt.forEach({}, (key, _v, _ver, exp) => {
        if (exp !== 0) this.#expiry.push(exp, key)
      })
    }
    this.purgeExpired(Infinity, onExpire)
  }

  /** Position of `key` when present and not expired, else -1. */
  live(key: string): number {
    const mt = this.#mt
    const pos = mt.indexOf(key)
    if (pos >= 0 && mt.expiringCount > 0 && this.expiredAt(pos)) return -1
    return pos
  }

  /** Whether the entry at `pos` has an expiry that has passed. */
  expiredAt(pos: number): boolean {
    const exp = this.#mt.expiresAtAt(pos)
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
    const pos = mt.indexOf(key)
    if (pos < 0 || (mt.expiringCount > 0 && this.expiredAt(pos))) {
      ops?.push({ t: 'del', key })
      return undefined
    }
    const v = mt.valueAt(pos)
    if (!(v instanceof kind)) throw wrongType(key, want)
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
      case 'set':
        mt.set(op.key, op.value, seq, op.expiresAt)
        if (op.expiresAt !== 0) this.#expiry.push(op.expiresAt, op.key)
        return true
      case 'del':
        return mt.delete(op.key)
      case 'expire': {
        const pos = mt.indexOf(op.key)
        if (pos < 0) return false
        mt.setAt(pos, mt.valueAt(pos), seq, op.expiresAt)
        if (op.expiresAt !== 0) this.#expiry.push(op.expiresAt, op.key)
        return true
      }
      case 'clear':
        mt.clear()
        this.#expiry.clear()
        return undefined
      case 'push': {
        const list = this.#mutable(op.key, seq, KvList)
        if (op.left) for (const v of op.values) list.pushLeft(v)
        else for (const v of op.values) list.pushRight(v)
        return list.length
      }
      case 'pop': {
        const list = this.#mutable(op.key, seq, KvList)
        const popped: unknown[] = []
        for (let i = 0; i < op.count && list.length > 0; i++) popped.push(copyOut(op.left ? list.popLeft() : list.popRight()))
        if (list.length === 0) mt.delete(op.key)
        return popped
      }
      case 'lset':
        // Live writes check the index first; only a damaged log gets here with a bad one.
        if (!this.#mutable(op.key, seq, KvList).set(op.index, op.value)) {
          throw new StoreError('KV_CORRUPT', `lset index ${op.index} out of range for ${JSON.stringify(op.key)}`)
        }
        return true
      case 'ltrim': {
        const list = this.#mutable(op.key, seq, KvList)
        list.trim(op.start, op.stop)
        if (list.length === 0) mt.delete(op.key)
        return true
      }
      case 'hset': {
        const h = this.#mutable(op.key, seq, KvHash)
        let added = 0
        for (let i = 0; i < op.fields.length; i++) {
          if (!h.has(op.fields[i] as string)) added++
          h.set(op.fields[i] as string, op.values[i])
        }
        return added
      }
      case 'hdel': {
        const h = this.#mutable(op.key, seq, KvHash)
        let removed = 0
        for (const f of op.fields) if (h.delete(f)) removed++
        if (h.size === 0) mt.delete(op.key)
        return removed
      }
    }
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
      const pos = mt.indexOf(key)
      if (pos >= 0) {
        const exp = mt.expiresAtAt(pos)
        if (exp !== 0 && exp <= now) {
          mt.delete(key)
          removed++
          onExpire?.(key)
        }
      }
      if ((++n & 255) === 0 && budgetMs !== Infinity && performance.now() - started > budgetMs) break
    }
    return removed
  }

  /** Live keys matching a Redis-style glob, in order; only the pattern's literal prefix range is visited. */
  keys(pattern: string): string[] {
    const glob = compileGlob(pattern)
    if (glob.literal !== undefined) return this.live(glob.literal) >= 0 ? [glob.literal] : []
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
    const pos = mt.indexOf(key)
    if (pos < 0) {
      const fresh = new kind([], mt.epoch)
      mt.set(key, fresh, seq, 0)
      return fresh
    }
    let c = mt.valueAt(pos) as C
    if (!(c instanceof kind)) {
      throw new StoreError('KV_CORRUPT', `WAL op for ${JSON.stringify(key)} does not match the stored type`)
    }
    if (c.epoch !== mt.epoch) c = c.clone(mt.epoch) as C
    mt.setAt(pos, c, seq, mt.expiresAtAt(pos))
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
