// Durable writes (group commit) beside the disk's raw fdatasync rate, the 'never'
// write rate, and WAL replay time.
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../src/index.js'
import { concurrentRate } from './lib/concurrent.js'
import { makeKeys, VALUE } from './lib/data.js'
import { measure, metric, timeOnce, type BenchContext, type Row } from './lib/harness.js'

const G = 'durability'

/** Appends of one 100-byte record + fdatasync, back to back: one writer's physical limit. */
export function rawFdatasyncRate(path: string, ms: number): number {
  const fd = openSync(path, 'w')
  const buf = Buffer.from(VALUE)
  let n = 0
  const start = performance.now()
  try {
    while (performance.now() - start < ms) {
      writeSync(fd, buf)
      fdatasyncSync(fd)
      n++
    }
  } finally {
    closeSync(fd)
  }
  return n / ((performance.now() - start) / 1000)
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const ms = ctx.quick ? 300 : 2000
  const raw = rawFdatasyncRate(join(ctx.tmp, 'raw'), ms)
  rows.push({ group: G, workload: 'durable write, 1 writer', engine: 'raw append + fdatasync', opsPerSec: raw, note: 'physical limit for one writer' })
  ctx.log(`  ${G} | raw fdatasync: ${raw.toFixed(0)}/s`)

  const store = await Store.open<string>({ dir: join(ctx.tmp, 'always'), expirySweepIntervalMs: 0 })
  for (const writers of [1, 16, 1000]) {
    const row = await concurrentRate(ctx, G, `durable write, ${writers} writer${writers > 1 ? 's' : ''}`, "kvstore (dir, 'always')", writers, ms, (i) => store.set(`w${writers}:${i}`, VALUE))
    if (writers === 1) row.note = `${((100 * (row.opsPerSec as number)) / raw).toFixed(0)}% of raw fdatasync`
    rows.push(row)
  }
  await store.close()

  const never = await Store.open<string>({ dir: join(ctx.tmp, 'never'), sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  let i = 0
  rows.push(await measure(ctx, G, "set, 1 writer, sync 'never'", "kvstore (dir, 'never')", 1000, async () => {
    for (let k = 0; k < 1000; k++) await never.set(`n${i++}`, VALUE)
  }))
  await never.close()

  // Replay: a WAL of n records (no snapshot), then time open.
  const n = ctx.n
  const keys = makeKeys(n, 9)
  const dir = join(ctx.tmp, 'replay')
  const w = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  for (let k = 0; k < n; k += 1000) {
    const ps: Promise<unknown>[] = []
    for (let j = k; j < Math.min(n, k + 1000); j++) ps.push(w.set(keys[j] as string, VALUE))
    await Promise.all(ps)
  }
  const walBytes = w.stats().walBytes
  await w.close()
  let opened: Store<string> | undefined
  const ms2 = await timeOnce(async () => {
    opened = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
  })
  const records = opened?.stats().recovery?.records ?? 0
  await opened?.close()
  rows.push(metric(ctx, G, `open + replay of a ${n.toLocaleString('en')}-record WAL`, 'kvstore', ms2, 'ms', `${records} records, ${(walBytes / 2 ** 20).toFixed(0)} MiB`))
  return rows
}
