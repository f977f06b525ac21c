// The checks every write passes before anything is logged: key, value, hash field and
// batch sizes against the store's limits, and expiry times that the WAL can hold exactly.
import { checkOptionsObject, describeValue, positiveInt } from './arguments.js'
import type { Clock } from './clock.js'
import { StoreError } from './errors.js'
import { validateKey } from './key.js'
import type { Op } from './codec/ops.js'
import type { BatchOp, SetOptions } from './types.js'
import { encodedSize, prepareValue, writeBytes } from './value-check.js'

const SET_OPTION_KEYS = ['ttl', 'expiresAt', 'keepTtl', 'ifNotExists', 'ifExists'] as const satisfies readonly (keyof SetOptions)[]

/** A store's size limits and clock, applied to what callers pass in. */
export class Limits {
  constructor(
    readonly maxKeyBytes: number,
    readonly maxValueBytes: number,
    readonly maxBatchBytes: number,
    readonly clock: Clock,
    /** Expiry given to plain values written with no `ttl`, `expiresAt` or `keepTtl`; 0: none. */
    readonly defaultTtlMs = 0,
  ) {}

  /** The expiry of a write that names none: `now + defaultTtlMs`, or 0 (none). */
  defaultExpiry(): number {
    return this.defaultTtlMs > 0 ? this.deadline(this.defaultTtlMs) : 0
  }

  /** @throws {@link StoreError} `KV_INVALID_KEY`. */
  key(key: unknown): asserts key is string {
    validateKey(key, this.maxKeyBytes)
  }

  /**
   * The value as stored: validated, deep-frozen (bytes copied).
   * @throws {@link StoreError} `KV_INVALID_VALUE`, `KV_VALUE_TOO_LARGE`.
   */
  value(value: unknown): unknown {
    const stored = prepareValue(value)
    const max = this.maxValueBytes
    if (encodedSize(stored, max) > max) throw new StoreError('KV_VALUE_TOO_LARGE', `value exceeds maxValueBytes (${max})`)
    return stored
  }

  /**
   * A hash field: any well-formed string (empty included) within `maxKeyBytes`, as
   * snapshots can hold it. @throws {@link StoreError} `KV_INVALID_ARGUMENT`.
   */
  field(f: unknown): asserts f is string {
    if (typeof f !== 'string' || !f.isWellFormed()) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hash fields must be well-formed strings, got ${describeValue(f)}`)
    }
    const max = this.maxKeyBytes
    if (f.length * 3 > max && Buffer.byteLength(f, 'utf8') > max) {
      throw new StoreError('KV_INVALID_ARGUMENT', `hash field is longer than maxKeyBytes (${max} UTF-8 bytes)`)
    }
  }

  /**
   * The absolute expiry `options` ask for (0 = none), accepting only the `allowed` keys.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for unknown keys or a bad ttl.
   */
  expiresAt(options: SetOptions, allowed: readonly string[] = SET_OPTION_KEYS): number {
    // keyv calls set(key, value, ttlMs): point at the adapter that speaks that dialect.
    if (typeof options === 'number') {
      throw new StoreError('KV_INVALID_ARGUMENT', `set options must be an object such as { ttl: ${String(options)} }, got a number (for keyv, wrap the store in KeyvKvstore from the keyv entry)`)
    }
    checkOptionsObject('set option', options, allowed)
    if (options.expiresAt !== undefined) return positiveInt('expiresAt', options.expiresAt)
    if (options.ttl !== undefined) return this.deadline(positiveInt('ttl', options.ttl))
    return options.keepTtl === true ? 0 : this.defaultExpiry()
  }

  /**
   * `now + ttlMs`, refused when it leaves the safe-integer range: an expiry the WAL could
   * not hold exactly would make the store unopenable. @throws {@link StoreError} `KV_INVALID_ARGUMENT`.
   */
  deadline(ttlMs: number): number {
    const at = this.clock.now() + ttlMs
    if (!Number.isSafeInteger(at)) throw new StoreError('KV_INVALID_ARGUMENT', `ttl ${ttlMs} puts the expiry past the safe-integer range`)
    return at
  }

  /**
   * The ops of a batch, every one validated before any is applied.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT`, `KV_INVALID_KEY`, value errors, `KV_BATCH_TOO_LARGE`.
   */
  batch(ops: readonly BatchOp<unknown>[]): Op[] {
    if (!Array.isArray(ops)) throw new StoreError('KV_INVALID_ARGUMENT', `batch takes an array of operations, got ${describeValue(ops)}`)
    const prepared: Op[] = []
    let bytes = 0
    for (const op of ops) {
      if (typeof op !== 'object' || op === null) {
        throw new StoreError('KV_INVALID_ARGUMENT', `batch op must be an object, got ${describeValue(op)}`)
      }
      checkOptionsObject('batch op', op, op.type === 'set' ? ['type', 'key', 'value', 'ttl'] : ['type', 'key'])
      this.key(op.key)
      if (op.type === 'set') {
        const value = this.value(op.value)
        const expiresAt = op.ttl === undefined ? this.defaultExpiry() : this.expiresAt({ ttl: op.ttl })
        bytes += writeBytes(op.key, value, this.maxValueBytes)
        prepared.push({ t: 'set', key: op.key, value, expiresAt })
      } else if (op.type === 'delete') {
        bytes += writeBytes(op.key)
        prepared.push({ t: 'del', key: op.key })
      } else {
        throw new StoreError('KV_INVALID_ARGUMENT', `batch op type must be 'set' or 'delete', got ${describeValue((op as { type: unknown }).type)}`)
      }
    }
    this.batchBytes(bytes)
    return prepared
  }

  /** @throws {@link StoreError} `KV_BATCH_TOO_LARGE`. */
  batchBytes(bytes: number): void {
    if (bytes > this.maxBatchBytes) {
      throw new StoreError('KV_BATCH_TOO_LARGE', `batch of ~${bytes} bytes exceeds maxBatchBytes (${this.maxBatchBytes})`)
    }
  }
}
