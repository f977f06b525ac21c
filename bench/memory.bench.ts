// Memory per entry at n entries: heap bytes for kvstore (with and without TTLs) and a plain
// Map holding the same strings, and resident-set growth for those and for lmdb and
// classic-level (whose data lives outside the JS heap). Each engine runs in its own fresh
// process (bench/memory-probe.ts).
import { join } from 'node:path'
import { metric, Rows, type BenchContext, type Row } from './lib/context.js'
import { probeMemory, type MemoryProbe } from './lib/memory.js'

const G = 'memory'

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const n = ctx.n.toLocaleString('en')
  const heapWorkload = `heap bytes per entry at ${n} entries`
  const rssWorkload = `RSS growth per entry at ${n} entries`
  const engines = [
    ['kvstore', 'kvstore (memory)', 'kvstore'],
    ['kvstore-ttl', 'kvstore (memory, every key with a TTL)', 'kvstore-ttl'],
    ['Map', 'Map', 'map'],
    ['lmdb', 'lmdb (noSync)', 'lmdb'],
    ['classic-level', 'classic-level', 'classic-level'],
  ] as const
  const probes: { engine: string; id: string; onDisk: boolean; r: MemoryProbe }[] = []
  for (const [probe, engine, id] of engines) {
    const onDisk = probe === 'lmdb' || probe === 'classic-level'
    const wanted = (!onDisk && ctx.wants(G, heapWorkload, engine)) || ctx.wants(G, rssWorkload, engine)
    if (wanted) probes.push({ engine, id, onDisk, r: probeMemory(probe, ctx.n, onDisk ? join(ctx.tmp, `memory-${id}`) : undefined) })
  }
  const map = probes.find((p) => p.engine === 'Map')?.r
  const raw = (ratio: number, bytes: number): string => `${ratio.toFixed(2)}x raw data (${bytes} bytes: 16-byte key + 100-byte value)`
  for (const { engine, id, onDisk, r } of probes) {
    if (onDisk) continue
    const vsMap = map !== undefined && engine !== 'Map' ? `, ${(r.heapBytesPerEntry / map.heapBytesPerEntry).toFixed(2)}x Map` : ''
    rows.add(metric(ctx, G, heapWorkload, engine, r.heapBytesPerEntry, 'bytes', {
      id: `mem.${id}`,
      note: `${raw(r.ratioToRaw, r.rawBytesPerEntry)}${vsMap}`,
      data: { rawBytesPerEntry: r.rawBytesPerEntry, ratioToRaw: r.ratioToRaw },
    }))
  }
  for (const { engine, id, onDisk, r } of probes) {
    const where = onDisk ? `; data in native memory and files, the JS heap grew by ${r.heapBytesPerEntry.toFixed(0)} bytes per entry` : ''
    const vsMap = map !== undefined && engine !== 'Map' ? `, ${(r.rssBytesPerEntry / map.rssBytesPerEntry).toFixed(2)}x Map` : ''
    rows.add(metric(ctx, G, rssWorkload, engine, r.rssBytesPerEntry, 'bytes', {
      id: `mem.rss.${id}`,
      note: `${raw(r.rssRatioToRaw, r.rawBytesPerEntry)}${vsMap}${where}`,
      data: { rawBytesPerEntry: r.rawBytesPerEntry, rssRatioToRaw: r.rssRatioToRaw, heapBytesPerEntry: r.heapBytesPerEntry },
    }))
  }
  return rows.list
}
