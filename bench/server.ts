// `kvstore serve` beside `redis-server` on this machine, both driven by redis-benchmark:
// `-t set,get,incr,lpush,lpop -n 200000 -c 50 --csv`, without and with `-P 16`, in two
// configurations: redis-server without persistence vs kvstore `--sync never`, and
// redis-server `appendfsync always` vs kvstore `--sync always` (a reply only once its write
// is fsynced, both sides). Each server is started fresh for each configuration, in its own
// directory under the group's temp dir, and stopped after. The kvstore row's note gives its
// ratio to redis-server; serverTargets() checks the goals of issue 18.
//
// kvstore runs as the built CLI (dist/cli.js) when it is newer than every source file, else
// from source through tsx; the first row says which. --quick uses -n 5,000.
//
// Runs when redis-server and redis-benchmark are installed (`npm test` installs them:
// scripts/install-services.sh) or when `--only server` selects it; see bench/run.ts.
import { spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sourceCommand, startKvstoreServer } from '../test/helpers/kvstore-server.js'
import { findRedisTool, redisTool, startRedisServer } from '../test/helpers/redis-server.js'
import { fmtRate, Rows, type BenchContext, type Row } from './lib/context.js'
import type { TargetResult } from './lib/targets.js'

const G = 'server'
const TESTS = ['SET', 'GET', 'INCR', 'LPUSH', 'LPOP'] as const
const CLIENTS = 50
const PIPELINES = [1, 16]
const KV = 'kvstore serve'

interface Config {
  /** Short id used in row ids. */
  id: 'none' | 'always'
  label: string
  redis: 'none' | 'always'
  kvSync: 'never' | 'always'
  /** The kvstore/redis ratio each test should reach. */
  goal: number
}

const CONFIGS: Config[] = [
  { id: 'none', label: "no persistence vs --sync never", redis: 'none', kvSync: 'never', goal: 0.5 },
  { id: 'always', label: "appendfsync always vs --sync always", redis: 'always', kvSync: 'always', goal: 1 },
]

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Whether redis-server and redis-benchmark are installed (PATH or /usr/bin). */
export function available(): boolean {
  return findRedisTool('redis-server') !== undefined && findRedisTool('redis-benchmark') !== undefined
}

function newestMtime(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

/** The kvstore CLI to run: dist/cli.js when it is newer than every file in src/, else the sources through tsx. */
function kvstoreCli(): { command: string[]; how: string } {
  const dist = join(ROOT, 'dist', 'cli.js')
  try {
    if (statSync(dist).mtimeMs > newestMtime(join(ROOT, 'src'))) return { command: [process.execPath, dist], how: 'built CLI (dist/cli.js)' }
    return { command: sourceCommand(), how: 'from source through tsx (dist/cli.js is older than src/; npm run build to use it)' }
  } catch {
    return { command: sourceCommand(), how: 'from source through tsx (no dist/cli.js; npm run build to use it)' }
  }
}

interface BenchLine {
  test: string
  rps: number
  avgMs: number
  p99Ms: number
}

/** Run redis-benchmark against host:port; its CSV rows. Rejects with its output when it fails or reports no rows. */
function redisBenchmark(host: string, port: number, n: number, pipeline: number): Promise<BenchLine[]> {
  const args = ['-h', host, '-p', String(port), '-t', TESTS.join(',').toLowerCase(), '-n', String(n), '-c', String(CLIENTS), '--csv', ...(pipeline > 1 ? ['-P', String(pipeline)] : [])]
  return new Promise((resolve, reject) => {
    const child = spawn(redisTool('redis-benchmark'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
    child.once('error', reject)
    child.once('exit', (code) => {
      // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
      const rows: BenchLine[] = []
      for (const line of out.split('\n')) {
        const cells = line.split(',').map((c) => c.replace(/^"|"$/g, ''))
        if (cells.length < 7 || cells[0] === 'test') continue
        rows.push({ test: cells[0] as string, rps: Number(cells[1]), avgMs: Number(cells[2]), p99Ms: Number(cells[6]) })
      }
      const missing = TESTS.filter((t) => !rows.some((r) => r.test === t))
      if (code !== 0 || missing.length > 0) {
        reject(new Error(`redis-benchmark ${args.join(' ')} exited with ${code}${missing.length > 0 ? `, no result for ${missing.join(', ')}` : ''}:\n${out}${err}`))
      } else resolve(rows)
    })
  })
}

const workload = (test: string, c: Config, p: number): string => `${test}, -P ${p} (${c.label})`
const rowId = (c: Config, p: number, test: string, engine: 'redis' | 'kv'): string => `server.${c.id}.p${p}.${test.toLowerCase()}.${engine}`

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const n = ctx.quick ? 5_000 : 200_000
  const cli = kvstoreCli()
  ctx.log(`  ${G}: redis-benchmark -t ${TESTS.join(',').toLowerCase()} -n ${n.toLocaleString('en')} -c ${CLIENTS} --csv [-P 16]; kvstore ${cli.how}`)
  let version = ''
  for (const c of CONFIGS) {
    const wanted = PIPELINES.filter((p) => TESTS.some((t) => ctx.wants(G, workload(t, c, p), KV) || ctx.wants(G, workload(t, c, p), 'redis-server')))
    if (wanted.length === 0) continue
    const results = new Map<string, { redis?: BenchLine; kv?: BenchLine }>()
    const slot = (p: number, t: string) => {
      const k = `${p}/${t}`
      if (!results.has(k)) results.set(k, {})
      return results.get(k) as { redis?: BenchLine; kv?: BenchLine }
    }
    const redis = await startRedisServer({ persistence: c.redis, parentDir: ctx.tmp })
    version = redis.version
    try {
      for (const p of wanted) for (const line of await redisBenchmark(redis.host, redis.port, n, p)) slot(p, line.test).redis = line
    } finally {
      await redis.stop()
    }
    const kv = await startKvstoreServer({ dir: join(ctx.tmp, `kvstore-${c.id}`), sync: c.kvSync, command: cli.command })
    try {
      for (const p of wanted) for (const line of await redisBenchmark(kv.host, kv.port, n, p)) slot(p, line.test).kv = line
    } finally {
      const code = await kv.stop()
      if (code !== 0) ctx.log(`  ${G}: kvstore serve exited with ${code}: ${kv.log()}`)
    }
    for (const p of wanted) {
      for (const t of TESTS) {
        const { redis: r, kv: k } = slot(p, t)
        if (r === undefined || k === undefined) continue
        const ratio = k.rps / r.rps
        const wl = workload(t, c, p)
        rows.add({ group: G, workload: wl, engine: `redis-server ${version}`, opsPerSec: r.rps, meanUs: r.avgMs * 1000, p99Us: r.p99Ms * 1000, opsPerSample: 1, id: rowId(c, p, t, 'redis') })
        rows.add({
          group: G, workload: wl, engine: KV, opsPerSec: k.rps, meanUs: k.avgMs * 1000, p99Us: k.p99Ms * 1000, opsPerSample: 1, id: rowId(c, p, t, 'kv'),
          note: `${ratio.toFixed(2)}x redis-server (goal ≥ ${c.goal}x); kvstore ${cli.how.startsWith('built') ? 'dist/cli.js' : 'from source'}`,
          data: { ratio, goal: c.goal },
        })
        ctx.log(`  ${G} | ${wl}: redis-server ${fmtRate(r.rps)}/s, kvstore ${fmtRate(k.rps)}/s = ${ratio.toFixed(2)}x`)
      }
    }
  }
  printRatios(rows.list)
  return rows.list
}

/** The ops/s of each test side by side with the kvstore/redis ratio, one line per test. */
function printRatios(rows: Row[]): void {
  const kvRows = rows.filter((r) => r.engine === KV && r.data?.ratio !== undefined)
  if (kvRows.length === 0) return
  const lines = kvRows.map((k) => {
    const r = rows.find((x) => x.workload === k.workload && x.engine !== KV)
    return [k.workload, fmtRate(r?.opsPerSec ?? 0), fmtRate(k.opsPerSec ?? 0), `${(k.data?.ratio as number).toFixed(2)}x`, (k.data?.ratio as number) >= (k.data?.goal as number) ? 'met' : 'MISS']
  })
  const head = ['redis-benchmark test', 'redis-server ops/s', 'kvstore ops/s', 'kvstore/redis', `goal`]
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)))
  const fmt = (l: string[]) => l.map((c, i) => c.padEnd(widths[i] as number)).join(' | ').trimEnd()
  console.log(`\n## server: kvstore serve / redis-server`)
  console.log(fmt(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const l of lines) console.log(fmt(l))
}

/**
 * The goals of issue 18 on the server rows: for each configuration and pipeline depth, the
 * worst kvstore/redis-server ratio over the five tests, ≥ 0.5x without persistence and
 * ≥ 1x with an fsync per write.
 */
export function serverTargets(rows: Row[]): TargetResult[] {
  const out: TargetResult[] = []
  for (const c of CONFIGS) {
    for (const p of PIPELINES) {
      const mine = rows.filter((r) => r.group === G && r.id?.startsWith(`server.${c.id}.p${p}.`) && r.data?.ratio !== undefined)
      const target = `kvstore serve ≥ ${c.goal}x redis-server on every redis-benchmark test, ${c.label}, ${p === 1 ? 'no pipelining' : `-P ${p}`}`
      if (mine.length === 0) {
        out.push({ target, actual: 'not measured', met: undefined })
        continue
      }
      const worst = mine.reduce((a, b) => ((a.data?.ratio as number) <= (b.data?.ratio as number) ? a : b))
      const test = worst.workload.split(',')[0] as string
      const below = mine.filter((r) => (r.data?.ratio as number) < c.goal).map((r) => r.workload.split(',')[0] as string)
      out.push({
        target,
        actual: `worst ${(worst.data?.ratio as number).toFixed(2)}x (${test})${below.length > 0 ? `; below the goal: ${below.join(', ')}` : ''}`,
        met: below.length === 0,
      })
    }
  }
  return out
}
