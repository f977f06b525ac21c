// A dependency-free SVG bar chart: ops/s per workload and engine, log scale.
import type { Row } from './context.js'

const COLORS = ['#2563eb', '#60a5fa', '#1e3a8a', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04', '#db2777', '#65a30d']

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&#39;')
}

function label(v: number): string {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}K` : v.toFixed(0)
}

/** Axis tick: 100, 1K, 10K, ..., 10M. */
function tick(p: number): string {
  return p >= 6 ? `${10 ** (p - 6)}M` : p >= 3 ? `${10 ** (p - 3)}K` : `${10 ** p}`
}

/**
 * The rows the chart shows: rates of the core, durability and peers groups, one bar per
 * workload and engine. Where the peers group measured the same workload and engine (at
 * the same store size as the peers), its row is drawn; NeDB's unsynced writes get no
 * durable-write bar.
 */
export function chartRows(all: Row[]): Row[] {
  const key = (r: Row): string => `${r.workload}\0${r.engine}`
  const inPeers = new Set(all.filter((r) => r.group === 'peers').map(key))
  const seen = new Set<string>()
  return all.filter((r) => {
    if (r.opsPerSec === undefined || !['core', 'durability', 'peers'].includes(r.group)) return false
    if (r.note?.includes('NOT durable') === true) return false
    if (r.group === 'durability' && inPeers.has(key(r))) return false
    if (seen.has(key(r))) return false
    seen.add(key(r))
    return true
  })
}

/**
 * Horizontal grouped bars, one group per workload (in first-seen order), one bar per
 * engine, on a log10 ops/s axis. Rows without a rate are ignored.
 */
export function barChart(rows: Row[], title: string): string {
  const rates = rows.filter((r) => r.opsPerSec !== undefined && r.opsPerSec > 0)
  const workloads = [...new Set(rates.map((r) => r.workload))]
  const engines = [...new Set(rates.map((r) => r.engine))]
  const width = 960
  const left = 250
  const plotW = width - left - 70
  const barH = 12
  const gap = 10
  const perLine = 4
  const legendH = Math.ceil(engines.length / perLine) * 16
  const top = 34 + legendH + 10
  const maxLog = Math.ceil(Math.log10(Math.max(10, ...rates.map((r) => r.opsPerSec as number))))
  const minLog = Math.min(2, Math.floor(Math.log10(Math.max(1, Math.min(...rates.map((r) => r.opsPerSec as number))))))
  const x = (v: number): number => left + ((Math.log10(Math.max(v, 10 ** minLog)) - minLog) / (maxLog - minLog)) * plotW
  const parts: string[] = []
  let y = top
  for (const w of workloads) {
    const group = rates.filter((r) => r.workload === w)
    parts.push(`<text x="${left - 8}" y="${y + (group.length * barH) / 2 + 4}" text-anchor="end" font-size="12">${esc(w)}</text>`)
    for (const r of group) {
      const v = r.opsPerSec as number
      const c = COLORS[engines.indexOf(r.engine) % COLORS.length] as string
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="${barH - 2}" fill="${c}"><title>${esc(`${w} | ${r.engine}: ${label(v)} ops/s`)}</title></rect>`)
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">${label(v)}</text>`)
      y += barH
    }
    y += gap
  }
  const axis: string[] = []
  for (let p = minLog; p <= maxLog; p++) {
    const xx = x(10 ** p).toFixed(1)
    axis.push(`<line x1="${xx}" y1="${top - 4}" x2="${xx}" y2="${y}" stroke="#e5e7eb"/><text x="${xx}" y="${y + 14}" font-size="10" text-anchor="middle">${tick(p)}</text>`)
  }
  const legend = engines.map((e, i) => {
    const lx = 10 + (i % perLine) * 235
    const ly = 30 + Math.floor(i / perLine) * 16
    return `<rect x="${lx}" y="${ly}" width="10" height="10" fill="${COLORS[i % COLORS.length] as string}"/><text x="${lx + 14}" y="${ly + 9}" font-size="11">${esc(e)}</text>`
  })
  const height = y + 36
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>
${legend.join('\n')}
${axis.join('\n')}
${parts.join('\n')}
<text x="${left + plotW / 2}" y="${height - 6}" font-size="11" text-anchor="middle">operations per second (log scale; longer is faster)</text>
</svg>
`
}
