// Redis's LFU counter (src/evict.c): an 8-bit logarithmic access counter that decays with
// time, so a read costs O(1) and old popularity fades. Packed with the minute of the last
// decay into one number so a key's stamp is one Map value.

/** Counter of a new key, so it is not the first victim before it had a chance (Redis `LFU_INIT_VAL`). */
export const LFU_INIT = 5
/** Largest counter value. */
export const LFU_MAX = 255
/** Higher = slower growth; at 10 the counter saturates after about a million hits (Redis `lfu-log-factor`). */
export const LFU_LOG_FACTOR = 10
/** Minutes per decrement of an idle key's counter (Redis `lfu-decay-time`). */
export const LFU_DECAY_MINUTES = 1

const MINUTE_SPAN = 2 ** 32

/** A stamp of `counter` last updated at `minute`. */
export function lfuStamp(counter: number, minute: number): number {
  return counter * MINUTE_SPAN + (minute % MINUTE_SPAN)
}

/** The counter of `stamp` after the decay owed at `minute`. */
export function lfuDecayed(stamp: number, minute: number): number {
  const counter = Math.floor(stamp / MINUTE_SPAN)
  const last = stamp % MINUTE_SPAN
  const elapsed = minute >= last ? minute - last : MINUTE_SPAN - last + minute
  const periods = Math.floor(elapsed / LFU_DECAY_MINUTES)
  return periods >= counter ? 0 : counter - periods
}

/** `counter` after one access: +1 with probability 1 / ((counter − LFU_INIT) × LFU_LOG_FACTOR + 1). */
export function lfuIncremented(counter: number, random: number): number {
  if (counter >= LFU_MAX) return LFU_MAX
  const base = Math.max(0, counter - LFU_INIT)
  return random < 1 / (base * LFU_LOG_FACTOR + 1) ? counter + 1 : counter
}
