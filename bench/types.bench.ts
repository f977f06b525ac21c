// TTL and data types at n keys; WAL bytes per list push; memory is in memory-probe.ts.
import { join } from 'node:path'
import { Store } from '../src/index.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure, metric, type BenchContext, type Row } from './lib/harness.js'

const G = 'ttl & types'
const BATCH = 1000

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const keys = makeKeys(ctx.n, 41)
  const s = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
  for (let i = 0; i < keys.length; i += 10_000) {
    await s.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE, ttl: 3_600_000 })))
  }
  const order = shuffle(keys.slice(0, Math.min(200_000, keys.length)), 42)
  let at = 0
  const next = (): string => order[at++ % order.length] as string
  rows.push(await measure(ctx, G, 'set with TTL', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.set(next(), VALUE, { ttl: 3_600_000 })
  }))
  rows.push(await measure(ctx, G, 'get of a key with TTL', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.get(next())
  }))
  const counters = keys.slice(0, 1000).map((k) => `c:${k}`)
  rows.push(await measure(ctx, G, 'incr', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.incr(counters[i] as string)
  }))
  rows.push(await measure(ctx, G, 'rpush + lpop', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH / 2; i++) {
      await s.rpush('queue', VALUE)
      await s.lpop('queue')
    }
  }))
  const fields = keys.slice(0, 1000)
  rows.push(await measure(ctx, G, 'hset', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.hset('h', { [fields[i] as string]: VALUE })
  }))
  rows.push(await measure(ctx, G, 'hget', 'kvstore (memory)', BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await s.hget('h', fields[i] as string)
  }))
  await s.close()

  // WAL cost of one push onto a 100K-element list, and of one hset on a 100K-field hash.
  const d = await Store.open<string>({ dir: join(ctx.tmp, 'wal-cost'), sync: 'never', compactThresholdBytes: 0, expirySweepIntervalMs: 0 })
  const big = ctx.quick ? 10_000 : 100_000
  for (let i = 0; i < big; i += 1000) await d.rpush('list', ...Array.from({ length: 1000 }, (_, j) => `e${i + j}`))
  for (let i = 0; i < big; i += 1000) {
    const f: Record<string, string> = {}
    for (let j = 0; j < 1000; j++) f[`f${i + j}`] = 'x'
    await d.hset('hash', f)
  }
  let before = d.stats().walBytes
  await d.rpush('list', 'one more element')
  rows.push(metric(ctx, G, `WAL bytes per push onto a ${big.toLocaleString('en')}-element list`, 'kvstore (dir)', d.stats().walBytes - before, 'bytes'))
  before = d.stats().walBytes
  await d.hset('hash', { newfield: 'value' })
  rows.push(metric(ctx, G, `WAL bytes per hset on a ${big.toLocaleString('en')}-field hash`, 'kvstore (dir)', d.stats().walBytes - before, 'bytes'))
  await d.close()
  return rows
}
