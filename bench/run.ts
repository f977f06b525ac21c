// `npm run bench` — kvstore beside Map, lmdb, classic-level and NeDB.
//   --quick        small sizes; the whole run takes well under a minute (CI runs it so
//                  the bench never rots) and writes bench/results/quick.*, not latest.*
//   --only <text>  case-insensitive: the groups whose name contains <text>; when no group
//                  name matches, every task whose "group / workload / engine" contains it
//                  (group setup, e.g. building 1M-key stores, still runs); results go
//                  to bench/results/partial.*, not latest.*
//   server group   starts redis-server and kvstore serve and drives both with redis-benchmark;
//                  runs when redis-server and redis-benchmark are installed or --only selects it
//   etcd group     starts its own 3-member etcd cluster; runs when etcd is installed or
//                  when --only selects it
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as core from './core.bench.js'
import * as durability from './durability.bench.js'
import * as etcd from './etcd.js'
import * as eviction from './eviction.bench.js'
import * as followers from './followers.js'
import * as memory from './memory.bench.js'
import * as peers from './peers.bench.js'
import * as server from './server.js'
import * as snapshot from './snapshot.bench.js'
import * as transactions from './transactions.bench.js'
import * as types from './types.bench.js'
import { barChart, chartRows } from './lib/chart.js'
import type { BenchContext, Row } from './lib/context.js'
import { machine } from './lib/machine.js'
import { printTable } from './lib/table.js'
import { checkTargets, printTargets } from './lib/targets.js'

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } })
const quick = values.quick === true
const n = quick ? 20_000 : 1_000_000
const here = fileURLToPath(new URL('.', import.meta.url))

const groups: [string, (ctx: BenchContext) => Promise<Row[]>][] = [
  ['core', core.run],
  ['durability', durability.run],
  ['snapshot', snapshot.run],
  ['ttl & types', types.run],
  ['transactions', transactions.run],
  ['peers', peers.run],
  ['memory', memory.run],
  ['eviction', eviction.run],
  ['followers', followers.run],
  ['etcd', etcd.run],
  ['server', server.run],
]

const only = values.only?.toLowerCase()
const groupMatch = only !== undefined && groups.some(([g]) => g.includes(only))
const wants = (group: string, workload: string, engine: string): boolean =>
  only === undefined || groupMatch || `${group} / ${workload} / ${engine}`.toLowerCase().includes(only)

const info = machine()
const all: Row[] = []
const started = Date.now()
console.log(`kvstore bench${quick ? ' (--quick)' : ''}: ${n.toLocaleString('en')} keys, 16-byte keys, 100-byte values`)
console.log(`${info.cpu}, ${info.cores} cores, ${info.totalMemGiB} GiB, Node ${info.node}, ${info.platform}, ${info.date}`)
for (const [name, run] of groups) {
  if (groupMatch && !name.includes(only as string)) continue
  // etcd comes with `npm test` (scripts/install-services.sh). Without it the group is skipped,
  // unless --only names it: then it fails, saying how to install etcd.
  if (name === 'etcd' && !groupMatch && !etcd.available()) {
    console.error('[etcd] skipped: no etcd binary on PATH or at /usr/bin/etcd (bash scripts/install-services.sh installs it)')
    continue
  }
  // Likewise redis-server and redis-benchmark for the server group.
  if (name === 'server' && !groupMatch && !server.available()) {
    console.error('[server] skipped: no redis-server or redis-benchmark on PATH or in /usr/bin (bash scripts/install-services.sh installs them)')
    continue
  }
  const tmp = mkdtempSync(join(tmpdir(), 'kvstore-bench-'))
  const t = Date.now()
  try {
    console.error(`[${name}]`)
    const rows = await run({ quick, n, timeMs: quick ? 100 : 800, concurrentMs: quick ? 300 : 2000, tmp, wants, log: (s) => console.error(s) })
    all.push(...rows)
    printTable(name, rows)
    console.error(`[${name}] ${((Date.now() - t) / 1000).toFixed(0)} s`)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}
const targets = [...checkTargets(all), ...followers.followerTargets(all), ...server.serverTargets(all)]
printTargets(targets, quick)

const out = join(here, 'results')
mkdirSync(out, { recursive: true })
// Partial (--only) and quick runs never overwrite the committed full results.
const stem = quick ? 'quick' : only !== undefined ? 'partial' : 'latest'
const seconds = (Date.now() - started) / 1000
const command = `npm run bench${quick || values.only !== undefined ? ' --' : ''}${quick ? ' --quick' : ''}${values.only !== undefined ? ` --only ${JSON.stringify(values.only)}` : ''}`
writeFileSync(join(out, `${stem}.json`), `${JSON.stringify({ machine: info, command, quick, keys: n, seconds, targets, rows: all }, null, 2)}\n`)
writeFileSync(join(out, `${stem}.svg`), barChart(chartRows(all), `kvstore vs Map and peers: ops/s at ${n.toLocaleString('en')} keys (${info.cpu}, ${info.cores} cores, Node ${info.node})`))
console.log(`\nwrote bench/results/${stem}.json and ${stem}.svg in ${seconds.toFixed(0)} s`)
