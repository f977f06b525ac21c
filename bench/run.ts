// `npm run bench` — kvstore beside Map, lmdb, classic-level and NeDB.
//   --quick        small sizes, finishes in about a minute (CI runs it so the bench never rots)
//   --only <text>  run only groups whose name contains <text>
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as core from './core.bench.js'
import * as durability from './durability.bench.js'
import * as peers from './peers.bench.js'
import * as snapshot from './snapshot.bench.js'
import * as transactions from './transactions.bench.js'
import * as types from './types.bench.js'
import { barChart } from './lib/chart.js'
import { fmtNum, fmtRate, machine, metric, type BenchContext, type Row } from './lib/harness.js'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const quick = values.quick === true
const n = quick ? 20_000 : 1_000_000
const timeMs = quick ? 100 : 800
const here = fileURLToPath(new URL('.', import.meta.url))

const groups: [string, (ctx: BenchContext) => Promise<Row[]>][] = [
  ['core', core.run],
  ['durability', durability.run],
  ['snapshot', snapshot.run],
  ['ttl & types', types.run],
  ['transactions', transactions.run],
  ['peers', peers.run],
  ['memory', memory],
]

async function memory(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  for (const engine of ['kvstore', 'kvstore-ttl', 'Map']) {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, 'memory-probe.ts'), engine, String(ctx.n)], { encoding: 'utf8', maxBuffer: 1 << 20 })
    const r = JSON.parse(out) as { totalBytesPerEntry: number; ratioToRaw: number; rawBytesPerEntry: number }
    const name = engine === 'kvstore-ttl' ? 'kvstore (memory, every key with TTL)' : engine === 'kvstore' ? 'kvstore (memory)' : 'Map'
    rows.push(metric(ctx, 'memory', `heap bytes per entry at ${ctx.n.toLocaleString('en')} entries`, name, r.totalBytesPerEntry, 'bytes', `${r.ratioToRaw.toFixed(2)}x raw data (${r.rawBytesPerEntry} bytes)`))
  }
  return rows
}

function printGroup(name: string, rows: Row[]): void {
  console.log(`\n## ${name}`)
  const base = new Map<string, number>()
  for (const r of rows) if (r.opsPerSec !== undefined && r.engine.startsWith('kvstore') && !base.has(r.workload)) base.set(r.workload, r.opsPerSec)
  const lines = rows.map((r) => {
    const b = base.get(r.workload)
    const ratio = r.opsPerSec !== undefined && b !== undefined ? `${(r.opsPerSec / b).toFixed(2)}x` : ''
    const fig = r.opsPerSec !== undefined ? `${fmtRate(r.opsPerSec)} ops/s` : `${fmtNum(r.value as number)} ${r.unit}`
    const lat = r.meanUs !== undefined ? `${fmtNum(r.meanUs)} µs` : ''
    const p99 = r.p99Us !== undefined ? `${fmtNum(r.p99Us)} µs` : ''
    return [r.workload, r.engine, fig, lat, p99, ratio, r.note ?? '']
  })
  const head = ['workload', 'engine', 'result', 'mean/op', 'p99/op', 'vs kvstore', 'note']
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (l: string[]): string => l.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')
  console.log(fmt(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const l of lines) console.log(fmt(l))
}

const all: Row[] = []
const started = Date.now()
console.log(`kvstore bench${quick ? ' (--quick)' : ''}: ${n.toLocaleString('en')} keys`, machine())
for (const [name, fn] of groups) {
  if (values.only !== undefined && !name.includes(values.only)) continue
  const tmp = mkdtempSync(join(tmpdir(), 'kvstore-bench-'))
  try {
    console.error(`[${name}]`)
    const rows = await fn({ quick, n, timeMs, tmp, log: (s) => console.error(s) })
    all.push(...rows)
    printGroup(name, rows)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}
const out = join(here, 'results')
mkdirSync(out, { recursive: true })
const stem = quick ? 'quick' : 'latest'
writeFileSync(join(out, `${stem}.json`), `${JSON.stringify({ machine: machine(), quick, keys: n, seconds: (Date.now() - started) / 1000, rows: all }, null, 2)}\n`)
const chartRows = all.filter((r) => (r.group === 'core' || r.group === 'peers' || r.group === 'durability') && r.opsPerSec !== undefined)
writeFileSync(join(out, `${stem}.svg`), barChart(chartRows, `kvstore vs Map and peers, ${n.toLocaleString('en')} keys (${machine().cpu as string})`))
console.log(`\nwrote bench/results/${stem}.json and ${stem}.svg in ${((Date.now() - started) / 1000).toFixed(0)} s`)
