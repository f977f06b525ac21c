import { checkOptionsObject, describeValue } from './arguments.js'
import { checkSignal } from './abort.js'
import { StoreError } from './errors.js'
import { prefixEnd } from './key.js'
import type { RangeBounds } from './memtable.js'

/** Bounds and direction of a scan. `prefix` combines with the other bounds. */
export interface ScanOptions extends RangeBounds {
  prefix?: string
  /** Stop after this many entries (a non-negative integer). */
  limit?: number
  /**
   * Resume a scan: start just after this key in the scan's direction (after it going
   * forward, before it in `reverse`). Pass the last key a scan yielded, with the same other
   * options, to get the entries that follow it; keys are unique, so nothing repeats and
   * nothing between the two scans' views is skipped. Each scan reads its own point-in-time view.
   */
  cursor?: string
  /** Abort the scan: the next step rejects with `KV_ABORTED` and the scan's view is released. */
  signal?: AbortSignal
}

const SCAN_OPTION_KEYS = ['gt', 'gte', 'lt', 'lte', 'prefix', 'reverse', 'limit', 'cursor', 'signal'] as const

/**
 * The memtable bounds of `options`: explicit bounds intersected with the prefix range.
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for non-string bounds or a non-object.
 */
export function scanBounds(options: ScanOptions): RangeBounds {
  checkOptionsObject('scan option', options, SCAN_OPTION_KEYS)
  checkSignal(options.signal)
  if (options.reverse !== undefined && typeof options.reverse !== 'boolean') {
    throw new StoreError('KV_INVALID_ARGUMENT', `scan reverse must be a boolean, got ${describeValue(options.reverse)}`)
  }
  const b: RangeBounds = {}
  for (const name of ['gt', 'gte', 'lt', 'lte', 'prefix', 'cursor'] as const) {
    const v = options[name]
    if (v !== undefined && typeof v !== 'string') throw new StoreError('KV_INVALID_ARGUMENT', `scan ${name} must be a string, got ${describeValue(v)}`)
  }
  if (options.gt !== undefined) b.gt = options.gt
  if (options.gte !== undefined) b.gte = options.gte
  if (options.lt !== undefined) b.lt = options.lt
  if (options.lte !== undefined) b.lte = options.lte
  if (options.reverse) b.reverse = true
  const c = options.cursor
  if (c !== undefined) {
    if (b.reverse === true) {
      if (b.lte !== undefined && b.lte >= c) delete b.lte
      if (b.lte === undefined && (b.lt === undefined || b.lt > c)) b.lt = c
    } else {
      if (b.gte !== undefined && b.gte <= c) delete b.gte
      if (b.gte === undefined && (b.gt === undefined || b.gt < c)) b.gt = c
    }
  }
  if (options.prefix !== undefined && options.prefix !== '') {
    const p = options.prefix
    if ((b.gte === undefined || b.gte < p) && (b.gt === undefined || b.gt < p)) {
      delete b.gt
      b.gte = p
    }
    const end = prefixEnd(p)
    if (end !== undefined && (b.lt === undefined || b.lt > end) && (b.lte === undefined || b.lte >= end)) {
      delete b.lte
      b.lt = end
    }
  }
  return b
}

/**
 * The entry limit of `options` (`Infinity` when absent).
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` unless a non-negative safe integer.
 */
export function scanLimit(options: ScanOptions): number {
  const limit = options.limit
  if (limit === undefined) return Infinity
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
    throw new StoreError('KV_INVALID_ARGUMENT', `scan limit must be a non-negative integer, got ${describeValue(limit)}`)
  }
  return limit
}
