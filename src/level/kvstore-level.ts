// An abstract-level database over a kvstore Store. Level keys and values are bytes: each
// key is stored as KEY_PREFIX + one char per byte (latin1), so the store's UTF-16 order
// equals Level's byte order, and each value as a Uint8Array. Encodings, sublevels, chained
// batches, events and hooks come from abstract-level.
import { existsSync, readdirSync } from 'node:fs'
import { AbstractIterator, AbstractLevel, type AbstractDatabaseOptions, type AbstractIteratorOptions, type AbstractOpenOptions } from 'abstract-level'
import { describeValue } from '../arguments.js'
import { StoreError } from '../errors.js'
import type { StoreOptions } from '../options.js'
import type { ScanOptions } from '../scan-options.js'
import { Store } from '../store.js'
import type { BatchOp } from '../types.js'

/** Every Level key is stored under this prefix (so the empty Level key is a valid kvstore key). */
const KEY_PREFIX = 'l:'
/** Deletes per batch in `clear()`. */
const CLEAR_CHUNK = 512

/** Options of {@link KvstoreLevel}: abstract-level's, plus the kvstore store's own. */
export interface KvstoreLevelOptions<K, V> extends AbstractDatabaseOptions<K, V> {
  /**
   * Options for the underlying `Store.open` (`sync`, `recovery`, limits, …). `dir` and `file`
   * are not allowed here: the location argument sets the directory.
   * @defaultValue `{}`
   */
  store?: Omit<StoreOptions, 'dir' | 'file'>
}

type Bytes = Uint8Array

const toKey = (bytes: Bytes): string => KEY_PREFIX + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
const fromKey = (key: string): Bytes => Buffer.from(key.slice(KEY_PREFIX.length), 'latin1')
const toValue = (v: unknown): Bytes | undefined => (v === undefined ? undefined : v instanceof Uint8Array ? v : Buffer.from(JSON.stringify(v)))

/**
 * A Level database (abstract-level 3) backed by kvstore: `new KvstoreLevel(dir)` keeps its
 * data in a kvstore directory (WAL + snapshots), `new KvstoreLevel()` in memory — the
 * conventions of `ClassicLevel` and `MemoryLevel`.
 *
 * An iterator reads a point-in-time view taken at its creation; `seek()` starts a new view
 * from the target, so `supports.implicitSnapshots` is `false`. `db.snapshot()` and
 * `getSync()` are not supported (see `supports` and the README's "Adapters").
 * Errors from the store are `StoreError`s, wrapped by abstract-level where it wraps
 * (for example `LEVEL_DATABASE_NOT_OPEN` with the `StoreError` as `cause`).
 */
export class KvstoreLevel<K = string, V = string> extends AbstractLevel<Bytes, K, V> {
  /** The directory, or `undefined` in memory. */
  readonly location: string | undefined
  readonly #storeOptions: Omit<StoreOptions, 'dir' | 'file'>
  #store: Store<Bytes> | undefined

  /**
   * @param location - a directory (created unless `createIfMissing: false`); omit it for memory.
   * @throws {@link StoreError} `KV_INVALID_ARGUMENT` for an empty or non-string location.
   */
  constructor(location?: string, options?: KvstoreLevelOptions<K, V>)
  constructor(options?: KvstoreLevelOptions<K, V>)
  constructor(location?: string | KvstoreLevelOptions<K, V>, options?: KvstoreLevelOptions<K, V>) {
    if (typeof location === 'object' && location !== null) {
      options = location
      location = undefined
    }
    if (location !== undefined && (typeof location !== 'string' || location === '')) {
      throw new StoreError('KV_INVALID_ARGUMENT', `location must be a non-empty string, got ${describeValue(location)}`)
    }
    const persistent = location !== undefined
    // The store's own options are this adapter's; abstract-level (and its hooks) never see them.
    const { store = {}, ...levelOptions } = options ?? {}
    super(
      {
        encodings: { view: true },
        permanence: persistent,
        createIfMissing: persistent,
        errorIfExists: persistent,
        has: true,
        // An iterator reads one point-in-time view from its creation, but seek() starts a new
        // one; Level's implicit snapshot promises the view across seeks, so it is not claimed.
        implicitSnapshots: false,
        explicitSnapshots: false,
        seek: true,
        signals: { iterators: true },
      },
      levelOptions,
    )
    this.location = location
    if (typeof store !== 'object' || store === null || 'dir' in store || 'file' in store) {
      throw new StoreError('KV_INVALID_ARGUMENT', 'the store option takes Store.open options without dir or file')
    }
    this.#storeOptions = store
  }

  #open(): Store<Bytes> {
    if (this.#store === undefined) throw new StoreError('KV_CLOSED', 'the database is not open')
    return this.#store
  }

  async _open(options: AbstractOpenOptions): Promise<void> {
    const dir = this.location
    if (dir !== undefined) {
      const exists = existsSync(dir)
      if (!exists && options.createIfMissing === false) throw new StoreError('KV_INVALID_ARGUMENT', `${dir} does not exist (createIfMissing is false)`)
      if (exists && options.errorIfExists === true && readdirSync(dir).length > 0) {
        throw new StoreError('KV_INVALID_ARGUMENT', `${dir} already exists (errorIfExists is true)`)
      }
    }
    // In memory the store outlives close(): reopening finds the data, as with MemoryLevel.
    if (dir === undefined && this.#store !== undefined) return
    this.#store = await Store.open<Bytes>(dir === undefined ? this.#storeOptions : { ...this.#storeOptions, dir })
  }

  async _close(): Promise<void> {
    if (this.location === undefined) return
    const store = this.#store
    this.#store = undefined
    await store?.close()
  }

  async _get(key: Bytes): Promise<Bytes | undefined> {
    return toValue(await this.#open().get(toKey(key)))
  }

  async _getMany(keys: Bytes[]): Promise<(Bytes | undefined)[]> {
    return (await this.#open().getMany(keys.map(toKey))).map(toValue)
  }

  async _has(key: Bytes): Promise<boolean> {
    return this.#open().has(toKey(key))
  }

  async _hasMany(keys: Bytes[]): Promise<boolean[]> {
    const store = this.#open()
    return Promise.all(keys.map((k) => store.has(toKey(k))))
  }

  async _put(key: Bytes, value: Bytes): Promise<void> {
    await this.#open().set(toKey(key), value)
  }

  async _del(key: Bytes): Promise<void> {
    await this.#open().delete(toKey(key))
  }

  async _batch(operations: Array<{ type: 'put' | 'del'; key: Bytes; value?: Bytes }>): Promise<void> {
    const ops: BatchOp<Bytes>[] = operations.map((op) =>
      op.type === 'put' ? { type: 'set', key: toKey(op.key), value: op.value as Bytes } : { type: 'delete', key: toKey(op.key) },
    )
    await this.#open().batch(ops)
  }

  async _clear(options: RangeOptions): Promise<void> {
    const store = this.#open()
    let keys: BatchOp<Bytes>[] = []
    for await (const [key] of store.scan(scanOptions(options))) {
      keys.push({ type: 'delete', key })
      if (keys.length === CLEAR_CHUNK) {
        await store.batch(keys)
        keys = []
      }
    }
    if (keys.length > 0) await store.batch(keys)
  }

  _iterator(options: AbstractIteratorOptions<Bytes, Bytes> & RangeOptions): AbstractIterator<KvstoreLevel<K, V>, Bytes, Bytes> {
    const store = this.#open()
    return new KvstoreIterator(this, options, (range) => store.scan(scanOptions(range)))
  }
}

/** The range options abstract-level hands the private API, already encoded. */
interface RangeOptions {
  gt?: Bytes
  gte?: Bytes
  lt?: Bytes
  lte?: Bytes
  reverse?: boolean
  limit?: number
}

/** Level's range as a scan of the Level keys; as in Level, `gte` wins over `gt` and `lte` over `lt`. */
function scanOptions(o: RangeOptions): ScanOptions {
  const s: ScanOptions = { prefix: KEY_PREFIX }
  if (o.gte !== undefined) s.gte = toKey(o.gte)
  else if (o.gt !== undefined) s.gt = toKey(o.gt)
  if (o.lte !== undefined) s.lte = toKey(o.lte)
  else if (o.lt !== undefined) s.lt = toKey(o.lt)
  if (o.reverse === true) s.reverse = true
  if (typeof o.limit === 'number' && Number.isSafeInteger(o.limit) && o.limit >= 0) s.limit = o.limit
  return s
}

type Raw = [Bytes | undefined, Bytes | undefined]

type Scan = AsyncIterableIterator<[string, Bytes]>

/**
 * Iterates a `Store.scan`; its first step runs at creation, which is when the scan's view is
 * taken. `seek()` starts a new scan from the target: a fresh point-in-time view, so after a
 * seek the iterator sees writes made since it was created.
 */
class KvstoreIterator<K, V> extends AbstractIterator<KvstoreLevel<K, V>, Bytes, Bytes> {
  readonly #open: (range: RangeOptions) => Scan
  readonly #range: RangeOptions
  #scan: Scan
  readonly #keys: boolean
  readonly #values: boolean
  readonly #signal: AbortSignal | undefined
  #first: Promise<IteratorResult<[string, Bytes]>> | undefined

  constructor(db: KvstoreLevel<K, V>, options: AbstractIteratorOptions<Bytes, Bytes> & RangeOptions, open: (range: RangeOptions) => Scan) {
    super(db, options)
    this.#open = open
    this.#range = options
    const scan = open(options)
    this.#scan = scan
    this.#keys = options.keys !== false
    this.#values = options.values !== false
    this.#signal = (options as { signal?: AbortSignal }).signal
    // Implicit snapshot: the scan takes its point-in-time view in this first call.
    this.#first = scan.next()
    this.#first.catch(() => undefined)
  }

  async #step(): Promise<Raw | undefined> {
    const first = this.#first
    this.#first = undefined
    const r = await (first ?? this.#scan.next())
    if (this.#signal?.aborted === true) throw abortError()
    if (r.done === true) return undefined
    const [key, value] = r.value
    return [this.#keys ? fromKey(key) : undefined, this.#values ? toValue(value) : undefined]
  }

  async _next(): Promise<Raw | undefined> {
    return this.#step()
  }

  async _nextv(size: number): Promise<Raw[]> {
    const out: Raw[] = []
    while (out.length < size) {
      const e = await this.#step()
      if (e === undefined) break
      out.push(e)
    }
    return out
  }

  async _all(): Promise<Raw[]> {
    return this._nextv(Infinity)
  }

  _seek(target: Bytes): void {
    void this.#scan.return?.()
    // The new scan starts at the target, unless the range's own bound lies beyond it.
    const { limit: _limit, ...r } = this.#range
    let range: RangeOptions = r
    if (r.reverse === true) {
      const upper = r.lte ?? r.lt
      if (upper === undefined || Buffer.compare(target, upper) < 0) range = { ...without(r, 'lt'), lte: target }
    } else {
      const lower = r.gte ?? r.gt
      if (lower === undefined || Buffer.compare(target, lower) > 0) range = { ...without(r, 'gt'), gte: target }
    }
    this.#scan = this.#open(range)
    this.#first = this.#scan.next()
    this.#first.catch(() => undefined)
  }

  async _close(): Promise<void> {
    await this.#scan.return?.()
  }
}

/** abstract-level's abort error: `code` `LEVEL_ABORTED`, `name` `AbortError`. */
function abortError(): Error {
  return Object.assign(new Error('Operation has been aborted'), { code: 'LEVEL_ABORTED', name: 'AbortError' })
}

function without(r: RangeOptions, name: 'gt' | 'lt'): RangeOptions {
  const out = { ...r }
  delete out[name]
  return out
}
