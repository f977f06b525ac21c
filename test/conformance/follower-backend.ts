// The conformance suite through a follower: a writer and a read-only follower on one real
// directory, behind one StoreLike. Writes go to the writer; reads, scans and watch feeds
// go to the follower once it has applied every write issued so far. So every test of the
// suite checks that a follower shows exactly what the writer acknowledged.
import { join } from 'node:path'
import { Store, type StoreOptions } from '../../src/index.js'
import { copyAsKilled, DIR_CAPABILITIES, openedStores, tempDir, track, type Backend, type FeedLike, type OpenOptions, type StoreLike } from './harness.js'

type Method = keyof StoreLike

/** Reads the follower answers (after catching up with the writer). */
const FOLLOWER_READS = new Set<Method>([
  'get', 'getMany', 'getEntry', 'version', 'has', 'type', 'keys', 'count',
  'ttl', 'lrange', 'llen', 'lindex', 'hget', 'hgetall', 'hlen', 'hexists',
])

/** The follower's options: those of the writer that apply to reads. */
function followerOptions(dir: string, o: OpenOptions): StoreOptions {
  const f: StoreOptions = { dir, readOnly: true }
  if (o.clock !== undefined) f.clock = o.clock
  if (o.maxKeyBytes !== undefined) f.maxKeyBytes = o.maxKeyBytes
  if (o.maxValueBytes !== undefined) f.maxValueBytes = o.maxValueBytes
  if (o.expirySweepIntervalMs !== undefined) f.expirySweepIntervalMs = o.expirySweepIntervalMs
  return f
}

/** One StoreLike over a writer and its follower. */
function pair(writer: Store<unknown>, follower: Store<unknown>, options: OpenOptions): StoreLike {
  // Sliding expiry makes a read a write: those reads must go to the writer.
  const readsWrite = (options.slidingTtlMs ?? 0) > 0
  // A read on the writer waits behind what is queued there (behind an update, say), so its
  // seq then covers every write issued before; then the follower catches up to that seq.
  const caughtUp = async (): Promise<void> => {
    await writer.count()
    await follower.waitFor(writer.seq, { timeoutMs: 20_000 })
  }
  const viaFollower = <A extends unknown[], R>(name: Method) =>
    async (...given: A): Promise<R> => {
      // A closed pair answers like a closed store, whatever the follower would say.
      if (writer.closed) return (writer[name] as (...a: A) => Promise<R>)(...given)
      // Arguments as they are at the call (a keys array changed later must not count).
      const args = given.map((a) => (Array.isArray(a) ? [...a] : a)) as A
      await caughtUp()
      return (follower[name] as (...a: A) => Promise<R>).apply(follower, args)
    }
  const viaWriter = <A extends unknown[], R>(name: Method) =>
    async (...args: A): Promise<R> => {
      try {
        return await (writer[name] as (...a: A) => Promise<R>).apply(writer, args)
      } finally {
        // Whatever it wrote is on the follower before the call resolves.
        if (!writer.closed) await caughtUp()
      }
    }
  let closing: Promise<void> | undefined
  const target: Record<string, unknown> = {}
  for (const name of ['set', 'delete', 'clear', 'batch', 'update', 'expire', 'expireAt', 'persist', 'touch', 'incr', 'decr',
    'lpush', 'rpush', 'lpop', 'rpop', 'popMany', 'lset', 'ltrim', 'hset', 'hdel', 'load', 'compact'] as const) {
    target[name] = viaWriter(name)
  }
  for (const name of FOLLOWER_READS) target[name] = readsWrite && (name === 'get' || name === 'getEntry') ? viaWriter(name) : viaFollower(name)
  return {
    ...(target as unknown as StoreLike),
    // A snapshot holds the state as of its call: the writer's (a follower's copy, made once it
    // caught up, could hold writes issued after the call; test/unit/follower.test.ts checks those).
    snapshot: (path?: string, o?: Parameters<StoreLike['snapshot']>[1]) => writer.snapshot(path, o),
    scan: (o?: Parameters<StoreLike['scan']>[0]) => {
      // A scan's view is taken at the call: catch up first, then scan the follower.
      if (writer.closed) return writer.scan(o)
      // Bad options throw at the call, as a store's scan does.
      void follower.scan(o).return?.()
      const wait = caughtUp()
      let inner: AsyncIterableIterator<[string, unknown]> | undefined
      const it: AsyncIterableIterator<[string, unknown]> = {
        next: async () => {
          if (inner === undefined) {
            await wait
            inner = follower.scan(o)
          }
          return inner.next()
        },
        return: async () => (inner === undefined ? { value: undefined, done: true } : ((await inner.return?.()) ?? { value: undefined, done: true })),
        [Symbol.asyncIterator]() {
          return it
        },
      }
      return it
    },
    // Transactions and compare-and-set commit on the writer (their reads are point-in-time there).
    transaction: (fn, o) => writer.transaction(fn, o).finally(() => (writer.closed ? undefined : caughtUp())),
    atomic: () => {
      const op = writer.atomic()
      const wrapped = {
        check: (k: string, v: number | null) => (op.check(k, v), wrapped),
        set: (k: string, v: unknown, o?: { ttl?: number; expiresAt?: number }) => (op.set(k, v, o), wrapped),
        delete: (k: string) => (op.delete(k), wrapped),
        commit: () => op.commit().finally(() => (writer.closed ? undefined : caughtUp())),
      }
      return wrapped
    },
    watch: (o) => (writer.closed ? writer.watch(o) : (follower.watch(o) as FeedLike)),
    namespace: (prefix: string) => writer.namespace(prefix),
    stats: () => writer.stats(),
    close: () => {
      closing ??= (async () => {
        try {
          await writer.close()
        } finally {
          await follower.close()
        }
      })()
      return closing
    },
    get closed() {
      return writer.closed
    },
  }
}

/**
 * A directory store on the real file system (`sync: 'never'`) read through a follower. A
 * crash is what kill -9 of the writer leaves, opened by a new writer and follower.
 */
export function followerBackend(): Backend {
  const { remember, known } = openedStores<{ dir: string; options: OpenOptions }>('follower')
  const openAt = async (dir: string, options: OpenOptions): Promise<StoreLike> => {
    const writer = await Store.open<unknown>({ ...options, dir, sync: 'never' })
    let follower: Store<unknown>
    try {
      follower = await Store.open<unknown>(followerOptions(dir, options))
    } catch (err) {
      await writer.close()
      throw err
    }
    const store = track(pair(writer, follower, options))
    remember(store, { dir, options })
    return store
  }
  return {
    name: 'dir read through a follower',
    // Reads wait until the follower has every write issued before them, and may see later ones.
    capabilities: { ...DIR_CAPABILITIES, readsInCallOrder: false },
    open: (options = {}) => openAt(join(tempDir(), 'db'), options),
    reopen: async (store, options) => {
      const o = known(store)
      await store.close()
      return openAt(o.dir, options ?? o.options)
    },
    crash: async (store) => {
      const o = known(store)
      return openAt(copyAsKilled(o.dir), o.options)
    },
    scratchPath: (file) => join(tempDir(), file),
  }
}
