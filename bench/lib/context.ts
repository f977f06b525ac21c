// What every bench group receives, and the row type every group returns.

/** One result line. Rates carry opsPerSec; one-shot figures carry value + unit. */
export interface Row {
  group: string
  workload: string
  engine: string
  opsPerSec?: number
  /** Mean and p99 latency of one timed sample, microseconds. */
  meanUs?: number
  p99Us?: number
  /** Operations per timed sample: 1 for per-op latency, 1,000 for a batch of 1,000. */
  opsPerSample?: number
  value?: number
  unit?: string
  note?: string
  /** A stable id the target checks look rows up by (workload names carry sizes). */
  id?: string
  /** Further figures of the row (e.g. memory: raw bytes per entry, ratio to raw). */
  data?: Record<string, number>
}

/** What every bench group gets. */
export interface BenchContext {
  quick: boolean
  /** Keys in the big stores (1M, or small with --quick). */
  n: number
  /** tinybench time budget per task, ms. */
  timeMs: number
  /** Time budget of one concurrent-writers run, ms. */
  concurrentMs: number
  /** A fresh temp directory for this group, removed after it. */
  tmp: string
  /** Whether a task runs under `--only` (always true without it). */
  wants(group: string, workload: string, engine: string): boolean
  log(s: string): void
}

/** Format an ops/s figure: 1.23M, 45.6K, 789. */
export function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`
  return n.toFixed(0)
}

/** Format a plain figure with about three significant digits. */
export function fmtNum(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3)
}

/** A one-shot figure (time, bytes, ratio); undefined when `--only` excludes it. */
export function metric(
  ctx: BenchContext,
  group: string,
  workload: string,
  engine: string,
  value: number,
  unit: string,
  extra: { note?: string; id?: string; data?: Record<string, number> } = {},
): Row | undefined {
  if (!ctx.wants(group, workload, engine)) return undefined
  ctx.log(`  ${group} | ${workload} | ${engine}: ${fmtNum(value)} ${unit}`)
  return { group, workload, engine, value, unit, ...extra }
}

/** Time an async function once, in ms. */
export async function timeOnce(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

/** Collects rows, dropping the undefined ones `--only` skipped. */
export class Rows {
  readonly list: Row[] = []
  add(row: Row | undefined): Row | undefined {
    if (row !== undefined) this.list.push(row)
    return row
  }
}
