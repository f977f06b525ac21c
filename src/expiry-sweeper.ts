// Active expiry: keys whose time has passed are removed in the background, in slices of
// about a millisecond so the event loop never stalls, and only while nothing exclusive
// runs. Reads hide expired keys anyway; sweeping frees their memory and makes count() cheap.
import type { Keyspace } from './keyspace.js'
import type { ChangeHub } from './watch.js'

/** Longest slice of one background sweep. */
const SWEEP_SLICE_MS = 1

/** Removes expired keys from a keyspace, on a timer and on demand. */
export class ExpirySweeper {
  readonly #ks: Keyspace
  readonly #hub: ChangeHub
  readonly #seq: () => number
  readonly #mayRun: () => boolean
  #timer: NodeJS.Timeout | undefined
  /** Keys removed so far. */
  removed = 0

  /** `seq` gives the version expire changes carry; `mayRun` is false while the store is busy or closed. */
  constructor(ks: Keyspace, hub: ChangeHub, seq: () => number, mayRun: () => boolean) {
    this.#ks = ks
    this.#hub = hub
    this.#seq = seq
    this.#mayRun = mayRun
  }

  /** Sweep every `intervalMs` (0: never). The timer is unref'd. */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return
    this.#timer = setInterval(() => this.#sweep(), intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** Remove due keys for at most `budgetMs` (Infinity: all), telling watchers. */
  purge(budgetMs: number): void {
    const hub = this.#hub
    this.removed += this.#ks.purgeExpired(
      budgetMs,
      hub.size === 0 ? undefined : (key) => hub.publish({ type: 'expire', key, version: this.#seq(), reason: 'expired' }),
    )
  }

  #sweep(): void {
    if (!this.#mayRun()) return
    this.purge(SWEEP_SLICE_MS)
    // More due keys left: continue in the next macrotask instead of blocking the loop.
    if (this.#ks.hasDue) setImmediate(() => this.#sweep())
  }
}
