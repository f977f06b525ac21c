// Measurement helpers shared by the bench files: tinybench runs with batched tasks,
// one-shot metrics, and the context every group receives.
import { cpus, totalmem } from 'node:os'
import { Bench } from 'tinybench'

/** One result line. Rates carry opsPerSec; one-shot metrics carry value + unit. */
export interface Row {
  group: string
  workload: string
  engine: string
  opsPerSec?: number
  /** Mean and p99 latency of one op (or of one batch when `perBatch`), microseconds. */
  meanUs?: number
  p99Us?: number
  value?: number
  unit?: string
  note?: string
}

/** What every bench group gets. */
export interface BenchContext {
  quick: boolean
  /** Keys in the big stores (1M, or small with --quick). */
  n: number
  /** tinybench time budget per task, ms. */
  timeMs: number
  /** A fresh temp directory for this group. */
  tmp: string
  log: (s: string) => void
}

/**
 * Run `fn` (which performs `batch` operations) under tinybench and report per-op rates.
 * Batching keeps tinybench's own per-iteration cost out of sub-microsecond ops.
 */
export async function measure(
  ctx: BenchContext,
  group: string,
  workload: string,
  engine: string,
  batch: number,
  fn: () => unknown,
  hooks: { beforeEach?: () => unknown; afterEach?: () => unknown; note?: string; timeMs?: number } = {},
): Promise<Row> {
  const bench = new Bench({ time: hooks.timeMs ?? ctx.timeMs, iterations: 5, warmupTime: Math.min(100, ctx.timeMs), warmupIterations: 2 })
  const opts: Record<string, unknown> = {}
  if (hooks.beforeEach) opts.beforeEach = hooks.beforeEach
  if (hooks.afterEach) opts.afterEach = hooks.afterEach
  bench.add(workload, fn as () => void, opts)
  await bench.run()
  const task = bench.tasks[0]
  const r = task?.result as { state?: string; latency?: { mean: number; p99: number }; error?: unknown } | undefined
  if (r === undefined || r.latency === undefined) {
    throw new Error(`${group}/${workload}/${engine} failed: ${String(r?.error ?? r?.state)}`)
  }
  const meanMs = r.latency.mean
  const row: Row = {
    group,
    workload,
    engine,
    opsPerSec: (batch * 1000) / meanMs,
    meanUs: (meanMs * 1000) / batch,
    p99Us: (r.latency.p99 * 1000) / batch,
  }
  if (hooks.note !== undefined) row.note = hooks.note
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtRate(row.opsPerSec as number)} ops/s`)
  return row
}

/** A one-shot figure (time, bytes, ratio). */
export function metric(ctx: BenchContext, group: string, workload: string, engine: string, value: number, unit: string, note?: string): Row {
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtNum(value)} ${unit}`)
  const row: Row = { group, workload, engine, value, unit }
  if (note !== undefined) row.note = note
  return row
}

/** Time an async function once, in ms. */
export async function timeOnce(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

export function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`
  return n.toFixed(0)
}

export function fmtNum(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3)
}

/** The machine, for results files. */
export function machine(): Record<string, unknown> {
  const c = cpus()
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    totalMemGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  }
}
