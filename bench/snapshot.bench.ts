// Snapshots: write and load in both formats, bytes per entry, the longest write stall
// while a big snapshot streams out, and open time of a compacted directory.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { ValueTag } from '../src/codec/value.js'
import { Store } from '../src/index.js'
import { metric, Rows, timeOnce, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, VALUE } from './lib/data.js'

const G = 'snapshot'

async function fill(s: Store<string>, n: number, seed: number): Promise<void> {
  const keys = makeKeys(n, seed)
  for (let i = 0; i < n; i += 10_000) await s.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
}

/** "100k" / "1m" in ids. */
function short(n: number): string {
  return n >= 1e6 ? `${n / 1e6}m` : `${n / 1e3}k`
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const sizes = ctx.quick ? [10_000] : [100_000, 1_000_000]
  for (const n of sizes) {
    const label = n.toLocaleString('en')
    if (!ctx.wants(G, `snapshot ${label} entries`, 'kvstore') && !ctx.wants(G, `load ${label} entries`, 'kvstore')) continue
    const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
    await fill(s, n, 20 + n)
    await s.keys('none:*') // settle: sort the bulk-loaded keys in before timing
    for (const format of ['binary', 'json'] as const) {
      const path = join(ctx.tmp, `snap-${n}.${format === 'json' ? 'json' : 'kvs'}`)
      const w = await timeOnce(() => s.snapshot(path, { format }))
      const bytes = statSync(path).size
      rows.add(metric(ctx, G, `snapshot ${label} entries`, `kvstore ${format}`, w, 'ms', { id: `snap.${short(n)}.${format}.write`, note: `${(bytes / n).toFixed(1)} bytes/entry on disk (raw data 116)` }))
      const target = await Store.open<string>({ expirySweepIntervalMs: 0 })
      const l = await timeOnce(() => target.load(path))
      if ((await target.count()) !== n) throw new Error(`load of ${path} gave ${await target.count()} entries, not ${n}`)
      rows.add(metric(ctx, G, `load ${label} entries`, `kvstore ${format}`, l, 'ms', { id: `snap.${short(n)}.${format}.load` }))
      await target.close()
    }
    await s.close()
  }

  // Longest write stall while a big snapshot streams out of a directory store: a writer
  // issues one set per setImmediate turn while `store.snapshot(path)` runs.
  const n = ctx.quick ? 20_000 : 1_000_000
  const label = n.toLocaleString('en')
  const stallWl = `longest write stall during a ${label}-entry snapshot`
  const openWl = `open a compacted ${label}-entry directory`
  if (!ctx.wants(G, stallWl, 'kvstore (dir)') && !ctx.wants(G, openWl, 'kvstore (dir)')) return rows.list
  const dir = join(ctx.tmp, 'stall')
  const s = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  await fill(s, n, 31)
  // New keys are sorted in lazily: the first ordered read after a bulk load pays one
  // sort + merge. Measured on its own, so the stall below is the snapshot's alone.
  const sortMs = await timeOnce(() => s.keys('none:*'))
  rows.add(metric(ctx, G, `first ordered read after inserting ${label} new keys`, 'kvstore (dir)', sortMs, 'ms', { note: 'one-time sort + merge of the keys inserted since the last ordered read (blocks the event loop)' }))
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
  const snap = join(ctx.tmp, 'stall.kvs')
  const snapMs = await timeOnce(() => s.snapshot(snap))
  h.disable()
  running = false
  await writer
  rows.add(metric(ctx, G, stallWl, 'kvstore (dir)', maxGap, 'ms', {
    id: 'snap.stall',
    note: `max gap between consecutive completed writes; ${writes.toLocaleString('en')} writes landed during the ${snapMs.toFixed(0)} ms snapshot; event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms`,
  }))

  await s.compact()
  await s.close()
  let opened: Store<string> | undefined
  const openMs = await timeOnce(async () => {
    opened = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
  })
  const rec = opened?.stats().recovery
  await opened?.close()
  // The floor for any open that builds strings: read the file from the page cache (it was
  // just read) and create each key and value string, nothing else.
  const snapPath = rec?.snapshot
  let physMs = 0
  if (snapPath !== undefined) {
    physMs = await timeOnce(() => readStrings(snapPath))
    rows.add(metric(ctx, G, openWl, 'read the file + create its strings', physMs, 'ms', { id: 'snap.open-physical', note: 'readFileSync, then one string per key and per value: the physical limit of an open that decodes everything' }))
  }
  const phys = physMs > 0 ? `; ${(openMs / physMs).toFixed(2)}x the physical limit` : ''
  rows.add(metric(ctx, G, openWl, 'kvstore (dir)', openMs, 'ms', { id: 'snap.open', note: `${(rec?.snapshotEntries ?? 0).toLocaleString('en')} entries from the snapshot, ${rec?.records ?? 0} WAL records replayed${phys}` }))
  return rows.list
}

/** Read a binary (v2) snapshot of string values and create every key and value string. Returns how many. */
function readStrings(path: string): number {
  const b = readFileSync(path)
  const keys: string[] = []
  const vals: string[] = []
  let p = 28
  const end = b.length - 4
  while (p < end) {
    const kl = b.readUInt32LE(p)
    keys.push(b.toString('utf8', p + 4, p + 4 + kl))
    p += 4 + kl
    if (b[p] !== ValueTag.STRING) throw new Error(`${path}: a value that is not a string at byte ${p}`)
    const vl = b.readUInt32LE(p + 1)
    vals.push(b.toString('utf8', p + 5, p + 5 + vl))
    p += 5 + vl + 16
  }
  return Math.min(keys.length, vals.length)
}
