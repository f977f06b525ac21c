// tinybench wrapper: one task per call, batched so tinybench's own per-iteration cost
// stays out of sub-microsecond operations.
import { Bench } from 'tinybench'
import { fmtRate, type BenchContext, type Row } from './context.js'

/** Options of {@link measure}. */
export interface MeasureOptions {
  beforeEach?: () => unknown
  afterEach?: () => unknown
  note?: string
  id?: string
  timeMs?: number
}

/**
 * Run `fn`, which performs `ops` operations, under tinybench; report ops/s = ops ×
 * iterations/s, with mean and p99 latency of one call (one batch). Undefined when
 * `--only` excludes the task.
 */
export async function measure(ctx: BenchContext, group: string, workload: string, engine: string, ops: number, fn: () => unknown, o: MeasureOptions = {}): Promise<Row | undefined> {
  if (!ctx.wants(group, workload, engine)) return undefined
  const time = o.timeMs ?? ctx.timeMs
  const bench = new Bench({ time, iterations: 5, warmupTime: Math.min(100, time), warmupIterations: 2 })
  const hooks: Record<string, unknown> = {}
  if (o.beforeEach) hooks.beforeEach = o.beforeEach
  if (o.afterEach) hooks.afterEach = o.afterEach
  bench.add(workload, fn as () => void, hooks)
  await bench.run()
  const r = bench.tasks[0]?.result as { state?: string; latency?: { mean: number; p99: number }; error?: unknown } | undefined
  if (r === undefined || r.latency === undefined) {
    throw new Error(`${group} / ${workload} / ${engine} failed: ${String(r?.error ?? r?.state)}`, { cause: r?.error })
  }
  const row: Row = {
    group,
    workload,
    engine,
    opsPerSec: (ops * 1000) / r.latency.mean,
    meanUs: r.latency.mean * 1000,
    p99Us: r.latency.p99 * 1000,
    opsPerSample: ops,
  }
  if (o.note !== undefined) row.note = o.note
  if (o.id !== undefined) row.id = o.id
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtRate(row.opsPerSec as number)} ops/s`)
  return row
}
