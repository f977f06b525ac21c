// Segment file naming: `wal-<number zero-padded to 10 digits>.log`, so lexical order is numeric order.

import { join } from 'node:path'
import type { Fs } from '../fs/fs.js'
import { StoreError } from '../errors.js'
import { MAX_SEGMENT_NUMBER } from './format.js'

const NAME = /^wal-(\d{10})\.log$/

function checkSegmentNumber(segment: number): void {
  if (!Number.isInteger(segment) || segment < 0 || segment > MAX_SEGMENT_NUMBER) {
    throw new RangeError(`WAL segment number must be an integer in [0, ${MAX_SEGMENT_NUMBER}], got ${segment}`)
  }
}

/**
 * File name of segment `segment`, e.g. `wal-0000000042.log`.
 *
 * @throws RangeError when `segment` is not an integer in [0, 2^32 - 1].
 */
export function segmentFileName(segment: number): string {
  checkSegmentNumber(segment)
  return `wal-${String(segment).padStart(10, '0')}.log`
}

/**
 * Segment number encoded in a file name, or `undefined` when `name` is not a segment file name.
 *
 * Strict: exactly `wal-`, ten digits, `.log`, and a value that fits in u32. Temp files
 * and backups (`*.broken`) therefore never parse.
 */
export function parseSegmentFileName(name: string): number | undefined {
  const m = NAME.exec(name)
  if (m === null) return undefined
  const n = Number(m[1])
  return n <= MAX_SEGMENT_NUMBER ? n : undefined
}

/** Path of segment `segment` in `dir`. @throws RangeError like {@link segmentFileName}. */
export function segmentPath(dir: string, segment: number): string {
  return join(dir, segmentFileName(segment))
}

/**
 * Numbers of the segment files in `dir`, ascending. Other files are ignored.
 *
 * @throws {@link StoreError} `KV_IO` when the directory cannot be read (cause: the fs error).
 */
export function listSegments(fs: Fs, dir: string): number[] {
  let names: string[]
  try {
    names = fs.readdir(dir)
  } catch (err) {
    throw new StoreError('KV_IO', `cannot list WAL directory ${dir}`, { cause: err })
  }
  const out: number[] = []
  for (const name of names) {
    const n = parseSegmentFileName(name)
    if (n !== undefined) out.push(n)
  }
  return out.sort((a, b) => a - b)
}

/**
 * Delete every segment numbered below `segment` (the ones a durable snapshot covers). The
 * caller makes the deletions durable (directory fsync).
 *
 * @throws {@link StoreError} `KV_IO` when one cannot be listed or removed.
 */
export function removeSegmentsBelow(fs: Fs, dir: string, segment: number): void {
  for (const n of listSegments(fs, dir)) {
    if (n >= segment) continue
    try {
      fs.unlink(segmentPath(dir, n))
    } catch (err) {
      throw new StoreError('KV_IO', `cannot delete covered WAL segment ${segmentPath(dir, n)}`, { cause: err })
    }
  }
}
