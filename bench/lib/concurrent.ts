// Concurrent writers: N loops each awaiting one write after another.
import { fmtRate, type BenchContext, type Row } from './context.js'

/**
 * Run `writers` loops that each await `write(i)` back to back for `ctx.concurrentMs`;
 * report writes/s and the latency of one write (mean, p99). Undefined when `--only`
 * excludes it.
 */
export async function concurrentRate(
  ctx: BenchContext,
  group: string,
  workload: string,
  engine: string,
  writers: number,
  write: (i: number) => Promise<unknown>,
  extra: { note?: string; id?: string } = {},
): Promise<Row | undefined> {
  if (!ctx.wants(group, workload, engine)) return undefined
  let i = 0
  let done = 0
  const lat: number[] = []
  const end = performance.now() + ctx.concurrentMs
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now()
      await write(i++)
      if (lat.length < 500_000) lat.push(performance.now() - t)
      done++
    }
  }
  const start = performance.now()
  await Promise.all(Array.from({ length: writers }, loop))
  const secs = (performance.now() - start) / 1000
  lat.sort((a, b) => a - b)
  const mean = lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length)
  const row: Row = {
    group,
    workload,
    engine,
    opsPerSec: done / secs,
    meanUs: mean * 1000,
    p99Us: (lat[Math.floor(lat.length * 0.99)] ?? 0) * 1000,
    opsPerSample: 1,
    ...extra,
  }
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtRate(row.opsPerSec as number)} writes/s`)
  return row
}
