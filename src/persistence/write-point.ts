import { performance } from 'node:perf_hooks'
import type { Fs } from '../fs/fs.js'
import type { SnapshotFormatName } from '../options.js'
import type { SnapshotLimits } from '../snapshot/format.js'
import { formatByName, snapshotEntries } from '../snapshot/io.js'
import { pacing } from '../snapshot/pacing.js'
import { writeSnapshotFile } from '../snapshot/write-file.js'
import type { PointInTime, SnapshotResult } from './persistence.js'

/** How {@link writePointInTime} writes. */
export interface WritePointOptions {
  readonly format: SnapshotFormatName
  readonly compress?: 'gzip' | 'brotli' | undefined
  /** Entries expired at this time are left out. */
  readonly now: number
  readonly onProgress?: ((done: number, total: number) => void) | undefined
  /** Permission bits, set exactly. @defaultValue those of the file replaced, else 0600 */
  readonly mode?: number | undefined
  /** The store's limits: the JSON writer refuses a line its reader would refuse. */
  readonly limits?: SnapshotLimits | undefined
}

/**
 * Write `point` to `path` atomically and durably (temp file, fsync, rename, directory fsync),
 * yielding to the event loop as it goes so writers keep running.
 * @throws {@link StoreError} `KV_IO`; the previous file at `path` is left intact.
 */
export async function writePointInTime(fs: Fs, path: string, point: PointInTime, o: WritePointOptions): Promise<SnapshotResult> {
  const started = performance.now()
  const entries = snapshotEntries(point.view, o.now)
  const meta = { seq: point.seq, timestamp: o.now, count: entries.count }
  const progress = o.onProgress
  const { bytes } = await writeSnapshotFile(fs, path, formatByName(o.format), meta, entries.iterate(), {
    ...pacing(progress === undefined ? undefined : () => progress(entries.done, entries.count)),
    ...(o.compress === undefined ? {} : { compress: o.compress }),
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    ...o.limits,
  })
  return { path, format: o.format, entries: entries.done, bytes, seq: point.seq, timeMs: performance.now() - started }
}
