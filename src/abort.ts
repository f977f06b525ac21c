// AbortSignal support shared by both backends: checking the option, failing with
// KV_ABORTED, and wrapping a scan or a change feed so that an abort ends it and releases
// what it holds (the scan's view, the feed's place in the hub).
import { describeValue } from './arguments.js'
import { StoreError } from './errors.js'
import type { Change, ChangeFeed } from './watch.js'

/**
 * `signal` when it is an AbortSignal (or absent).
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for anything else.
 */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw new StoreError('KV_INVALID_ARGUMENT', `signal must be an AbortSignal, got ${describeValue(signal)}`)
  return signal
}

/** The error an aborted call fails with; the signal's reason is the `cause`. */
export function abortedError(signal: AbortSignal): StoreError {
  return new StoreError('KV_ABORTED', 'the operation was aborted', { cause: signal.reason })
}

/** @throws {@link StoreError} `KV_ABORTED` once `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortedError(signal)
}

/** `p`, or a `KV_ABORTED` rejection as soon as `signal` aborts (whichever comes first). */
function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError(signal))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * `iter` ended by `signal`: after an abort the next step rejects with `KV_ABORTED` and
 * `iter.return()` has been called, so the scan's view is released.
 */
export function abortableIterator<T>(iter: AsyncIterableIterator<T>, signal: AbortSignal | undefined): AsyncIterableIterator<T> {
  if (signal === undefined) return iter
  return (async function* () {
    try {
      for (;;) {
        throwIfAborted(signal)
        const r = await raced(iter.next(), signal)
        if (r.done === true) return
        yield r.value
      }
    } finally {
      await iter.return?.()
    }
  })()
}

/**
 * `feed` ended by `signal`: an abort closes the feed (it leaves the store's hub at once)
 * and a pending or later `next()` rejects with `KV_ABORTED`.
 */
export function abortableFeed<V>(feed: ChangeFeed<V>, signal: AbortSignal | undefined): ChangeFeed<V> {
  if (signal === undefined) return feed
  const onAbort = (): void => feed.close()
  if (signal.aborted) feed.close()
  else signal.addEventListener('abort', onAbort, { once: true })
  const release = (): void => signal.removeEventListener('abort', onAbort)
  const out: ChangeFeed<V> = {
    get pending() {
      return feed.pending
    },
    async next(): Promise<IteratorResult<Change<V>>> {
      throwIfAborted(signal)
      const r = await raced(feed.next(), signal)
      if (r.done === true) release()
      return r
    },
    return(): Promise<IteratorResult<Change<V>>> {
      release()
      return feed.return()
    },
    close(): void {
      release()
      feed.close()
    },
    [Symbol.asyncIterator]() {
      return out
    },
  }
  return out
}

/**
 * `fn` checked against `signal` at the start of every attempt and before commit: an abort
 * throws `KV_ABORTED` inside the transaction, which discards its buffered writes.
 */
export function abortableTransaction<T, R>(fn: (tx: T) => R | Promise<R>, signal: AbortSignal | undefined): (tx: T) => R | Promise<R> {
  if (signal === undefined) return fn
  return async (tx) => {
    throwIfAborted(signal)
    const result = await fn(tx)
    throwIfAborted(signal)
    return result
  }
}
