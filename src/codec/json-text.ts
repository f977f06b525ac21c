// The JSON text of a stored object value. A write measures a value (for maxValueBytes)
// and then encodes it for the WAL, one right after the other: a one-entry cache keyed by
// the (frozen, so unchanging) value spares the second JSON.stringify walk, without keeping
// texts alive beside the values they came from.
let lastValue: object | undefined
let lastText = ''

/** `JSON.stringify(value)` for a frozen object or array, reusing the last result for the same value. */
export function jsonText(value: object): string {
  if (value !== lastValue) {
    lastText = JSON.stringify(value)
    lastValue = Object.isFrozen(value) ? value : undefined
  }
  return lastText
}
