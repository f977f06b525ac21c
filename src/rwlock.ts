// Async read-write lock for a single-threaded store whose operations span awaits.
//
// Ownership is handed over at release time: the releaser marks the next waiters as
// holders before resolving their promises, so nobody can slip in between a grant and
// the moment the granted code resumes.

interface Waiter {
  readonly write: boolean
  readonly grant: () => void
}

// Past this many consumed slots the queue array is compacted (amortised O(1) dequeue).
const COMPACT_AFTER = 1024

/**
 * Many readers or one writer, granted first come, first served.
 *
 * - Fair: waiters are granted in arrival order. A run of consecutive waiting readers
 *   is granted together. A reader that arrives while a writer holds or waits queues
 *   behind that writer, so writers never starve (and neither do readers).
 * - Cheap when uncontended: a free lock is taken by bumping a counter, `fn` runs
 *   synchronously inside `read`/`write`, and no promise is made for the acquisition.
 * - Not reentrant: calling `write` (or `read` while a writer waits) from inside a
 *   critical section queues behind the caller; awaiting that result deadlocks.
 * - A critical section that never settles holds the lock forever; there is no timeout.
 *
 * Does no I/O and never throws on its own; errors come only from `fn`.
 */
export class RwLock {
  // Invariant: #writing implies #readers === 0.
  #readers = 0
  #writing = false
  // Invariant: waiters live in #queue[#head..]; the head waiter cannot be granted yet,
  // so a non-empty queue means a writer holds or waits.
  #queue: (Waiter | undefined)[] = []
  #head = 0

  // Bound once so the async path allocates no closures per call.
  readonly #readDone = (value: unknown): unknown => {
    this.#releaseRead()
    return value
  }
  readonly #readFailed = (err: unknown): never => {
    this.#releaseRead()
    throw err
  }
  readonly #writeDone = (value: unknown): unknown => {
    this.#releaseWrite()
    return value
  }
  readonly #writeFailed = (err: unknown): never => {
    this.#releaseWrite()
    throw err
  }

  /** Number of readers holding the lock now. */
  get readers(): number {
    return this.#readers
  }

  /** True while a writer holds the lock. */
  get writing(): boolean {
    return this.#writing
  }

  /** Number of queued acquisitions (readers and writers) not yet granted. */
  get waiting(): number {
    return this.#queue.length - this.#head
  }

  /**
   * True when nobody holds or waits for the lock.
   *
   * A caller may then run a synchronous critical section inline, without acquiring:
   * nothing else can run before it returns.
   */
  get idle(): boolean {
    if (this.#readers !== 0 || this.#writing) return false
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, every release dispatches, so a free lock has no waiter left in the queue
    return this.#head === this.#queue.length
  }

  /**
   * True when no writer holds or waits for the lock.
   *
   * A synchronous read may then run inline; `read` would grant at once.
   */
  get readable(): boolean {
    return !this.#writing && this.#head === this.#queue.length
  }

  /**
   * Run `fn` holding the shared lock, and settle with its result.
   *
   * When {@link RwLock.readable}, `fn` is called synchronously, before `read`
   * returns; if it also returns a non-thenable, the lock is released before `read`
   * returns too, so a synchronous section completes without yielding. Otherwise `fn`
   * runs in a microtask once every earlier writer has finished. The lock is released
   * when `fn` returns or throws, or when its thenable settles.
   *
   * @returns A promise of `fn`'s value; it rejects with what `fn` throws or rejects with.
   */
  read<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    if (this.readable) {
      this.#readers++
      return this.#run(fn, false)
    }
    return this.#enqueue(false).then(() => this.#run(fn, false))
  }

  /**
   * Run `fn` holding the exclusive lock, and settle with its result.
   *
   * When {@link RwLock.idle}, `fn` is called synchronously, before `write` returns;
   * if it also returns a non-thenable, the lock is released before `write` returns,
   * so a synchronous section completes without yielding. Otherwise `fn` runs in a
   * microtask once every earlier holder has finished. The lock is released when `fn`
   * returns or throws, or when its thenable settles.
   *
   * @returns A promise of `fn`'s value; it rejects with what `fn` throws or rejects with.
   */
  write<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    if (this.idle) {
      this.#writing = true
      return this.#run(fn, true)
    }
    return this.#enqueue(true).then(() => this.#run(fn, true))
  }

  /**
   * Acquire the shared lock for code that cannot be wrapped in a callback.
   *
   * Grants in the same order as {@link RwLock.read}. The lock is held from the grant
   * until the returned release function is called: call it in a `finally`.
   *
   * @returns A promise of the release function. Calling it again is a no-op, so a
   * `finally` that releases after an earlier release cannot free someone else's hold.
   */
  acquireRead(): Promise<() => void> {
    if (this.readable) {
      this.#readers++
      return Promise.resolve(this.#releaser(false))
    }
    return this.#enqueue(false).then(() => this.#releaser(false))
  }

  /**
   * Acquire the exclusive lock for code that cannot be wrapped in a callback.
   *
   * Grants in the same order as {@link RwLock.write}. The lock is held from the grant
   * until the returned release function is called: call it in a `finally`.
   *
   * @returns A promise of the release function. Calling it again is a no-op.
   */
  acquireWrite(): Promise<() => void> {
    if (this.idle) {
      this.#writing = true
      return Promise.resolve(this.#releaser(true))
    }
    return this.#enqueue(true).then(() => this.#releaser(true))
  }

  /** Run `fn` with the lock (already counted as held) and release it once `fn` settles. */
  #run<T>(fn: () => T | PromiseLike<T>, write: boolean): Promise<T> {
    let result: T | PromiseLike<T>
    let thenable: boolean
    try {
      result = fn()
      thenable = isThenable(result)
    } catch (err) {
      if (write) this.#releaseWrite()
      else this.#releaseRead()
      return Promise.reject(err)
    }
    if (thenable) {
      const settled = Promise.resolve(result)
      return (write
        ? settled.then(this.#writeDone, this.#writeFailed)
        : settled.then(this.#readDone, this.#readFailed)) as Promise<T>
    }
    if (write) this.#releaseWrite()
    else this.#releaseRead()
    return Promise.resolve(result as T)
  }

  #releaser(write: boolean): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      if (write) this.#releaseWrite()
      else this.#releaseRead()
    }
  }

  /** Queue an acquisition; the promise resolves once the lock is held on the waiter's behalf. */
  #enqueue(write: boolean): Promise<void> {
    return new Promise<void>((grant) => {
      this.#queue.push({ write, grant })
    })
  }

  #releaseRead(): void {
    this.#readers--
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent, #dispatch() grants nothing the invariants forbid (head waiter here is a writer), the guard only skips a no-op call
    if (this.#readers === 0 && this.#head < this.#queue.length) this.#dispatch()
  }

  #releaseWrite(): void {
    this.#writing = false
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, #dispatch() on an empty queue does nothing
    if (this.#head < this.#queue.length) this.#dispatch()
  }

  /** Grant the head of the queue: one writer, or every reader up to the next writer. */
  #dispatch(): void {
    const queue = this.#queue
    let head = this.#head
    while (head < queue.length) {
      const waiter = queue[head]!
      if (waiter.write) {
        if (this.#readers !== 0 || this.#writing) break
        this.#writing = true
      } else {
        // Stryker disable next-line ConditionalExpression: equivalent, #writing is always false here (callers release first, a granted writer breaks the loop below)
        if (this.#writing) break
        this.#readers++
      }
      queue[head++] = undefined
      // Resolving only schedules the waiter; no foreign code runs inside this loop.
      waiter.grant()
      // Stryker disable next-line ConditionalExpression: equivalent, the next iteration breaks anyway because #writing is now true
      if (waiter.write) break
    }
    // Equivalent mutants, all of them: resetting a drained queue and when to compact the
    // consumed prefix only change memory use (consumed slots are undefined), never grant order.
    // Stryker disable all: equivalent, memory use only (above)
    if (head === queue.length) {
      queue.length = 0
      head = 0
    } else if (head >= COMPACT_AFTER && head * 2 >= queue.length) {
      queue.splice(0, head)
      head = 0
    }
    // Stryker restore all
    this.#head = head
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}
