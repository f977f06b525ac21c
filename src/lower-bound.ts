// Binary search over sorted string arrays. Order is JS `<` (UTF-16 code units).

/**
 * Index of the first element in `arr[lo, hi)` that is `>= key`, or `hi` if there is none.
 *
 * Precondition: `arr[lo, hi)` is sorted ascending by `<`; `0 <= lo <= hi <= arr.length`
 * (not checked, to keep the hot path branch-free). With duplicates, returns the first one.
 * O(log(hi - lo)) comparisons, no allocation.
 */
export function lowerBound(arr: readonly string[], key: string, lo = 0, hi = arr.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    // `as string`: mid is in [lo, hi), inside the array by the precondition.
    if ((arr[mid] as string) < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Index of the first element in `arr[lo, hi)` that is `> key`, or `hi` if there is none.
 *
 * Same preconditions and cost as {@link lowerBound}; with duplicates, returns the index
 * just past the last one.
 */
export function upperBound(arr: readonly string[], key: string, lo = 0, hi = arr.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (key < (arr[mid] as string)) hi = mid
    else lo = mid + 1
  }
  return lo
}
