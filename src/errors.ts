/**
 * Stable error codes carried by {@link StoreError}. Codes never change meaning;
 * messages may. Each code is described in README.md ("Error codes").
 */
export type ErrorCode =
  /** The key is not a non-empty, well-formed string, or is longer than `maxKeyBytes`. */
  | 'KV_INVALID_KEY'
  /** The value cannot be stored exactly (undefined, function, symbol, bigint, cycle, NaN, lone surrogate …). */
  | 'KV_INVALID_VALUE'
  /** The encoded value is larger than `maxValueBytes`. */
  | 'KV_VALUE_TOO_LARGE'
  /** A batch, transaction or atomic commit is larger than `maxBatchBytes`. */
  | 'KV_BATCH_TOO_LARGE'
  /** An option or argument has the wrong type or range (bad TTL, negative limit, unknown mode). */
  | 'KV_INVALID_ARGUMENT'
  /** The store was closed, or is closing. */
  | 'KV_CLOSED'
  /** Another `Store` (in this or another process) holds the directory. */
  | 'KV_LOCKED'
  /** A WAL segment or snapshot failed its checksum or could not be decoded. */
  | 'KV_CORRUPT'
  /** A transaction kept conflicting after its retries. */
  | 'KV_CONFLICT'
  /** The operation does not apply to the type of value the key holds. */
  | 'KV_WRONG_TYPE'
  /** The value is not an integer, or the result leaves the safe-integer range. */
  | 'KV_NOT_INTEGER'
  /** A watch consumer fell more than `highWaterMark` changes behind; its feed was ended. */
  | 'KV_OVERFLOW'
  /** A file operation failed; the original error is the `cause`. After a write failure the store rejects writes until reopened. */
  | 'KV_IO'
  /** A networked backend (etcd) did not answer within its timeout, or lost the connection; the cause says which. */
  | 'KV_UNAVAILABLE'
  /** The call's `signal` was aborted; the signal's reason is the `cause`. What it had started is undone or finished, never left half done. */
  | 'KV_ABORTED'
  /**
   * A write would take the store past `maxMemoryBytes` and the `evictionPolicy` could not make
   * room (`'noeviction'`, or too few keys the policy may evict). Nothing was logged or applied;
   * reads and deletes keep working.
   */
  | 'KV_OUT_OF_MEMORY'
  /**
   * A write (or `compact`, `load`, `configure`) on a read-only follower
   * (`Store.open({ dir, readOnly: true })`). Write through the store that owns the directory.
   */
  | 'KV_READ_ONLY'
  /** `waitFor(seq, { timeoutMs })` gave up before the follower applied `seq`. */
  | 'KV_TIMEOUT'
  /**
   * `watch({ fromSeq })` asked for changes the WAL no longer holds (a compaction removed
   * them): re-read the state and watch again from its seq.
   */
  | 'KV_TRIMMED'

/**
 * The one error class kvstore throws (and rejects with).
 *
 * Switch on `code`, never on `message`. Lower-level errors are kept as `cause`.
 */
export class StoreError extends Error {
  override name = 'StoreError'
  /** Stable, machine-readable reason. */
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }

  /**
   * `instanceof StoreError` holds for errors of every copy of kvstore loaded in the process
   * (ESM and CJS builds side by side, two versions in node_modules): the test is a
   * process-wide brand, not the class's identity.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true
  }
}

/** Shared by every copy of this module in the process (`Symbol.for` is global). */
const BRAND = Symbol.for('kvstore.StoreError')
Object.defineProperty(StoreError.prototype, BRAND, { value: true })

/** True when `err` is a {@link StoreError} (from any copy of kvstore), optionally with the given code. */
export function isStoreError(err: unknown, code?: ErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code)
}

/**
 * `err` as a {@link StoreError}: kept when it is one; an operating-system error (one with an
 * errno `code` such as `ENOTDIR` or `ENOSPC`) becomes `KV_IO` with `context` and the original
 * as `cause`. Anything else is a bug and is returned unchanged.
 */
export function asStoreError(err: unknown, context: string): unknown {
  if (err instanceof StoreError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    return new StoreError('KV_IO', `${context}: ${(err as Error).message}`, { cause: err })
  }
  return err
}
