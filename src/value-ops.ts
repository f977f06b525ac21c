// Plain values and their expiry over the keyspace: reads answer from the live table,
// writes build one op each and go through the commit funnel. The store's facade validates
// the arguments and takes the gate first.
import { positiveInt } from './arguments.js'
import { after, resolved, type CommitFunnel } from './commit.js'
import { StoreError } from './errors.js'
import { copyOut, isCollection, toInteger, typeOf, wrongType, type Keyspace } from './keyspace.js'
import type { Limits } from './limits.js'
import type { Entry, KeyType, SetOptions } from './types.js'

const yieldTrue = (): boolean => true

/** Plain-value operations of one store (see the `Store` methods of the same names). */
export class ValueOps<V> {
  readonly #ks: Keyspace
  readonly #funnel: CommitFunnel
  readonly #limits: Limits
  /** Sliding expiry: a read pushes a key's expiry this far (0: off). */
  readonly #slidingTtlMs: number
  /** False once a refresh on read must not be logged (closed, or writes refused). */
  readonly #mayWrite: () => boolean

  constructor(ks: Keyspace, funnel: CommitFunnel, limits: Limits, slidingTtlMs: number, mayWrite: () => boolean) {
    this.#ks = ks
    this.#funnel = funnel
    this.#limits = limits
    this.#slidingTtlMs = slidingTtlMs
    this.#mayWrite = mayWrite
  }

  /** The live plain value at `key`. @throws {@link StoreError} `KV_WRONG_TYPE` for a list or hash. */
  get(key: string): V | undefined {
    const mt = this.#ks.table
    const ttl = mt.expiringCount !== 0
    // One hash probe either way: with TTLs about, the index entry carries the expiry.
    const v = ttl ? mt.getUnexpired(key, this.#ks.now()) : mt.get(key)
    if (v === undefined) return undefined
    if (ttl && this.#slidingTtlMs > 0) this.#slide(key)
    if (typeof v === 'object' && v !== null && isCollection(v)) throw wrongType(key, 'a plain value')
    this.#ks.touch(key)
    return copyOut<V>(v)
  }

  /** Value, version and expiry of a live plain key (reading it may refresh a sliding expiry). */
  entry(key: string): Entry<V> | undefined {
    const value = this.get(key) // may refresh a sliding expiry: read the position after
    if (value === undefined) return undefined
    const pos = this.#ks.live(key)
    if (pos < 0) return undefined
    const expiresAt = this.#ks.table.expiresAtAt(pos)
    const version = this.#ks.table.versionAt(pos)
    return expiresAt !== 0 ? { value, version, expiresAt } : { value, version }
  }

  /** Version of a live key of any type. */
  version(key: string): number | undefined {
    const pos = this.#ks.live(key)
    return pos < 0 ? undefined : this.#ks.table.versionAt(pos)
  }

  /** Whether a live key of any type exists. */
  has(key: string): boolean {
    return this.#ks.isLive(key)
  }

  type(key: string): KeyType | undefined {
    return this.#ks.isLive(key) ? typeOf(this.#ks.table.get(key)) : undefined
  }

  set(key: string, stored: unknown, expiresAt: number, options: SetOptions | undefined): Promise<boolean> {
    if (options !== undefined && (options.ifNotExists || options.ifExists || options.keepTtl)) {
      const live = this.#ks.isLive(key)
      if (options.ifNotExists && live) return resolved.false
      if (options.ifExists && !live) return resolved.false
      if (options.keepTtl && live && expiresAt === 0) expiresAt = this.#ks.table.expiresAtOf(key)
    }
    return after(this.#funnel.commit([{ t: 'set', key, value: stored, expiresAt }]), true)
  }

  delete(key: string): Promise<boolean> {
    const mt = this.#ks.table
    if (!mt.has(key)) return resolved.false
    // With no expiry in the table a present key is live: no second probe for its expiry.
    const existed = mt.expiringCount === 0 || !this.#ks.isExpired(key)
    return after(this.#funnel.commit([{ t: 'del', key }]), existed)
  }

  /** Replace with `next` (undefined deletes), keeping the key's expiry. Resolves with the stored value. */
  async replace(key: string, next: V | undefined): Promise<V | undefined> {
    if (next === undefined) {
      if (this.#ks.table.has(key)) await this.#funnel.commit([{ t: 'del', key }])
      return undefined
    }
    const stored = this.#limits.value(next)
    const expiresAt = this.#ks.isLive(key) ? this.#ks.table.expiresAtOf(key) : 0
    await this.#funnel.commit([{ t: 'set', key, value: stored, expiresAt }])
    return copyOut<V>(stored)
  }

  expireAt(key: string, at: number): Promise<boolean> {
    positiveInt('expiresAt', at, true)
    if (!this.#ks.isLive(key)) return resolved.false
    if (at <= this.#ks.now()) return this.#funnel.commit([{ t: 'del', key }]).then(yieldTrue)
    return this.#funnel.commit([{ t: 'expire', key, expiresAt: at }]).then(yieldTrue)
  }

  persist(key: string): Promise<boolean> {
    if (!this.#ks.isLive(key) || this.#ks.table.expiresAtOf(key) === 0) return resolved.false
    return this.#funnel.commit([{ t: 'expire', key, expiresAt: 0 }]).then(yieldTrue)
  }

  ttl(key: string): number {
    if (!this.#ks.isLive(key)) return -2
    const exp = this.#ks.table.expiresAtOf(key)
    return exp === 0 ? -1 : Math.max(0, exp - this.#ks.now())
  }

  incr(key: string, by: number): Promise<number> {
    const live = this.#ks.isLive(key)
    const next = (live ? toInteger(key, this.#ks.table.get(key)) : 0) + by
    if (!Number.isSafeInteger(next)) {
      throw new StoreError('KV_NOT_INTEGER', `increment of ${JSON.stringify(key)} would leave the safe-integer range`)
    }
    const expiresAt = live ? this.#ks.table.expiresAtOf(key) : 0
    return after(this.#funnel.commit([{ t: 'set', key, value: next, expiresAt }]), next)
  }

  /** Refresh-on-access: push a live key's expiry to now + slidingTtlMs (logged). */
  #slide(key: string): void {
    if (!this.#ks.isLive(key) || this.#ks.table.expiresAtOf(key) === 0 || !this.#mayWrite()) return
    // Not awaited: the read must not wait for an fsync. A failed write poisons the log,
    // which later writes report.
    this.#funnel.commit([{ t: 'expire', key, expiresAt: this.#ks.now() + this.#slidingTtlMs }]).catch(() => undefined)
  }
}
