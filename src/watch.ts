import { checkOptionsObject, describeValue } from './arguments.js'
import type { Op } from './codec/ops.js'
import { StoreError } from './errors.js'
import { copyOut } from './keyspace.js'

/**
 * Why a key went away, on `delete` and `expire` changes: `'deleted'` by a write (`delete`,
 * a batch or transaction delete, or a list/hash op that left it empty), `'evicted'` by the
 * memory budget (`maxMemoryBytes`), `'expired'` by its TTL.
 */
export type RemovalReason = 'deleted' | 'evicted' | 'expired'

/** A committed change, from {@link ChangeFeed}; `V` is the store's value type. */
export type Change<V = unknown> =
  | { readonly type: 'set'; readonly key: string; readonly value: V; readonly version: number }
  /**
   * The key was removed by a write (`reason: 'deleted'`) or evicted to keep the memory budget
   * (`reason: 'evicted'`; the eviction is a logged delete with its own version).
   */
  | { readonly type: 'delete'; readonly key: string; readonly version: number; readonly reason: 'deleted' | 'evicted' }
  /** A list or hash op changed the key's collection. */
  | { readonly type: 'update'; readonly key: string; readonly version: number }
  /** Active or lazy expiry removed the key. `version` is the store's sequence number at the time. */
  | { readonly type: 'expire'; readonly key: string; readonly version: number; readonly reason: 'expired' }
  /** Every key was removed (`clear`) or replaced (`load`); `key` is ''. */
  | { readonly type: 'clear'; readonly key: string; readonly version: number }

/** What {@link ChangeFeed} delivers. */
export interface WatchOptions {
  /** Only changes to exactly this key. */
  key?: string
  /** Abort the feed: it leaves the store at once and a pending or later `next()` rejects with `KV_ABORTED`. */
  signal?: AbortSignal
  /** Only changes to keys starting with this prefix. */
  prefix?: string
  /**
   * Most changes buffered for a slow consumer. One more ends the feed with
   * `KV_OVERFLOW` (the consumer should re-read the state and watch again).
   * @defaultValue 10000
   */
  highWaterMark?: number
  /**
   * Start after this sequence number: first every change after it that the WAL still holds
   * (dir mode, writer or follower), then the live changes, with none missed or repeated.
   * Give the `version` of the last change you processed, or a store's `seq`. Fails with
   * `KV_TRIMMED` when a compaction removed part of that history (memory and file mode keep
   * none: only the current seq works there). README "Many processes".
   */
  fromSeq?: number
}

/**
 * Async iterator of committed changes, in commit order.
 *
 * Changes are delivered as they are applied, which for `sync: 'always'` can be just
 * before their fsync completes. `clear` changes always pass the filter. The feed ends
 * (`done: true`) after `return()`/`close()` or when the store closes; it fails with
 * `KV_OVERFLOW` when the consumer falls `highWaterMark` changes behind.
 */
export interface ChangeFeed<V = unknown> extends AsyncIterableIterator<Change<V>> {
  /** Number of changes waiting to be consumed. */
  readonly pending: number
  /** Stop watching; buffered changes are dropped. */
  return(): Promise<IteratorResult<Change<V>>>
  /** Same as `return()`. */
  close(): void
}

/** A feed's buffer and filter; only its {@link ChangeHub} can deliver to it or end it. */
class Feed implements ChangeFeed {
  readonly #key: string | undefined
  readonly #prefix: string | undefined
  readonly #highWaterMark: number
  readonly #hub: ChangeHub
  #queue: Change[] = []
  #head = 0
  #waiting: ((r: IteratorResult<Change>) => void) | undefined
  #failWaiting: ((err: unknown) => void) | undefined
  #ended = false
  #error: StoreError | undefined
  /** Changes before the live ones (`fromSeq`), until exhausted; then `undefined`. */
  #history: Promise<AsyncIterator<Change[]>> | undefined
  #historyBuf: Change[] = []
  #historyHead = 0
  /** Calls of `next()` in order while a history is read (each waits for the one before). */
  #pulls: Promise<unknown> | undefined
  /** Live changes at or before this version were in the history already. */
  readonly #after: number

  constructor(options: WatchOptions, hub: ChangeHub, history?: FeedHistory) {
    checkOptionsObject('watch option', options, ['key', 'prefix', 'highWaterMark', 'fromSeq'])
    if (options.key !== undefined && typeof options.key !== 'string') {
      throw new StoreError('KV_INVALID_ARGUMENT', `watch key must be a string, got ${describeValue(options.key)}`)
    }
    if (options.prefix !== undefined && typeof options.prefix !== 'string') {
      throw new StoreError('KV_INVALID_ARGUMENT', `watch prefix must be a string, got ${describeValue(options.prefix)}`)
    }
    const hwm = options.highWaterMark ?? 10_000
    if (!Number.isSafeInteger(hwm) || hwm < 1) {
      throw new StoreError('KV_INVALID_ARGUMENT', `highWaterMark must be a positive integer, got ${describeValue(hwm)}`)
    }
    this.#key = options.key
    this.#prefix = options.prefix
    this.#highWaterMark = hwm
    this.#hub = hub
    this.#after = history?.after ?? -1
    if (history !== undefined) {
      this.#history = history.open
      this.#pulls = Promise.resolve()
      // Rejections surface through next(); this one only keeps them from being reported as unhandled.
      history.open.catch(() => undefined)
    }
    // Only the hub can deliver to a feed or end it: these are not members a user can call.
    hub.attach(this, {
      push: (c) => this.#push(c),
      end: () => this.#finish(),
      fail: (err) => {
        if (this.#ended) return
        this.#error = err
        this.#finish()
      },
    })
  }

  /** Offer a change; filtered here. */
  #push(change: Change): void {
    if (this.#ended || !this.#passes(change)) return
    if (change.version <= this.#after && change.type !== 'expire') return
    const waiting = this.#waiting
    if (waiting !== undefined) {
      this.#waiting = undefined
      this.#failWaiting = undefined
      waiting({ value: change, done: false })
      return
    }
    if (this.#queue.length - this.#head >= this.#highWaterMark) {
      this.#error = new StoreError('KV_OVERFLOW', `watch consumer fell ${this.#highWaterMark} changes behind`)
      this.#finish()
      return
    }
    this.#queue.push(change)
  }

  /** Number of changes waiting to be consumed. */
  get pending(): number {
    return this.#queue.length - this.#head + this.#historyBuf.length - this.#historyHead
  }

  /** True when the feed's key or prefix selects `change`. */
  #passes(change: Change): boolean {
    if (change.type === 'clear') return true
    if (this.#key !== undefined && change.key !== this.#key) return false
    return this.#prefix === undefined || change.key.startsWith(this.#prefix)
  }

  next(): Promise<IteratorResult<Change>> {
    if (this.#pulls !== undefined) {
      const p = this.#pulls.then(() => this.#nextWithHistory())
      this.#pulls = p.catch(() => undefined)
      return p
    }
    return this.#nextLive()
  }

  async #nextWithHistory(): Promise<IteratorResult<Change>> {
    while (this.#history !== undefined && !this.#ended) {
      if (this.#historyHead < this.#historyBuf.length) return { value: this.#historyBuf[this.#historyHead++] as Change, done: false }
      let r: IteratorResult<Change[]>
      try {
        r = await (await this.#history).next()
      } catch (err) {
        this.#history = undefined
        this.#error = err instanceof StoreError ? err : new StoreError('KV_IO', 'the change history could not be read', { cause: err })
        // The live changes buffered so far follow a gap: drop them, the feed fails.
        this.#queue = []
        this.#head = 0
        this.#finish()
        break
      }
      if (r.done === true) {
        this.#history = undefined
        break
      }
      this.#historyBuf = r.value.filter((c) => this.#passes(c))
      this.#historyHead = 0
    }
    return this.#nextLive()
  }

  #nextLive(): Promise<IteratorResult<Change>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++] as Change
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.#error !== undefined) {
      const err = this.#error
      this.#error = undefined
      return Promise.reject(err)
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve, reject) => {
      this.#waiting = resolve
      this.#failWaiting = reject
    })
  }

  /** Stop watching; buffered changes are dropped. */
  return(): Promise<IteratorResult<Change>> {
    this.#queue = []
    this.#head = 0
    this.#error = undefined
    this.#finish()
    return Promise.resolve({ value: undefined, done: true })
  }

  /** Same as `return()`. */
  close(): void {
    void this.return()
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  #finish(): void {
    if (this.#ended) return
    this.#ended = true
    this.#hub.detach(this)
    const history = this.#history
    this.#history = undefined
    this.#historyBuf = []
    // Release the segment files the history holds open.
    if (history !== undefined) history.then((it) => it.return?.()).catch(() => undefined)
    const waiting = this.#waiting
    const fail = this.#failWaiting
    this.#waiting = undefined
    this.#failWaiting = undefined
    if (this.#error !== undefined && fail !== undefined) {
      const err = this.#error
      this.#error = undefined
      fail(err)
    } else {
      waiting?.({ value: undefined, done: true })
    }
  }
}

/**
 * The change `op` made at `seq`. `stillExists` tells, for list and hash ops, whether the key
 * survived (an emptied collection is a delete).
 */
export function changeOf(op: Op, seq: number, stillExists: boolean): Change {
  switch (op.t) {
    case 'set':
      // Bytes are copied like every read: a consumer must not reach the stored array.
      return { type: 'set', key: op.key, value: copyOut(op.value), version: seq }
    case 'del':
      return { type: 'delete', key: op.key, version: seq, reason: 'deleted' }
    case 'clear':
      return { type: 'clear', key: '', version: seq }
    default:
      return stillExists ? { type: 'update', key: op.key, version: seq } : { type: 'delete', key: op.key, version: seq, reason: 'deleted' }
  }
}

/** The changes a `fromSeq` feed delivers before the live ones. */
export interface FeedHistory {
  /** The changes up to the store's seq when the feed was attached, record by record. */
  readonly open: Promise<AsyncIterator<Change[]>>
  /** Live changes at or before this version are dropped (a follower behind `fromSeq`). */
  readonly after: number
}

/** How the hub reaches a feed. */
interface Sink {
  push(change: Change): void
  end(): void
  /** End after the buffered changes with `err` (the source of changes broke). */
  fail(err: StoreError): void
}

/**
 * The store's open change feeds: turns applied ops into {@link Change}s and offers them to
 * every feed, in commit order.
 */
export class ChangeHub {
  readonly #sinks = new Map<ChangeFeed, Sink>()

  /** Number of open feeds; publishing costs nothing when 0. */
  get size(): number {
    return this.#sinks.size
  }

  /**
   * A new feed of the changes `options` select.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for bad or unknown options.
   */
  open(options: WatchOptions, history?: FeedHistory): ChangeFeed {
    return new Feed(options, this, history)
  }

  /** Called by a new feed's constructor. */
  attach(feed: ChangeFeed, sink: Sink): void {
    this.#sinks.set(feed, sink)
  }

  /** Called by a feed that ended. */
  detach(feed: ChangeFeed): void {
    this.#sinks.delete(feed)
  }

  /** Offer `change` to every feed. */
  publish(change: Change): void {
    for (const sink of this.#sinks.values()) sink.push(change)
  }

  /**
   * Offer the change `op` made at `seq`. `stillExists` tells, for list and hash ops, whether
   * the key survived (an emptied collection is a delete).
   */
  publishOp(op: Op, seq: number, stillExists: boolean): void {
    this.publish(changeOf(op, seq, stillExists))
  }

  /** The source of changes broke: every feed delivers what it buffered, then rejects with `err`. */
  failAll(err: StoreError): void {
    for (const sink of [...this.#sinks.values()]) sink.fail(err)
  }

  /** The store closed: every feed delivers what it buffered, then ends. */
  endAll(): void {
    for (const sink of [...this.#sinks.values()]) sink.end()
  }
}
