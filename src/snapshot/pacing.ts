// Long snapshot writes yield to the event loop every few thousand entries so writers and
// readers keep running, and report progress at most every 100 ms.
import type { SnapshotWriteOptions } from './format.js'

/** Entries written between two yields to the event loop. */
export const PAUSE_EVERY = 4096
const REPORT_EVERY_MS = 100

/**
 * The `pauseEvery` / `pause` options of a snapshot write: yield with `setImmediate` every
 * {@link PAUSE_EVERY} entries and call `onProgress(entriesDone)` at most every 100 ms.
 */
export function pacing(onProgress?: (done: number) => void): Pick<SnapshotWriteOptions, 'pauseEvery' | 'pause'> {
  let done = 0
  let last = performance.now()
  return {
    pauseEvery: PAUSE_EVERY,
    pause: () =>
      new Promise<void>((resolve) => {
        done += PAUSE_EVERY
        const now = performance.now()
        if (onProgress !== undefined && now - last > REPORT_EVERY_MS) {
          last = now
          onProgress(done)
        }
        setImmediate(resolve)
      }),
  }
}
