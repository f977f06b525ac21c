// Argument check for the calls that take many keys at once (getMany, deleteMany, …).
import { describeValue } from './arguments.js'
import { StoreError } from './errors.js'

/**
 * A copy of `keys` after checking it is an array and every element passes `checkKey`, so a
 * caller mutating the array afterwards cannot change what is read.
 *
 * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when `keys` is not an array; whatever
 *   `checkKey` throws for a bad element (`KV_INVALID_KEY`).
 */
export function checkKeyList(keys: unknown, checkKey: (key: string) => void): string[] {
  if (!Array.isArray(keys)) throw new StoreError('KV_INVALID_ARGUMENT', `keys must be an array of strings, got ${describeValue(keys)}`)
  const out = keys.slice() as string[]
  for (const key of out) checkKey(key)
  return out
}
