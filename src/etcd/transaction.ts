// Optimistic transactions and compare-and-set on etcd.
//
// A transaction reads at one revision R (fixed by its first read). Its commit is one etcd
// txn whose compares make it serializable: a key read live must still have the
// mod_revision it had (so it was neither changed nor deleted); a key read missing or
// expired, and every range scanned, must hold no key written after R (`MOD < R + 1`,
// which also catches keys inserted into a scanned range: no phantoms).
import { writeBytes } from '../value-check.js'
import { describeValue, checkOptionsObject } from '../arguments.js'
import type { AtomicOperation, AtomicResult } from '../atomic.js'
import type { Clock } from '../clock.js'
import { throwIfAborted } from '../abort.js'
import { StoreError } from '../errors.js'
import { compileGlob } from '../glob.js'
import { prefixBounds } from '../key.js'
import { copyOut, toInteger, wrongType } from '../keyspace.js'
import type { Limits } from '../limits.js'
import type { RangeBounds } from '../memtable.js'
import { scanBounds, scanLimit, type ScanOptions } from '../scan-options.js'
import type { Transaction } from '../transaction.js'
import type { Compare, EtcdClient, EtcdKv, RangeRequest, RangeResponse, TxnOp } from './client.js'
import type { Committed } from './committer.js'
import { Kind, decodeRecord, type KeyRecord, type Layout } from './layout.js'

/** What a transaction needs from its EtcdStore. */
export interface EtcdTxHost {
  readonly client: EtcdClient
  readonly layout: Layout
  readonly limits: Limits
  readonly clock: Clock
  commit(compares: Compare[], ops: TxnOp[], failure?: TxnOp[]): Promise<Committed>
  /** Ops writing a plain record (with lease and expiry index); previous pairs asked for. */
  putRecord(key: string, rec: KeyRecord): Promise<TxnOp[]>
  seen(revision: number): void
  /** After a successful commit: drop elements of collections it overwrote. */
  afterCommit(c: Committed): void
  ordered<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>
}

interface Pending {
  value: unknown
  expiresAt: number
  deleted: boolean
}

const PAGE = 1000

/** Run `fn` until it commits without a conflict (`KV_CONFLICT` after `retries` retries). */
export async function runEtcdTransaction<V, R>(host: EtcdTxHost, fn: (tx: Transaction<V>) => R | Promise<R>, retries: number, pinned: number): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    // The first run reads as of the call; a rerun after a conflict reads the newest state.
    const tx = new EtcdTransaction<V>(host, attempt === 0 ? pinned : 0)
    const result = await fn(tx)
    if (await tx.commit()) return result
    if (attempt >= retries) throw new StoreError('KV_CONFLICT', `transaction conflicted ${attempt + 1} times`)
  }
}

class EtcdTransaction<V> implements Transaction<V> {
  readonly #host: EtcdTxHost
  #revision = 0
  /** Record key (hex) → compare that re-checks the read. */
  readonly #reads = new Map<string, Compare>()
  readonly #ranges: Compare[] = []
  readonly #writes = new Map<string, Pending>()
  #bytes = 0
  #done = false

  constructor(host: EtcdTxHost, revision: number) {
    this.#host = host
    this.#revision = revision
  }

  async get(key: string): Promise<V | undefined> {
    this.#check()
    this.#host.limits.key(key)
    const own = this.#writes.get(key)
    if (own !== undefined) return own.deleted ? undefined : copyOut<V>(own.value)
    const rec = await this.#readKey(key)
    if (rec === undefined) return undefined
    if (rec.kind !== Kind.VALUE) throw wrongType(key, 'a plain value')
    return copyOut<V>(rec.value)
  }

  async has(key: string): Promise<boolean> {
    this.#check()
    this.#host.limits.key(key)
    const own = this.#writes.get(key)
    if (own !== undefined) return !own.deleted
    return (await this.#readKey(key)) !== undefined
  }

  async keys(pattern = '*'): Promise<string[]> {
    this.#check()
    if (typeof pattern !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `pattern must be a string, got ${describeValue(pattern)}`)
    const glob = compileGlob(pattern)
    const bounds = glob.prefix === '' ? {} : prefixBounds(glob.prefix)
    const out: string[] = []
    for (const [key] of await this.#merged(bounds, true)) if (glob.match(key)) out.push(key)
    return out
  }

  scan(options: ScanOptions = {}): AsyncIterableIterator<[string, V]> {
    this.#check()
    const bounds = scanBounds(options)
    const limit = scanLimit(options)
    const self = this
    return (async function* () {
      if (limit === 0) return
      let n = 0
      for (const [key, rec] of await self.#merged(bounds, false)) {
        throwIfAborted(options.signal)
        yield [key, copyOut<V>(rec)] as [string, V]
        if (++n >= limit) return
      }
    })()
  }

  set(key: string, value: V, options: { ttl?: number; expiresAt?: number } = {}): void {
    this.#check()
    this.#host.limits.key(key)
    const stored = this.#host.limits.value(value)
    const expiresAt = this.#host.limits.expiresAt(options, ['ttl', 'expiresAt'])
    this.#bytes += writeBytes(key, stored)
    this.#host.limits.batchBytes(this.#bytes)
    this.#writes.set(key, { value: stored, expiresAt, deleted: false })
  }

  delete(key: string): void {
    this.#check()
    this.#host.limits.key(key)
    this.#bytes += writeBytes(key)
    this.#writes.set(key, { value: undefined, expiresAt: 0, deleted: true })
  }

  async incr(key: string, by = 1): Promise<number> {
    this.#check()
    this.#host.limits.key(key)
    if (!Number.isSafeInteger(by)) throw new StoreError('KV_INVALID_ARGUMENT', `increment must be a safe integer, got ${describeValue(by)}`)
    const own = this.#writes.get(key)
    let current = 0
    let expiresAt = 0
    if (own !== undefined) {
      if (!own.deleted) current = toInteger(key, own.value)
      expiresAt = own.expiresAt
    } else {
      const rec = await this.#readKey(key)
      if (rec !== undefined) {
        if (rec.kind !== Kind.VALUE) throw wrongType(key, 'an integer')
        current = toInteger(key, rec.value)
        expiresAt = rec.expiresAt
      }
    }
    const next = current + by
    if (!Number.isSafeInteger(next)) throw new StoreError('KV_NOT_INTEGER', `increment of ${JSON.stringify(key)} would leave the safe-integer range`)
    this.#bytes += writeBytes(key, next)
    this.#writes.set(key, { value: next, expiresAt, deleted: false })
    return next
  }

  /** Commit; `false` on a conflict. A read-only transaction still checks its reads (no write, no new revision). */
  async commit(): Promise<boolean> {
    this.#done = true
    const host = this.#host
    if (this.#writes.size === 0) {
      const compares = [...this.#reads.values(), ...this.#ranges]
      if (compares.length === 0) return true
      return (await host.client.txn(compares, [])).succeeded
    }
    const ops: TxnOp[] = []
    for (const [key, w] of this.#writes) {
      if (w.deleted) ops.push({ deleteRange: { key: host.layout.record(key), prevKv: true } })
      else ops.push(...(await host.putRecord(key, { kind: Kind.VALUE, expiresAt: w.expiresAt, value: w.value })))
    }
    const compares = [...this.#reads.values(), ...this.#ranges]
    return host.ordered([...this.#writes.keys()], async () => {
      const c = await host.commit(compares, ops)
      host.seen(c.revision)
      if (c.succeeded) host.afterCommit(c)
      return c.succeeded
    })
  }

  #check(): void {
    if (this.#done) throw new StoreError('KV_INVALID_ARGUMENT', 'the transaction has ended')
  }

  /** The live record of `key` at the transaction's revision, tracked for the commit. */
  async #readKey(key: string): Promise<KeyRecord | undefined> {
    const L = this.#host.layout
    const record = L.record(key)
    const res = await this.#range({ key: record })
    this.#pin(res.revision)
    const kv = res.kvs[0]
    return this.#track(record, kv)
  }

  #track(record: Buffer, kv: EtcdKv | undefined): KeyRecord | undefined {
    const hex = record.toString('hex')
    const rec = kv === undefined ? undefined : decodeRecord(kv.value)
    const live = rec !== undefined && (rec.expiresAt === 0 || rec.expiresAt > this.#host.clock.now())
    if (!this.#reads.has(hex)) {
      this.#reads.set(
        hex,
        live
          ? { key: record, target: 'MOD', result: 'EQUAL', revision: (kv as EtcdKv).modRevision }
          : { key: record, target: 'MOD', result: 'LESS', revision: this.#revision + 1 },
      )
    }
    return live ? rec : undefined
  }

  /**
   * A range at the transaction's revision. The first read of a transaction pinned to the
   * revision of its call moves to the newest one when etcd has compacted that away (the
   * store was idle): nothing was read yet, so the transaction is still serializable.
   */
  async #range(req: RangeRequest): Promise<RangeResponse> {
    try {
      return await this.#host.client.range({ ...req, revision: this.#revision })
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'KV_OVERFLOW') || this.#reads.size > 0 || this.#ranges.length > 0) throw err
      this.#revision = 0
      return this.#host.client.range({ ...req, revision: 0 })
    }
  }

  #pin(revision: number): void {
    if (this.#revision === 0) {
      this.#revision = revision
      this.#host.seen(revision)
    }
  }

  /** Records in `bounds` at the revision, with own writes merged in, in order. */
  async #merged(bounds: RangeBounds, collections: boolean): Promise<[string, unknown][]> {
    const L = this.#host.layout
    const [start, end] = L.recordRange(bounds)
    const found = new Map<string, unknown>()
    if (Buffer.compare(start, end) < 0) {
      let from = start
      for (;;) {
        const page = await this.#range({ key: from, rangeEnd: end, limit: PAGE })
        this.#pin(page.revision)
        for (const kv of page.kvs) {
          const rec = this.#track(kv.key, kv)
          if (rec !== undefined && (collections || rec.kind === Kind.VALUE)) found.set(L.keyOf(kv.key), rec.kind === Kind.VALUE ? rec.value : rec)
        }
        if (!page.more || page.kvs.length === 0) break
        from = Buffer.concat([(page.kvs[page.kvs.length - 1] as EtcdKv).key, Buffer.from([0])])
      }
      this.#ranges.push({ key: start, rangeEnd: end, target: 'MOD', result: 'LESS', revision: this.#revision + 1 })
    }
    const inRange = (k: string): boolean =>
      (bounds.gte === undefined || k >= bounds.gte) &&
      (bounds.gt === undefined || k > bounds.gt) &&
      (bounds.lt === undefined || k < bounds.lt) &&
      (bounds.lte === undefined || k <= bounds.lte)
    for (const [k, w] of this.#writes) {
      if (!inRange(k)) continue
      if (w.deleted) found.delete(k)
      else found.set(k, w.value)
    }
    const keys = [...found.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    if (bounds.reverse) keys.reverse()
    return keys.map((k) => [k, found.get(k)])
  }
}

/** Compare-and-set on etcd: checks are mod_revisions, the commit is one txn. */
export class EtcdAtomic<V> implements AtomicOperation<V> {
  readonly #host: EtcdTxHost
  readonly #checks: { key: string; version: number }[] = []
  readonly #ops = new Map<string, Pending>()
  #bytes = 0
  #committed = false

  constructor(host: EtcdTxHost) {
    this.#host = host
  }

  /** Require `key` to be at `version` (an etcd mod_revision from `getEntry`), or absent when `null`. */
  check(key: string, version: number | null): this {
    this.#host.limits.key(key)
    if (version !== null && (!Number.isSafeInteger(version) || version < 1)) {
      throw new StoreError('KV_INVALID_ARGUMENT', `check version must be a positive integer or null, got ${describeValue(version)}`)
    }
    this.#checks.push({ key, version: version ?? 0 })
    return this
  }

  /** Write `value` under `key` when the checks pass. */
  set(key: string, value: V, options: { ttl?: number; expiresAt?: number } = {}): this {
    this.#host.limits.key(key)
    checkOptionsObject('atomic set option', options, ['ttl', 'expiresAt'])
    const stored = this.#host.limits.value(value)
    const expiresAt = this.#host.limits.expiresAt(options, ['ttl', 'expiresAt'])
    this.#bytes += writeBytes(key, stored)
    this.#ops.delete(key)
    this.#ops.set(key, { value: stored, expiresAt, deleted: false })
    return this
  }

  /** Delete `key` when the checks pass. */
  delete(key: string): this {
    this.#host.limits.key(key)
    this.#bytes += writeBytes(key)
    this.#ops.delete(key)
    this.#ops.set(key, { value: undefined, expiresAt: 0, deleted: true })
    return this
  }

  /**
   * Check and apply in one etcd txn. `version` of the result is the commit's revision.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when committed twice; `KV_BATCH_TOO_LARGE`; `KV_UNAVAILABLE`.
   */
  async commit(): Promise<AtomicResult> {
    if (this.#committed) throw new StoreError('KV_INVALID_ARGUMENT', 'atomic operation already committed')
    this.#committed = true
    const host = this.#host
    host.limits.batchBytes(this.#bytes)
    const ops: TxnOp[] = []
    for (const [key, w] of this.#ops) {
      if (w.deleted) ops.push({ deleteRange: { key: host.layout.record(key), prevKv: true } })
      else ops.push(...(await host.putRecord(key, { kind: Kind.VALUE, expiresAt: w.expiresAt, value: w.value })))
    }
    // Read the checked keys first: a key can be present in etcd yet expired by the clock
    // (its lease not ended yet), which no etcd compare can see. Then commit comparing the
    // mod_revisions read, so nothing changed in between.
    const checks = this.#checks
    const failed: string[] = []
    const compares: Compare[] = []
    if (checks.length > 0) {
      const read = await host.client.txn([], checks.map((c) => ({ range: { key: host.layout.record(c.key) } })))
      host.seen(read.revision)
      const now = host.clock.now()
      checks.forEach((check, i) => {
        const kv = read.responses[i]?.range?.kvs[0]
        const rec = kv === undefined ? undefined : decodeRecord(kv.value)
        const live = rec !== undefined && (rec.expiresAt === 0 || rec.expiresAt > now)
        const ok = check.version === 0 ? !live : live && kv?.modRevision === check.version
        if (!ok) failed.push(check.key)
        compares.push({ key: host.layout.record(check.key), target: 'MOD', result: 'EQUAL', revision: kv?.modRevision ?? 0 })
      })
    }
    if (failed.length > 0) return { ok: false, failed: [...new Set(failed)] }
    if (ops.length === 0) {
      // Checks only: verified at one revision, nothing written, no new revision.
      const c = compares.length === 0 ? undefined : await host.client.txn(compares, [])
      if (c !== undefined && !c.succeeded) return { ok: false, failed: [...new Set(checks.map((k) => k.key))] }
      return { ok: true, version: c?.revision ?? 0 }
    }
    return host.ordered([...this.#ops.keys()], async () => {
      const c = await host.commit(compares, ops)
      host.seen(c.revision)
      if (!c.succeeded) return { ok: false, failed: [...new Set(checks.map((k) => k.key))] }
      host.afterCommit(c)
      return { ok: true, version: c.revision }
    })
  }
}
