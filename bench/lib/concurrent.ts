import type { BenchContext, Row } from './harness.js'
import { fmtRate } from './harness.js'

/**
 * Run `writers` loops that each await `write(i)` back to back for `ms`; report writes/s
 * and per-write latency (mean, p99) as a rate row.
 */
export async function concurrentRate(
  ctx: BenchContext,
  group: string,
  workload: string,
  engine: string,
  writers: number,
  ms: number,
  write: (i: number) => Promise<unknown>,
  note?: string,
): Promise<Row> {
  let i = 0
  let done = 0
  const lat: number[] = []
  const end = performance.now() + ms
  const loop = async (): Promise<void> => {
    while (performance.now() < end) {
      const t = performance.now()
      await write(i++)
      if (lat.length < 200_000) lat.push(performance.now() - t)
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
  }
  if (note !== undefined) row.note = note
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtRate(row.opsPerSec as number)} writes/s`)
  return row
}
