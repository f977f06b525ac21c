import { StoreError } from '../../src/errors.js'

/** The `StoreError` code `p` rejects with, `'resolved'` when it resolves, or a note naming a foreign error. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return err instanceof StoreError ? err.code : `not a StoreError: ${String(err)}`
  }
  return 'resolved'
}
