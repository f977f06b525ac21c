// Heap bytes per entry at n entries for kvstore (with and without TTLs) and a plain Map
// holding the same strings; each engine is measured in its own fresh process.
import { metric, Rows, type BenchContext, type Row } from './lib/context.js'
import { probeMemory, type MemoryProbe } from './lib/memory.js'

const G = 'memory'

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const workload = `heap bytes per entry at ${ctx.n.toLocaleString('en')} entries`
  const engines = [
    ['kvstore', 'kvstore (memory)', 'mem.kvstore'],
    ['kvstore-ttl', 'kvstore (memory, every key with a TTL)', 'mem.kvstore-ttl'],
    ['Map', 'Map', 'mem.map'],
  ] as const
  const probes: { engine: string; id: string; r: MemoryProbe }[] = []
  for (const [probe, engine, id] of engines) {
    if (ctx.wants(G, workload, engine)) probes.push({ engine, id, r: probeMemory(probe, ctx.n) })
  }
  const mapBytes = probes.find((p) => p.engine === 'Map')?.r.heapBytesPerEntry
  for (const { engine, id, r } of probes) {
    const vsMap = mapBytes !== undefined && engine !== 'Map' ? `, ${(r.heapBytesPerEntry / mapBytes).toFixed(2)}x Map` : ''
    rows.add(metric(ctx, G, workload, engine, r.heapBytesPerEntry, 'bytes', {
      id,
      note: `${r.ratioToRaw.toFixed(2)}x raw data (${r.rawBytesPerEntry} bytes: 16-byte key + 100-byte value)${vsMap}`,
      data: { rawBytesPerEntry: r.rawBytesPerEntry, ratioToRaw: r.ratioToRaw },
    }))
  }
  return rows.list
}
