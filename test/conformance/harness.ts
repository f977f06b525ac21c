// The conformance harness: what a backend is, what it declares it can do, and the small
// helpers every *.conformance.test.ts shares. Tests reach the store only through the
// public API (src/index.js), so any implementation of the same interface can run them.
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import {
  StoreError,
  type AtomicResult,
  type Change,
  type Clock,
  type ErrorCode,
  type Store,
  type StoreOptions,
  type Transaction,
  type WatchOptions,
} from '../../src/index.js'
import { FakeClock } from '../helpers/fake-clock.js'

export { FakeClock }

// ------------------------------------------------------------------ the contract

/**
 * What a backend declares about itself, like abstract-level's `supports` manifest. Every
 * test that depends on a flag asserts the declared behaviour in both branches; see
 * README.md for what each flag promises.
 */
export interface Capabilities {
  /** Data survives `close()` + open of the same location: `Backend.reopen` and `Backend.crash` exist. */
  readonly persistent: boolean
  /**
   * A resolved write survives a crash even when no snapshot was taken since (dir mode: WAL).
   * `false`: only what the last `snapshot()` (or `close()`) saved survives (file mode).
   */
  readonly survivesCrashWithoutSnapshot: boolean
  /** `open({ clock })` is honoured: TTLs follow the injected clock, so TTL tests never sleep. */
  readonly fakeClock: boolean
  /**
   * Versions are the store's commit sequence numbers: every commit gets `stats().seq + 1`,
   * shared by all keys of one batch/transaction/atomic commit. `false`: versions are only
   * positive integers that grow with every write.
   */
  readonly versionsAreSeqs: boolean
  /** `snapshot(path)` writes a copy of the contents to a file and `load(path)` reads one back. */
  readonly snapshotFiles: boolean
  /**
   * `snapshot()` with no path saves the store's own data (dir: compaction; file: rewrites
   * the file). `false`: it rejects with `KV_INVALID_ARGUMENT`.
   */
  readonly ownSnapshot: boolean
  /** `compact()` writes a snapshot and drops the log it covers (`stats().compactions` counts it). `false`: a no-op. */
  readonly compaction: boolean
  /** `lpush`/`rpush`/`lpop`/`rpop`/`popMany`/`lrange`/`llen`/`lindex`/`lset`/`ltrim`. `false`: they reject with a StoreError. */
  readonly lists: boolean
  /** `hset`/`hget`/`hdel`/`hgetall`/`hlen`/`hexists`. `false`: they reject with a StoreError. */
  readonly hashes: boolean
  /** `transaction(fn)`. `false`: it rejects with a StoreError. */
  readonly transactions: boolean
  /** `atomic()…commit()`. `false`: `atomic()` throws or `commit()` rejects with a StoreError. */
  readonly atomic: boolean
  /** `watch()`. `false`: it throws or its first `next()` rejects with a StoreError. */
  readonly watch: boolean
  /**
   * Most sets and deletes one `batch()` may hold (etcd: one txn). A larger batch rejects
   * with `KV_BATCH_TOO_LARGE` and writes nothing. `Infinity`: only `maxBatchBytes` limits it.
   */
  readonly maxBatchOps: number
  /**
   * `load(path)` into a store never written keeps the versions the file holds. `false`:
   * loaded keys get versions of the backend's own (etcd assigns revisions), so copies are
   * compared without versions.
   */
  readonly loadKeepsVersions: boolean
  /**
   * A read sees exactly the writes issued before it, even while they wait behind an
   * exclusive operation (one store, FIFO). `false` (a follower answers the reads): a read
   * sees every write that resolved before it was issued, and may see writes issued just after.
   */
  readonly readsInCallOrder: boolean
}

/** The transaction handle the suite uses. */
export type TxLike = Pick<Transaction<unknown>, 'get' | 'has' | 'keys' | 'scan' | 'set' | 'delete' | 'incr'>

/** The atomic-operation builder the suite uses. */
export interface AtomicLike {
  check(key: string, version: number | null): AtomicLike
  set(key: string, value: unknown, options?: { ttl?: number; expiresAt?: number }): AtomicLike
  delete(key: string): AtomicLike
  commit(): Promise<AtomicResult>
}

/** The change feed the suite uses. */
export interface FeedLike extends AsyncIterableIterator<Change> {
  /** Changes buffered and not yet consumed. */
  readonly pending: number
  close(): void
}

type StoreMethods =
  | 'get' | 'getMany' | 'getEntry' | 'namespace' | 'version' | 'has' | 'type' | 'keys' | 'scan' | 'count'
  | 'set' | 'delete' | 'clear' | 'batch' | 'update'
  | 'expire' | 'expireAt' | 'persist' | 'ttl' | 'touch'
  | 'incr' | 'decr'
  | 'lpush' | 'rpush' | 'lpop' | 'rpop' | 'popMany' | 'lrange' | 'llen' | 'lindex' | 'lset' | 'ltrim'
  | 'hset' | 'hget' | 'hdel' | 'hgetall' | 'hlen' | 'hexists'
  | 'snapshot' | 'load' | 'compact' | 'stats' | 'close' | 'closed'

/** The public API of `Store`, as the suite sees it. `Store<unknown>` implements it. */
export interface StoreLike extends Pick<Store<unknown>, StoreMethods> {
  transaction<R>(fn: (tx: TxLike) => R | Promise<R>, options?: { retries?: number; signal?: AbortSignal }): Promise<R>
  atomic(): AtomicLike
  watch(options?: WatchOptions): FeedLike
}

/** Options the suite may ask a backend to open with; the backend adds its own location. */
export type OpenOptions = Pick<
  StoreOptions,
  'clock' | 'maxKeyBytes' | 'maxValueBytes' | 'maxBatchBytes' | 'expirySweepIntervalMs' | 'slidingTtlMs' | 'defaultTtlMs'
>

export interface Backend {
  readonly name: string
  readonly capabilities: Capabilities
  /** A new, empty store. */
  open(options?: OpenOptions): Promise<StoreLike>
  /**
   * Close `store` and open the same data again, with the options of the first open unless
   * `options` are given. Present exactly when `capabilities.persistent`.
   */
  reopen?(store: StoreLike, options?: OpenOptions): Promise<StoreLike>
  /**
   * Open what a crash of `store` right now would leave behind (`store` itself is left open,
   * and closed at the end of the test without touching that image). Present exactly when
   * `capabilities.persistent`.
   */
  crash?(store: StoreLike): Promise<StoreLike>
  /** A fresh path, on the backend's file system, that `snapshot(path)` / `load(path)` of its stores can use. */
  scratchPath?(name: string): string
}

// -------------------------------------------------------------- per-test cleanup

const cleanups: (() => unknown)[] = []

/** Run `fn` after the current test, after everything registered later (LIFO). */
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn)
}

/** The capabilities every `Store` backend has (each adds the ones its mode decides). */
export const ALL_FEATURES = { lists: true, hashes: true, transactions: true, atomic: true, watch: true, maxBatchOps: Infinity, loadKeepsVersions: true, readsInCallOrder: true } as const

/** The capabilities of a directory store (WAL + snapshots). */
export const DIR_CAPABILITIES: Capabilities = {
  ...ALL_FEATURES,
  persistent: true,
  survivesCrashWithoutSnapshot: true,
  fakeClock: true,
  versionsAreSeqs: true,
  snapshotFiles: true,
  ownSnapshot: true,
  compaction: true,
}

/** What kill -9 of the store in `dir` leaves: its files as the OS has them now, minus the live `LOCK`; returns the copy's path. */
export function copyAsKilled(dir: string): string {
  const copy = join(tempDir(), 'crashed')
  cpSync(dir, copy, { recursive: true, filter: (src) => basename(src) !== 'LOCK' })
  return copy
}

/** What a backend remembers of the stores it opened, for `reopen` and `crash`. */
export function openedStores<T>(backend: string): { remember(store: StoreLike, how: T): void; known(store: StoreLike): T } {
  const opened = new WeakMap<StoreLike, T>()
  return {
    remember: (store, how) => opened.set(store, how),
    known: (store) => {
      const how = opened.get(store)
      if (how === undefined) throw new Error(`${backend}: store was not opened by this backend`)
      return how
    },
  }
}

/** Close `store` after the current test; returns it. */
export function track<S extends StoreLike>(store: S): S {
  onCleanup(() => store.close())
  return store
}

/** A fresh temporary directory, removed after the current test (after the stores in it are closed). */
export function tempDir(prefix = 'kvstore-conf-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

afterEach(async () => {
  const errors: unknown[] = []
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn()
    } catch (err) {
      errors.push(err)
    }
  }
  // A close that fails is a finding, not noise.
  expect(errors).toEqual([])
})

// ------------------------------------------------------------------- helpers

/** `backend.open` with a fake clock (when the backend honours one). */
export async function openWithClock(
  backend: Backend,
  options: OpenOptions = {},
): Promise<{ store: StoreLike; clock: FakeClock }> {
  const clock = new FakeClock()
  const store = await backend.open({ ...options, clock })
  return { store, clock }
}

/**
 * The code of the StoreError `fn` throws or rejects with; `'resolved'` when it succeeds;
 * `'not a StoreError: …'` otherwise. Covers both synchronous throws and rejections.
 */
/** Write `ops` with as few `batch()` calls as `backend` allows (for setup, not for atomicity). */
export async function fillInBatches(store: StoreLike, backend: Backend, ops: Parameters<StoreLike['batch']>[0]): Promise<void> {
  const size = Math.min(ops.length, backend.capabilities.maxBatchOps)
  for (let i = 0; i < ops.length; i += size) await store.batch(ops.slice(i, i + size))
}

export async function codeOf(fn: () => unknown): Promise<ErrorCode | 'resolved' | `not a StoreError: ${string}`> {
  try {
    await fn()
  } catch (err) {
    if (err instanceof StoreError) return err.code
    return `not a StoreError: ${String(err)}`
  }
  return 'resolved'
}

/** True when `fn` throws or rejects with a StoreError of any code. */
export async function failsWithStoreError(fn: () => unknown): Promise<boolean> {
  const code = await codeOf(fn)
  return code !== 'resolved' && !code.startsWith('not a StoreError')
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Keys of a scan. */
export async function scanKeys(store: StoreLike, options: Parameters<StoreLike['scan']>[0] = {}): Promise<string[]> {
  return (await collect(store.scan(options))).map(([k]) => k)
}

/** {@link dump} for comparing a loaded copy: without versions when the backend cannot keep them. */
export async function dumpLoaded(store: StoreLike, backend: Backend): Promise<unknown[]> {
  const d = await dump(store)
  return backend.capabilities.loadKeepsVersions ? d : d.map((e) => (e as unknown[]).filter((_, i) => i !== 3))
}

/** Everything a store holds, by key in key order: value (or list/hash contents), version and expiry. */
export async function dump(store: StoreLike): Promise<unknown[]> {
  const out: unknown[] = []
  for (const key of await store.keys('*')) {
    const type = await store.type(key)
    const version = await store.version(key)
    const ttl = await store.ttl(key)
    if (type === 'list') out.push([key, 'list', await store.lrange(key), version, ttl])
    else if (type === 'hash') {
      const fields = [...(await store.hgetall(key))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      out.push([key, 'hash', fields, version, ttl])
    }
    else {
      const e = await store.getEntry(key)
      out.push([key, type, e?.value, e?.version, e?.expiresAt])
    }
  }
  return out
}

/** Every change buffered in `feed` right now. */
export async function drain(feed: FeedLike): Promise<Change[]> {
  const out: Change[] = []
  while (feed.pending > 0) {
    const r = await feed.next()
    if (r.done) break
    out.push(r.value)
  }
  return out
}

/** A promise and the function that resolves it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void
  const wait = new Promise<void>((r) => (open = r))
  return { wait, open }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Recursively frozen. */
export function deepFrozen(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return true
  if (!Object.isFrozen(v)) return false
  return Object.values(v).every(deepFrozen)
}

export type { Clock }

/**
 * `it` when the backend has the capability, else nothing: a test of a capability exists
 * only where the manifest claims it (as abstract-level's `supports`), and a companion test
 * asserts the declared behaviour where it does not. Never a skipped test.
 */
export function itWhen(has: boolean): typeof it {
  return has ? it : ((() => undefined) as unknown as typeof it)
}
