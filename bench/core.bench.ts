// Core operations at n keys: kvstore in memory, through its async API, beside a plain
// Map doing the same work (the ceiling) and a sorted key array for ordered work.
import { Store } from '../src/index.js'
import { Rows, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

const G = 'core'
const BATCH = 1000
const KV = 'kvstore (memory)'

/** A prefix that selects about 1,000 of the n keys (about 200 with --quick sizes). */
export function prefixFor(n: number): string {
  return n >= 500_000 ? 'k07:0' : 'k07:'
}

/** First index of `arr` (sorted) whose element is >= `key`. */
export function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((arr[mid] as string) < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const keys = makeKeys(ctx.n, 1)
  const fresh = makeKeys(ctx.n, 2, 'n') // never present: inserts of new keys
  const lookups = shuffle(keys.slice(0, Math.min(keys.length, 200_000)), 3)
  const store = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const map = new Map<string, string>()
  for (const k of keys) {
    await store.set(k, VALUE)
    map.set(k, VALUE)
  }
  await store.keys('none:*') // settle: the bulk-inserted keys sorted in, outside any timing
  const sorted = [...keys].sort()
  let at = 0
  const next = (): string => {
    const k = lookups[at] as string
    at = at + 1 === lookups.length ? 0 : at + 1
    return k
  }

  rows.add(await measure(ctx, G, 'get', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.get(next())
  }, { id: 'core.get.kvstore' }))
  // `sink` keeps V8 from discarding Map lookups whose results are unused.
  let sink = 0
  rows.add(await measure(ctx, G, 'get', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) sink += (map.get(next()) as string).length
  }, { id: 'core.get.map' }))
  rows.add(await measure(ctx, G, 'has', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.has(next())
  }))
  rows.add(await measure(ctx, G, 'has', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) if (map.has(next())) sink++
  }))
  // Synchronous reads (getSync, hasSync): the same lookups without a promise per call.
  rows.add(await measure(ctx, G, 'getSync', KV, BATCH, () => {
    for (let i = 0; i < BATCH; i++) sink += (store.getSync(next()) as string).length
  }, { id: 'core.get-sync.kvstore' }))
  rows.add(await measure(ctx, G, 'getSync', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) sink += (map.get(next()) as string).length
  }, { id: 'core.get-sync.map' }))
  rows.add(await measure(ctx, G, 'hasSync', KV, BATCH, () => {
    for (let i = 0; i < BATCH; i++) if (store.hasSync(next())) sink++
  }))
  rows.add(await measure(ctx, G, 'hasSync', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) if (map.has(next())) sink++
  }))
  // The floor of any promise API: Map.get with one await per call.
  rows.add(await measure(ctx, G, 'get', 'Map, awaited', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) sink += ((await map.get(next())) as string).length
  }, { note: 'what one await per call costs on its own' }))
  rows.add(await measure(ctx, G, 'set (overwrite)', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(next(), VALUE)
  }, { id: 'core.set-overwrite.kvstore' }))
  rows.add(await measure(ctx, G, 'set (overwrite)', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) map.set(next(), VALUE)
  }))
  await store.keys('none:*')
  // The memtable applies writes to its sorted chunks lazily, at the next ordered read;
  // this row pays that deferred cost inside the timing (one ordered read per batch).
  rows.add(await measure(ctx, G, 'set (overwrite), sorted in per 1,000', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(next(), VALUE)
    await store.keys('none:*')
  }, { note: 'each batch ends with an ordered read that applies the deferred writes' }))

  // New keys in random order; each batch's inserts are removed again after it (untimed).
  let f = 0
  const inserted: string[] = []
  const undoInserts = (del: (k: string) => unknown) => async () => {
    for (const k of inserted.splice(0)) await del(k)
  }
  const nextFresh = (): string => {
    const k = fresh[f] as string
    f = f + 1 === fresh.length ? 0 : f + 1
    inserted.push(k)
    return k
  }
  rows.add(await measure(ctx, G, 'set (new keys)', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(nextFresh(), VALUE)
  }, { id: 'core.set-new.kvstore', afterEach: undoInserts((k) => store.delete(k)) }))
  rows.add(await measure(ctx, G, 'set (new keys), sorted in per 1,000', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(nextFresh(), VALUE)
    await store.keys('none:*')
  }, { note: 'each batch ends with an ordered read that sorts the new keys in', afterEach: undoInserts((k) => store.delete(k)) }))
  f = 0
  rows.add(await measure(ctx, G, 'set (new keys)', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) map.set(nextFresh(), VALUE)
  }, { afterEach: undoInserts((k) => map.delete(k)) }))

  // Delete existing keys; put them back after each batch (untimed).
  const deleted: string[] = []
  rows.add(await measure(ctx, G, 'delete', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) {
      const k = next()
      deleted.push(k)
      await store.delete(k)
    }
  }, {
    id: 'core.delete.kvstore',
    afterEach: async () => {
      for (const k of deleted.splice(0)) await store.set(k, VALUE)
      await store.keys('none:*') // sort the re-inserted keys in now, outside the timed part
    },
  }))
  rows.add(await measure(ctx, G, 'delete', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) {
      const k = next()
      deleted.push(k)
      map.delete(k)
    }
  }, { afterEach: () => { for (const k of deleted.splice(0)) map.set(k, VALUE) } }))

  const prefix = prefixFor(ctx.n)
  const matches = (await store.keys(`${prefix}*`)).length
  const note = `${matches} keys per call`
  const wl = `keys('${prefix}*')`
  rows.add(await measure(ctx, G, wl, KV, 1, () => store.keys(`${prefix}*`), { note }))
  rows.add(await measure(ctx, G, wl, 'sorted array', 1, () => {
    const out: string[] = []
    for (let i = lowerBound(sorted, prefix); i < sorted.length && (sorted[i] as string).startsWith(prefix); i++) out.push(sorted[i] as string)
    return out
  }, { note: `${note}; binary search + slice` }))
  rows.add(await measure(ctx, G, wl, 'Map (full scan)', 1, () => {
    const out: string[] = []
    for (const k of map.keys()) if (k.startsWith(prefix)) out.push(k)
    return out.sort()
  }, { note: `${note}; O(n) scan + sort` }))

  const SCAN = 1000
  const starts = shuffle(keys.slice(0, 1000), 4)
  let s = 0
  rows.add(await measure(ctx, G, 'scan 1,000', KV, SCAN, async () => {
    let c = 0
    for await (const _ of store.scan({ gte: starts[s++ % starts.length] as string, limit: SCAN })) c++
    return c
  }, { note: 'entries/s, [key, value] pairs in order' }))
  rows.add(await measure(ctx, G, 'scan 1,000', 'sorted array + Map', SCAN, () => {
    const from = lowerBound(sorted, starts[s++ % starts.length] as string)
    let c = 0
    for (let i = from; i < from + SCAN && i < sorted.length; i++) if (map.get(sorted[i] as string) !== undefined) c++
    return c
  }, { note: 'entries/s' }))

  const batchOps = () => Array.from({ length: BATCH }, () => ({ type: 'set' as const, key: next(), value: VALUE }))
  rows.add(await measure(ctx, G, 'batch of 1,000 writes', KV, BATCH, () => store.batch(batchOps()), { note: 'writes/s, all-or-nothing' }))
  rows.add(await measure(ctx, G, 'batch of 1,000 writes', 'Map', BATCH, () => {
    for (const op of batchOps()) map.set(op.key, op.value)
  }, { note: 'writes/s' }))

  // One key created and deleted over and over (a lock, a queue that empties): V8's Map
  // keeps deleted entries in their bucket chain until it rehashes, so in a big Map the
  // chain of one churned key grows long. Last, so its tombstones touch no other task.
  rows.add(await measure(ctx, G, 'set + delete of one key, repeated', KV, BATCH, async () => {
    for (let i = 0; i < BATCH / 2; i++) {
      await store.set('churn', VALUE)
      await store.delete('churn')
    }
  }, { note: 'ops/s, set and delete one op each' }))
  rows.add(await measure(ctx, G, 'set + delete of one key, repeated', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH / 2; i++) {
      map.set('churn', VALUE)
      map.delete('churn')
    }
  }, { note: 'the same pattern on a plain Map of n entries' }))
  await store.close()
  if (sink < 0) console.log(sink)
  return rows.list
}
