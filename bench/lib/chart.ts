// A dependency-free SVG bar chart: ops/s per workload and engine, log scale.
import type { Row } from './harness.js'

const COLORS = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04']

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** Horizontal grouped bars, one group per workload, log10 ops/s axis. */
export function barChart(rows: Row[], title: string): string {
  const rates = rows.filter((r) => r.opsPerSec !== undefined && r.opsPerSec > 0)
  const workloads = [...new Set(rates.map((r) => r.workload))]
  const engines = [...new Set(rates.map((r) => r.engine))]
  const barH = 12
  const gap = 10
  const left = 230
  const width = 900
  const plotW = width - left - 120
  const maxLog = Math.ceil(Math.log10(Math.max(...rates.map((r) => r.opsPerSec as number), 10)))
  const minLog = 2
  const x = (v: number): number => left + (Math.max(0, Math.log10(Math.max(v, 1)) - minLog) / (maxLog - minLog)) * plotW
  let y = 60
  const parts: string[] = []
  for (const w of workloads) {
    const group = rates.filter((r) => r.workload === w)
    parts.push(`<text x="${left - 8}" y="${y + (group.length * barH) / 2 + 4}" text-anchor="end" font-size="12">${esc(w)}</text>`)
    for (const r of group) {
      const c = COLORS[engines.indexOf(r.engine) % COLORS.length]
      const v = r.opsPerSec as number
      parts.push(`<rect x="${left}" y="${y}" width="${(x(v) - left).toFixed(1)}" height="${barH - 2}" fill="${c}"/>`)
      const label = v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}K` : v.toFixed(0)
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + barH - 3}" font-size="10">${label}</text>`)
      y += barH
    }
    y += gap
  }
  const axis: string[] = []
  for (let p = minLog; p <= maxLog; p++) {
    const xx = x(10 ** p)
    axis.push(`<line x1="${xx}" y1="50" x2="${xx}" y2="${y}" stroke="#e5e7eb"/><text x="${xx}" y="${y + 14}" font-size="10" text-anchor="middle">1e${p}</text>`)
  }
  const legend = engines
    .map((e, i) => `<rect x="${left + i * 150}" y="28" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${left + i * 150 + 14}" y="37" font-size="11">${esc(e)}</text>`)
    .join('')
  const height = y + 30
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>
${legend}
${axis.join('\n')}
${parts.join('\n')}
<text x="${left + plotW / 2}" y="${height - 4}" font-size="11" text-anchor="middle">operations per second (log scale)</text>
</svg>
`
}
