// Long snapshot writes yield to the event loop so writers and readers keep running, and
// report progress at most every 100 ms. Yields are paced by time, not by entry count: a
// count tuned for small values stalls writers on large ones, and yields more often than
// needed on small ones.

import type { SnapshotWriteOptions } from './format.js'

/** Entries between two looks at the clock. */
export const PAUSE_EVERY = 256
/** Longest run of work between two yields to the event loop, in ms. */
export const SLICE_MS = 4
const REPORT_EVERY_MS = 100

/**
 * The `pauseEvery` / `pause` options of a snapshot write: every {@link PAUSE_EVERY} entries,
 * yield with `setImmediate` when {@link SLICE_MS} have passed since the last yield (else go
 * on at once), and call `onProgress(entriesDone)` at most every 100 ms.
 */
export function pacing(onProgress?: (done: number) => void): Pick<SnapshotWriteOptions, 'pauseEvery' | 'pause'> {
  let done = 0
  let lastReport = performance.now()
  let sliceStart = lastReport
  const goOn = Promise.resolve()
  return {
    pauseEvery: PAUSE_EVERY,
    pause: () => {
      done += PAUSE_EVERY
      const now = performance.now()
      if (onProgress !== undefined && now - lastReport > REPORT_EVERY_MS) {
        lastReport = now
        onProgress(done)
      }
      if (now - sliceStart < SLICE_MS) return goOn
      return new Promise<void>((resolve) => {
        setImmediate(() => {
          sliceStart = performance.now()
          resolve()
        })
      })
    },
  }
}
