// Durable writes (sync: 'always', group commit) beside the disk's raw fdatasync rate
// measured in the same run, the sync: 'never' write rate, and WAL replay time.
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../src/index.js'
import { concurrentRate } from './lib/concurrent.js'
import { fmtRate, metric, Rows, timeOnce, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

const G = 'durability'
const ALWAYS = "kvstore (dir, 'always')"

/** Append 100 bytes + fdatasync in a loop on a fresh file: one writer's physical limit, writes/s. */
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

/** "durable write, 1 writer", "durable write, 1,000 writers". */
export function writersLabel(n: number): string {
  return `durable write, ${n.toLocaleString('en')} writer${n > 1 ? 's' : ''}`
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const store = await Store.open<string>({ dir: join(ctx.tmp, 'always'), sync: 'always', expirySweepIntervalMs: 0 })
  // The disk's rate drifts (other tenants, write-back): measure it right before and right
  // after the single kvstore writer and compare against the mean.
  const rawBefore = rawFdatasyncRate(join(ctx.tmp, 'raw-1'), ctx.concurrentMs)
  const one = await concurrentRate(ctx, G, writersLabel(1), ALWAYS, 1, (i) => store.set(`w1:${i}`, VALUE), { id: 'dur.w1' })
  const rawAfter = rawFdatasyncRate(join(ctx.tmp, 'raw-2'), ctx.concurrentMs)
  const raw = (rawBefore + rawAfter) / 2
  if (ctx.wants(G, writersLabel(1), 'raw append + fdatasync')) {
    rows.add({ group: G, workload: writersLabel(1), engine: 'raw append + fdatasync', opsPerSec: raw, id: 'dur.raw', note: `write 100 bytes + fdatasync, sync loop: the physical limit of one writer (${fmtRate(rawBefore)}/s before, ${fmtRate(rawAfter)}/s after)` })
    ctx.log(`  ${G} | raw fdatasync: ${fmtRate(rawBefore)}/s before, ${fmtRate(rawAfter)}/s after`)
  }
  if (one !== undefined) one.note = `${((100 * (one.opsPerSec as number)) / raw).toFixed(0)}% of raw fdatasync`
  rows.add(one)
  for (const writers of [16, 1000]) {
    rows.add(await concurrentRate(ctx, G, writersLabel(writers), ALWAYS, writers, (i) => store.set(`w${writers}:${i}`, VALUE), { id: `dur.w${writers}` }))
  }
  await store.close()

  const never = await Store.open<string>({ dir: join(ctx.tmp, 'never'), sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  let i = 0
  rows.add(await measure(ctx, G, "set, 1 writer, sync 'never'", "kvstore (dir, 'never')", 1000, async () => {
    for (let k = 0; k < 1000; k++) await never.set(`n${i++}`, VALUE)
  }, { note: 'each write reaches the OS (survives kill -9), no fsync' }))
  await never.close()

  // Replay: a WAL of n records and no snapshot, then time open.
  const workload = `open + replay of a ${ctx.n.toLocaleString('en')}-record WAL`
  if (ctx.wants(G, workload, 'kvstore')) {
    const keys = makeKeys(ctx.n, 9)
    const dir = join(ctx.tmp, 'replay')
    const w = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
    for (let k = 0; k < ctx.n; k += 1000) {
      const ps: Promise<unknown>[] = []
      for (let j = k; j < Math.min(ctx.n, k + 1000); j++) ps.push(w.set(keys[j] as string, VALUE))
      await Promise.all(ps)
    }
    const walBytes = w.stats().walBytes
    await w.close()
    let opened: Store<string> | undefined
    const ms = await timeOnce(async () => {
      opened = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
    })
    const records = opened?.stats().recovery?.records ?? 0
    // Replayed keys wait unsorted until the first ordered read (KEYS, scan, delete,
    // snapshot), which then sorts them in at once, blocking the event loop.
    const sortMs = await timeOnce(() => opened?.keys('none:*'))
    await opened?.close()
    rows.add(metric(ctx, G, workload, 'kvstore', ms, 'ms', { id: 'dur.replay', note: `${records.toLocaleString('en')} records (one set each), ${(walBytes / 2 ** 20).toFixed(0)} MiB of WAL` }))
    rows.add(metric(ctx, G, `first ordered read after that replay`, 'kvstore', sortMs, 'ms', { id: 'dur.replay-sort', note: 'sorts the replayed keys into the chunks; blocks the event loop' }))
  }
  return rows.list
}
