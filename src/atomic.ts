import type { Op } from './codec/ops.js'
import { describeValue } from './arguments.js'
import { StoreError } from './errors.js'
import type { TransactionHost } from './transaction.js'
import { writeBytes } from './value-check.js'

/** Outcome of {@link AtomicOperation.commit}. */
export type AtomicResult = { readonly ok: true; readonly version: number } | { readonly ok: false; readonly failed: string[] }

/**
 * Compare-and-set for one or many keys, built with `store.atomic()`.
 *
 * `check(key, version)` asserts the key's current version (`null`: the key must not
 * exist). On `commit()` either every check passes and every write applies as one WAL
 * record with one new version, or nothing happens and the failed keys are reported.
 * Arguments are validated as they are added (a bad key or value throws at once).
 */
export interface AtomicOperation<V = unknown> {
  /** Require `key` to be at `version` (from `getEntry`), or absent when `null`. @throws {@link StoreError} `KV_INVALID_ARGUMENT`, `KV_INVALID_KEY`. */
  check(key: string, version: number | null): this
  /** Write `value` under `key` when the checks pass. @throws {@link StoreError} key, value and ttl errors as for `Store.set`. */
  set(key: string, value: V, options?: { ttl?: number; expiresAt?: number }): this
  /** Delete `key` when the checks pass. @throws {@link StoreError} `KV_INVALID_KEY`. */
  delete(key: string): this
  /**
   * Check and apply. Resolves once the writes are durable under the store's sync policy.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when committed twice; `KV_BATCH_TOO_LARGE`; `KV_CLOSED`; `KV_IO`.
   */
  commit(): Promise<AtomicResult>
}

/** A new {@link AtomicOperation} committing through `host`. */
export function createAtomic<V>(host: TransactionHost): AtomicOperation<V> {
  return new CheckAndSet<V>(host)
}

class CheckAndSet<V = unknown> implements AtomicOperation<V> {
  readonly #host: TransactionHost
  readonly #checks: { key: string; version: number }[] = []
  readonly #ops: Op[] = []
  #bytes = 0
  #committed = false

  constructor(host: TransactionHost) {
    this.#host = host
  }

  /** Require `key` to be at `version` (from `getEntry`), or absent when `null`. */
  check(key: string, version: number | null): this {
    this.#host.validateKey(key)
    if (version !== null && (!Number.isSafeInteger(version) || version < 1)) {
      throw new StoreError('KV_INVALID_ARGUMENT', `check version must be a positive integer or null, got ${describeValue(version)}`)
    }
    this.#checks.push({ key, version: version ?? 0 })
    return this
  }

  /** Write `value` under `key` when the checks pass. */
  set(key: string, value: V, options: { ttl?: number; expiresAt?: number } = {}): this {
    this.#host.validateKey(key)
    const stored = this.#host.prepare(value)
    const expiresAt = this.#host.expiresAt(options)
    this.#bytes += writeBytes(key, stored)
    this.#ops.push({ t: 'set', key, value: stored, expiresAt })
    return this
  }

  /** Delete `key` when the checks pass. */
  delete(key: string): this {
    this.#host.validateKey(key)
    this.#bytes += writeBytes(key)
    this.#ops.push({ t: 'del', key })
    return this
  }

  /**
   * Check and apply. Resolves once the writes are durable under the store's sync policy.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` when committed twice; `KV_BATCH_TOO_LARGE`; `KV_CLOSED`; `KV_IO`.
   */
  async commit(): Promise<AtomicResult> {
    if (this.#committed) throw new StoreError('KV_INVALID_ARGUMENT', 'atomic operation already committed')
    this.#committed = true
    const host = this.#host
    const outcome = await host.runExclusive(() => {
      const failed = this.#checks.filter((c) => host.versionOf(c.key) !== c.version).map((c) => c.key)
      if (failed.length > 0) return { ok: false as const, failed }
      return { ok: true as const, commit: host.commitOps(this.#ops, this.#bytes) }
    })
    if (!outcome.ok) return outcome
    await outcome.commit.done
    return { ok: true, version: outcome.commit.seq }
  }
}
