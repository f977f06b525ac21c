// Core operations at n keys: kvstore in memory beside a plain Map (+ sorted key array
// for ordered work), the ceiling.
import { Store } from '../src/index.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure, type BenchContext, type Row } from './lib/harness.js'

const G = 'core'
const BATCH = 1000

/** A prefix that selects about 1,000 of the n keys. */
export function prefixFor(n: number): string {
  return n >= 500_000 ? 'k07:0' : 'k07:'
}

function lowerBound(arr: string[], key: string): number {
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
  const rows: Row[] = []
  const keys = makeKeys(ctx.n, 1)
  const fresh = makeKeys(ctx.n, 2, 'n') // never present: for inserts of new keys
  const lookups = shuffle(keys.slice(0, Math.min(keys.length, 200_000)), 3)
  const store = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const map = new Map<string, string>()
  for (const k of keys) {
    await store.set(k, VALUE)
    map.set(k, VALUE)
  }
  const sorted = [...keys].sort()
  let at = 0
  const next = (): string => {
    const k = lookups[at] as string
    at = at + 1 === lookups.length ? 0 : at + 1
    return k
  }

  rows.push(await measure(ctx, G, 'get', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.get(next())
  }))
  // `sink` keeps V8 from discarding Map lookups whose results are unused.
  let sink = 0
  rows.push(await measure(ctx, G, 'get', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) sink += (map.get(next()) as string).length
  }))
  rows.push(await measure(ctx, G, 'has', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.has(next())
  }))
  rows.push(await measure(ctx, G, 'has', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) if (map.has(next())) sink++
  }))
  rows.push(await measure(ctx, G, 'set (overwrite)', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(next(), VALUE)
  }))
  rows.push(await measure(ctx, G, 'set (overwrite)', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) map.set(next(), VALUE)
  }))

  // New keys in random order; each task's inserts are removed again after it (untimed).
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
  rows.push(await measure(ctx, G, 'set (new keys)', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await store.set(nextFresh(), VALUE)
  }, { afterEach: undoInserts((k) => store.delete(k)) }))
  f = 0
  rows.push(await measure(ctx, G, 'set (new keys)', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) map.set(nextFresh(), VALUE)
  }, { afterEach: undoInserts((k) => map.delete(k)) }))

  // Delete existing keys; put them back after each batch (untimed).
  const deleted: string[] = []
  rows.push(await measure(ctx, G, 'delete', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) {
      const k = next()
      deleted.push(k)
      await store.delete(k)
    }
  }, {
    afterEach: async () => {
      for (const k of deleted.splice(0)) await store.set(k, VALUE)
      await store.keys('none:*') // sort the re-inserted keys in now, outside the timed part
    },
  }))
  rows.push(await measure(ctx, G, 'delete', 'Map', BATCH, () => {
    for (let i = 0; i < BATCH; i++) {
      const k = next()
      deleted.push(k)
      map.delete(k)
    }
  }, { afterEach: () => { for (const k of deleted.splice(0)) map.set(k, VALUE) } }))

  const prefix = prefixFor(ctx.n)
  const matches = (await store.keys(`${prefix}*`)).length
  const note = `${matches} keys`
  rows.push(await measure(ctx, G, `keys('${prefix}*')`, 'kvstore (memory)', 1, () => store.keys(`${prefix}*`), { note }))
  rows.push(await measure(ctx, G, `keys('${prefix}*')`, 'Map (full scan)', 1, () => {
    const out: string[] = []
    for (const k of map.keys()) if (k.startsWith(prefix)) out.push(k)
    return out.sort()
  }, { note }))
  rows.push(await measure(ctx, G, `keys('${prefix}*')`, 'sorted array', 1, () => {
    const out: string[] = []
    for (let i = lowerBound(sorted, prefix); i < sorted.length && (sorted[i] as string).startsWith(prefix); i++) out.push(sorted[i] as string)
    return out
  }, { note }))

  const SCAN = 1000
  const starts = shuffle(keys.slice(0, 1000), 4)
  let s = 0
  rows.push(await measure(ctx, G, 'scan 1,000', 'kvstore (memory)', SCAN, async () => {
    let n = 0
    for await (const _ of store.scan({ gte: starts[s++ % starts.length] as string, limit: SCAN })) n++
    return n
  }))
  rows.push(await measure(ctx, G, 'scan 1,000', 'sorted array + Map', SCAN, () => {
    const from = lowerBound(sorted, starts[s++ % starts.length] as string)
    let n = 0
    for (let i = from; i < from + SCAN && i < sorted.length; i++) if (map.get(sorted[i] as string) !== undefined) n++
    return n
  }))

  const batchOps = () => Array.from({ length: BATCH }, () => ({ type: 'set' as const, key: next(), value: VALUE }))
  rows.push(await measure(ctx, G, 'batch of 1,000 writes', 'kvstore (memory)', BATCH, () => store.batch(batchOps())))
  rows.push(await measure(ctx, G, 'batch of 1,000 writes', 'Map', BATCH, () => {
    for (const op of batchOps()) map.set(op.key, op.value)
  }))
  await store.close()
  if (sink < 0) console.log(sink)
  return rows
}
