import type { ErrorCode } from '../errors.js'

/**
 * A command's structured reply, shaped like Redis's protocol types. The CLI only
 * formats these; programs can switch on `type`.
 */
export type Reply =
  /** A status line such as `OK` or `QUEUED`. */
  | { readonly type: 'status'; readonly value: string }
  /** A string, or `null` for a missing value (`(nil)`). */
  | { readonly type: 'bulk'; readonly value: string | null }
  | { readonly type: 'integer'; readonly value: number }
  /** A list of replies, or `null` (an aborted EXEC). `lines` asks for one bare item per line (KEYS). */
  | { readonly type: 'array'; readonly value: readonly Reply[] | null; readonly lines?: boolean }
  /**
   * An error. `code` is the Redis-style prefix (`ERR`, `WRONGTYPE`, `EXECABORT` …);
   * `kvCode` is the {@link StoreError} code when the store raised it.
   */
  | { readonly type: 'error'; readonly code: string; readonly message: string; readonly kvCode?: ErrorCode }

/** `OK`. */
export const OK: Reply = Object.freeze({ type: 'status', value: 'OK' })
/** `(nil)`. */
export const NIL: Reply = Object.freeze({ type: 'bulk', value: null })

/** A status reply. */
export function status(value: string): Reply {
  return { type: 'status', value }
}
/** A string (or nil) reply. */
export function bulk(value: string | null): Reply {
  return { type: 'bulk', value }
}
/** An integer reply. */
export function integer(value: number): Reply {
  return { type: 'integer', value }
}
/** An array reply. */
export function array(value: readonly Reply[] | null, lines = false): Reply {
  return lines ? { type: 'array', value, lines } : { type: 'array', value }
}
/** An error reply. */
export function error(code: string, message: string, kvCode?: ErrorCode): Reply {
  return kvCode === undefined ? { type: 'error', code, message } : { type: 'error', code, message, kvCode }
}
