// Plain-text table of one group's rows, with each row's speed relative to kvstore and
// to Map for the same workload.
import { fmtNum, fmtRate, type Row } from './context.js'

/** Speed of `r` relative to `base` (>1 = faster): rates divide, times invert. */
function speedRatio(r: Row, base: Row | undefined): string {
  if (base === undefined) return ''
  if (r.opsPerSec !== undefined && base.opsPerSec !== undefined) return `${(r.opsPerSec / base.opsPerSec).toFixed(2)}x`
  if (r.unit === 'ms' && base.unit === 'ms' && r.value !== undefined && base.value !== undefined && r.value > 0) return `${(base.value / r.value).toFixed(2)}x`
  return ''
}

function latency(us: number | undefined): string {
  if (us === undefined) return ''
  return us >= 10_000 ? `${fmtNum(us / 1000)} ms` : `${fmtNum(us)} µs`
}

/**
 * The base rows of a group: per workload, the first kvstore row and the first plain
 * structure row (Map, or the sorted array standing in for it on ordered work).
 */
function bases(rows: Row[]): { kv: Map<string, Row>; map: Map<string, Row> } {
  const kv = new Map<string, Row>()
  const map = new Map<string, Row>()
  for (const r of rows) {
    if (r.engine.startsWith('kvstore') && !kv.has(r.workload)) kv.set(r.workload, r)
    if ((r.engine.startsWith('Map') || r.engine.startsWith('sorted array')) && !map.has(r.workload)) map.set(r.workload, r)
  }
  return { kv, map }
}

/** Print `rows` as an aligned table under `## name`. */
export function printTable(name: string, rows: Row[]): void {
  console.log(`\n## ${name}`)
  if (rows.length === 0) {
    console.log('(nothing selected)')
    return
  }
  const { kv, map } = bases(rows)
  const lines = rows.map((r) => [
    r.workload,
    r.engine,
    r.opsPerSec !== undefined ? `${fmtRate(r.opsPerSec)} ops/s` : `${fmtNum(r.value as number)} ${r.unit ?? ''}`,
    latency(r.meanUs),
    latency(r.p99Us),
    r.opsPerSample === undefined ? '' : r.opsPerSample === 1 ? 'op' : `${r.opsPerSample.toLocaleString('en')} ops`,
    speedRatio(r, kv.get(r.workload)),
    speedRatio(r, map.get(r.workload)),
    r.note ?? '',
  ])
  const head = ['workload', 'engine', 'result', 'mean', 'p99', 'latency of', 'vs kvstore', 'vs Map', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (l: string[]): string => l.map((c, i) => c.padEnd(widths[i] as number)).join(' | ').trimEnd()
  console.log(fmt(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const l of lines) console.log(fmt(l))
}
