// Snapshots: write and load in both formats, size per entry, write stalls while a big
// snapshot streams out, and open time of a compacted directory.
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Store } from '../src/index.js'
import { makeKeys, VALUE } from './lib/data.js'
import { metric, timeOnce, type BenchContext, type Row } from './lib/harness.js'

const G = 'snapshot'

async function filled(n: number, seed: number): Promise<Store<string>> {
  const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const keys = makeKeys(n, seed)
  for (let i = 0; i < n; i += 10_000) await s.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
  return s
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const sizes = ctx.quick ? [10_000] : [100_000, 1_000_000]
  for (const n of sizes) {
    const s = await filled(n, 20 + n)
    const label = n.toLocaleString('en')
    for (const format of ['binary', 'json'] as const) {
      const path = join(ctx.tmp, `snap-${n}.${format === 'json' ? 'json' : 'kvs'}`)
      const w = await timeOnce(() => s.snapshot(path))
      const bytes = statSync(path).size
      rows.push(metric(ctx, G, `snapshot ${label} entries`, `kvstore ${format}`, w, 'ms', `${(bytes / n).toFixed(1)} bytes/entry`))
      const target = await Store.open<string>({ expirySweepIntervalMs: 0 })
      const l = await timeOnce(() => target.load(path))
      rows.push(metric(ctx, G, `load ${label} entries`, `kvstore ${format}`, l, 'ms'))
      await target.close()
    }
    await s.close()
  }

  // Longest write stall while a big snapshot streams out of a directory store.
  const n = ctx.quick ? 20_000 : 1_000_000
  const dir = join(ctx.tmp, 'stall')
  const s = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  const keys = makeKeys(n, 31)
  for (let k = 0; k < n; k += 10_000) await s.batch(keys.slice(k, k + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
  // New keys are sorted in lazily: the first ordered read after a bulk load pays one
  // sort + merge. Measured on its own, so the stall below is the snapshot's alone.
  const sortMs = await timeOnce(() => s.keys('none:*'))
  rows.push(metric(ctx, G, `first ordered read after inserting ${n.toLocaleString('en')} new keys`, 'kvstore (dir)', sortMs, 'ms', 'one-time sort + merge of keys inserted since the last ordered read'))
  const h = monitorEventLoopDelay({ resolution: 1 })
  let maxGap = 0
  let writes = 0
  let running = true
  const writer = (async () => {
    let last = performance.now()
    while (running) {
      await s.set(`live:${writes++}`, VALUE)
      await new Promise((r) => setImmediate(r))
      const now = performance.now()
      maxGap = Math.max(maxGap, now - last)
      last = now
    }
  })()
  h.enable()
  const snapMs = await timeOnce(() => s.compact())
  h.disable()
  running = false
  await writer
  rows.push(metric(ctx, G, `longest write stall during a ${n.toLocaleString('en')}-entry snapshot`, 'kvstore (dir)', maxGap, 'ms', `${writes} writes landed during the ${snapMs.toFixed(0)} ms snapshot; event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms`))
  await s.close()
  let opened: Store<string> | undefined
  const openMs = await timeOnce(async () => {
    opened = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
  })
  rows.push(metric(ctx, G, `open a compacted ${n.toLocaleString('en')}-entry directory`, 'kvstore (dir)', openMs, 'ms', `${opened?.stats().recovery?.records ?? 0} WAL records replayed after the snapshot`))
  await opened?.close()
  return rows
}
