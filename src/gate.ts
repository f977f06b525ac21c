// Which operation waits for which. Plain reads and writes run synchronously in the call
// when nothing exclusive is running (the common case costs no promise hop); `load`,
// `update` and `close` hold the exclusive side, and calls made meanwhile queue behind
// them in FIFO order. Snapshot, compaction and load are additionally serialised with each
// other, so two never write files at once.
import { RwLock } from './rwlock.js'

const RESOLVED: Promise<unknown> = Promise.resolve()

/** Runs async functions one after another, in call order; one that fails does not stop the next. */
class Queue {
  #tail: Promise<unknown> = RESOLVED

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn)
    this.#tail = run.catch(() => undefined)
    return run
  }

  /** Settles when everything queued so far has (never rejects). */
  get settled(): Promise<unknown> {
    return this.#tail
  }
}

/** The store's lock gates. */
export class Gate {
  readonly #lock = new RwLock()
  readonly #maintenance = new Queue()
  readonly #reruns = new Queue()

  /** Run a read: at once when no exclusive operation runs or waits, else queued. */
  read<T>(fn: () => T): Promise<T> {
    if (!this.#lock.readable) return this.#lock.read(fn)
    try {
      return Promise.resolve(fn())
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Wait until reads may run (resolves at once when they may). */
  readable(): Promise<void> | undefined {
    return this.#lock.readable ? undefined : this.#lock.read(() => undefined)
  }

  /** Run a write whose result is already a promise: at once when the lock is idle, else queued. */
  write<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#lock.idle) return this.#lock.write(fn)
    try {
      return fn()
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Run `fn` (sync) when no exclusive operation is running; at once when idle. */
  exclusiveStep<T>(fn: () => T): Promise<T> {
    if (!this.#lock.idle) return this.#lock.write(fn)
    try {
      return Promise.resolve(fn())
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** Hold the exclusive side for all of `fn` (async): nothing else runs until it settles. */
  exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.#lock.write(fn)
  }

  /** True when reads may run at once (nothing exclusive runs or waits). */
  get readableNow(): boolean {
    return this.#lock.readable
  }

  /** True when nothing holds or waits for the lock. */
  get idle(): boolean {
    return this.#lock.idle
  }

  /** Serialise snapshot, compaction and load so two never run at once. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.#maintenance.run(fn)
  }

  /**
   * Run transaction reruns one at a time, in arrival order. A rerun follows a conflict,
   * that is contention: queued here, reruns stop conflicting with each other, and plain
   * writes are not held up (nor are first runs), so a callback may still write through
   * the store. `fn` must not wait for another rerun.
   */
  rerun<T>(fn: () => Promise<T>): Promise<T> {
    return this.#reruns.run(fn)
  }

  /** Settles when the maintenance queued so far has (never rejects). */
  maintenanceDone(): Promise<unknown> {
    return this.#maintenance.settled
  }
}
