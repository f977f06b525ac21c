// TTL and data types in a store of n keys; WAL bytes per list push and hash set. Memory
// per key with and without a TTL is in memory.bench.ts.
import { join } from 'node:path'
import { Store } from '../src/index.js'
import { metric, Rows, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

const G = 'ttl & types'
const BATCH = 1000
const KV = 'kvstore (memory)'
const HOUR = 3_600_000

/** A memory store holding `keys`, each with a TTL when `ttl`. */
async function filled(keys: string[], ttl: boolean): Promise<Store<unknown>> {
  const s = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
  for (let i = 0; i < keys.length; i += 10_000) {
    await s.batch(keys.slice(i, i + 10_000).map((key) => (ttl ? { type: 'set' as const, key, value: VALUE, ttl: HOUR } : { type: 'set' as const, key, value: VALUE })))
  }
  await s.keys('none:*') // sorts the pending writes in, so no row pays for it
  return s
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const keys = makeKeys(ctx.n, 41)
  const order = shuffle(keys.slice(0, Math.min(200_000, keys.length)), 42)
  let at = 0
  const next = (): string => order[at++ % order.length] as string
  const n = ctx.n.toLocaleString('en')

  // The TTL rows' baseline: the same store size, key order and calls without a TTL, in this
  // group, so heap state and the place in the run are alike (the core rows run first, on a
  // fresh heap, and are not comparable to rows taken after four other groups).
  const plain = await filled(keys, false)
  const plainNote = `store of ${n} keys, none with a TTL: the baseline of the TTL rows below`
  rows.add(await measure(ctx, G, 'set (overwrite), no TTL', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await plain.set(next(), VALUE)
  }, { note: plainNote, id: 'ttl.set-plain' }))
  await plain.keys('none:*')
  rows.add(await measure(ctx, G, 'get, no TTL', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await plain.get(next())
  }, { note: plainNote, id: 'ttl.get-plain' }))
  await plain.close()
  ;(globalThis as { gc?: () => void }).gc?.()

  const s = await filled(keys, true)
  at = 0
  const note = `store of ${n} keys, each with a TTL`
  rows.add(await measure(ctx, G, 'set with TTL (overwrite)', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.set(next(), VALUE, { ttl: HOUR })
  }, { note, id: 'ttl.set' }))
  await s.keys('none:*')
  rows.add(await measure(ctx, G, 'get of a key with TTL', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.get(next())
  }, { note, id: 'ttl.get' }))
  const counters = keys.slice(0, 1000).map((k) => `c:${k}`)
  rows.add(await measure(ctx, G, 'incr', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.incr(counters[i] as string)
  }, { note: '1,000 counters' }))
  await s.rpush('queue', ...Array.from({ length: 1000 }, (_, i) => `e${i}`))
  rows.add(await measure(ctx, G, 'rpush + lpop, list of 1,000', KV, BATCH, async () => {
    for (let i = 0; i < BATCH / 2; i++) {
      await s.rpush('queue', VALUE)
      await s.lpop('queue')
    }
  }, { note: 'ops/s, a push and a pop are one op each' }))
  rows.add(await measure(ctx, G, 'rpush + lpop, list emptied each time', KV, BATCH, async () => {
    for (let i = 0; i < BATCH / 2; i++) {
      await s.rpush('q2', VALUE)
      await s.lpop('q2')
    }
  }, { note: 'the last pop deletes the key, the next push creates it again', id: 'list.emptied' }))
  const fields = keys.slice(0, 1000)
  rows.add(await measure(ctx, G, 'hset', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.hset('h', { [fields[i] as string]: VALUE })
  }, { note: 'one field per call, hash of 1,000 fields' }))
  rows.add(await measure(ctx, G, 'hget', KV, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.hget('h', fields[i] as string)
  }))
  await s.close()

  // WAL cost of one push onto a big list, and of one hset on a big hash.
  const big = ctx.quick ? 10_000 : 100_000
  const listWl = `WAL bytes per push onto a ${big.toLocaleString('en')}-element list`
  const hashWl = `WAL bytes per hset on a ${big.toLocaleString('en')}-field hash`
  if (!ctx.wants(G, listWl, 'kvstore (dir)') && !ctx.wants(G, hashWl, 'kvstore (dir)')) return rows.list
  const d = await Store.open<string>({ dir: join(ctx.tmp, 'wal-cost'), sync: 'never', compactThresholdBytes: 0, expirySweepIntervalMs: 0 })
  for (let i = 0; i < big; i += 1000) await d.rpush('list', ...Array.from({ length: 1000 }, (_, j) => `e${i + j}`))
  for (let i = 0; i < big; i += 1000) {
    const f: Record<string, string> = {}
    for (let j = 0; j < 1000; j++) f[`f${i + j}`] = 'x'
    await d.hset('hash', f)
  }
  const PUSHES = 100
  let before = d.stats().walBytes
  for (let i = 0; i < PUSHES; i++) await d.rpush('list', `one more element ${i % 10}`)
  rows.add(metric(ctx, G, listWl, 'kvstore (dir)', (d.stats().walBytes - before) / PUSHES, 'bytes', { note: `mean of ${PUSHES} pushes of an 18-character element (stats().walBytes delta)` }))
  before = d.stats().walBytes
  for (let i = 0; i < PUSHES; i++) await d.hset('hash', { [`new${i % 10}`]: 'value' })
  rows.add(metric(ctx, G, hashWl, 'kvstore (dir)', (d.stats().walBytes - before) / PUSHES, 'bytes', { note: `mean of ${PUSHES} one-field hsets (stats().walBytes delta)` }))
  await d.close()
  return rows.list
}
