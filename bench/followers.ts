// Read-only followers (`Store.open({ dir, readOnly: true })`) in other processes:
//   get scaling   a writer (this process) fills n keys (16-byte keys, 100-byte values),
//                 compacts, appends a WAL tail of n/10 overwrites and closes; then random
//                 gets over the async API in 1 follower process for a fixed time, then in
//                 2 follower processes at once (summed): the ratio is the scaling.
//   open          follower open of that directory (snapshot + WAL tail), beside a writer's
//                 open of it; each in a fresh process, timed around Store.open.
//   lag           a writer process sets at a paced rate (sync 'never'; the value carries
//                 performance.timeOrigin + performance.now() at the set call) while a
//                 follower process watches (`follower.watch()`) and takes, per record, its
//                 own clock minus the value's time: p50 / p99 / max at 1,000 and 10,000
//                 writes/s. Both clocks are the same machine's wall clock.
// Every child is `node --import tsx bench/followers.ts <role> <json>`, driven over IPC.
// --quick: 20K keys, 1 s phases.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Store } from '../src/index.js'
import { parentDeathPrefix, trackChild } from '../test/helpers/child-process.js'
import { fmtNum, fmtRate, metric, Rows, timeOnce, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, rng, VALUE } from './lib/data.js'
import type { TargetResult } from './lib/targets.js'

const G = 'followers'
const HERE = fileURLToPath(import.meta.url)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const KEY_SEED = 41
const SCALING_GOAL = 1.8
const LAG_GOAL_MS = 50
const LAG_KEYS = 1000

const GET_WL = 'get, random keys, async API'
const ONE = 'kvstore follower, 1 process'
const TWO = 'kvstore followers, 2 processes at once (sum)'
const WRITER_OPEN = 'kvstore writer (dir)'
const FOLLOWER_OPEN = 'kvstore follower (readOnly)'
const LAG_ENGINE = "kvstore follower (fs.watch + 100 ms poll), writer sync 'never'"
const RATES = [1000, 10_000]

const openWl = (n: number, tail: number): string => `open a ${n.toLocaleString('en')}-key directory (snapshot + ${tail.toLocaleString('en')} WAL records)`
const lagWl = (rate: number): string => `replication lag (p50), ${rate.toLocaleString('en')} writes/s`
const now = (): number => performance.timeOrigin + performance.now()

// ------------------------------------------------------------------ parent side

type Msg = { type: string } & Record<string, unknown>

/** A child process of this file in one role, with a message inbox. */
class Child {
  readonly #proc: ChildProcess
  readonly #inbox: Msg[] = []
  readonly #waiting: { type: string; resolve: (m: Msg) => void; reject: (e: Error) => void }[] = []
  #gone: Error | undefined
  #loaded = false
  /** Resolves once the child has loaded the sources and listens for messages. */
  readonly loaded: Promise<void>

  constructor(role: string, args: Record<string, unknown>) {
    const argv = [...parentDeathPrefix(), process.execPath, '--import', TSX, HERE, role, JSON.stringify(args)]
    // The children's output goes to stderr with the bench's progress lines; stdout stays the report.
    this.#proc = spawn(argv[0] as string, argv.slice(1), { cwd: ROOT, stdio: ['ignore', 2, 2, 'ipc'] })
    trackChild(this.#proc)
    this.loaded = this.next('loaded').then(() => undefined)
    this.loaded.catch(() => undefined) // a failure shows in the next wait as well
    this.#proc.on('message', (m: Msg) => {
      if (m.type === 'loaded') this.#loaded = true
      const i = this.#waiting.findIndex((w) => w.type === m.type)
      if (m.type === 'error') this.#fail(new Error(`${role} child: ${String(m.message)}`))
      else if (i >= 0) this.#waiting.splice(i, 1)[0]?.resolve(m)
      else this.#inbox.push(m)
    })
    this.#proc.once('error', (e) => this.#fail(e))
    this.#proc.once('exit', (code, signal) => this.#fail(new Error(`${role} child exited (${signal ?? code})`)))
  }

  #fail(e: Error): void {
    this.#gone ??= e
    for (const w of this.#waiting.splice(0)) w.reject(e)
  }

  /** The next message of `type` (earlier ones of other types stay queued). */
  next(type: string, timeoutMs = 300_000): Promise<Msg> {
    const i = this.#inbox.findIndex((m) => m.type === type)
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as Msg)
    if (this.#gone !== undefined) return Promise.reject(this.#gone)
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error(`no '${type}' message within ${timeoutMs} ms`)), timeoutMs)
      this.#waiting.push({
        type,
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
    })
  }

  send(m: Msg): void {
    this.#proc.send(m)
  }

  /** Once the child loaded the sources: let it begin its role. */
  async start(): Promise<void> {
    await this.loaded
    this.send({ type: 'start' })
  }

  /** Ask the child to close its store and exit; SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return
    const exited = new Promise<void>((r) => this.#proc.once('exit', () => r()))
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), 20_000)
    try {
      // A message sent before the child listens would be lost: wait until it has loaded.
      if (!this.#loaded) await this.loaded
      this.send({ type: 'exit' })
    } catch {
      // the channel is gone, or the child failed: the process is on its way out (or killed)
    }
    await exited
    clearTimeout(timer)
  }
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number)
}

/** Fill `dir` with n keys, compact, append n/10 single-record overwrites; returns the tail length. */
async function buildDirectory(ctx: BenchContext, dir: string, n: number): Promise<number> {
  const keys = makeKeys(n, KEY_SEED)
  const w = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
  const fillMs = await timeOnce(async () => {
    for (let i = 0; i < n; i += 10_000) await w.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
  })
  const compactMs = await timeOnce(() => w.compact())
  const tail = Math.max(1, Math.floor(n / 10))
  const r = rng(7)
  let last: Promise<unknown> = Promise.resolve()
  for (let i = 0; i < tail; i++) {
    last = w.set(keys[Math.floor(r() * n)] as string, VALUE)
    if (i % 1000 === 999) await last
  }
  await last
  await w.close()
  ctx.log(`  ${G}: wrote ${n.toLocaleString('en')} keys in ${fmtNum(fillMs)} ms, compacted in ${fmtNum(compactMs)} ms, then ${tail.toLocaleString('en')} single-record overwrites`)
  return tail
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const n = ctx.n
  const phaseMs = ctx.quick ? 1000 : 3000
  const tail = Math.max(1, Math.floor(n / 10))
  const wantGet = ctx.wants(G, GET_WL, ONE) || ctx.wants(G, GET_WL, TWO)
  const wantOpen = ctx.wants(G, openWl(n, tail), FOLLOWER_OPEN) || ctx.wants(G, openWl(n, tail), WRITER_OPEN)
  const wantLag = RATES.some((r) => ctx.wants(G, lagWl(r), LAG_ENGINE))
  const big = join(ctx.tmp, 'big')
  const lagDir = join(ctx.tmp, 'lag')
  mkdirSync(lagDir)
  // Every child starts now and loads the sources while the directory is built; each then
  // waits for its 'start', so nothing else runs while one is measured.
  const readerArgs = (seed: number) => ({ dir: big, n, seed, warmMs: ctx.quick ? 200 : 1000 })
  const a = wantGet || wantOpen ? new Child('reader', readerArgs(1)) : undefined
  const b = wantGet ? new Child('reader', readerArgs(2)) : undefined
  const opener = wantOpen ? new Child('open', { dir: big }) : undefined
  const writer = wantLag ? new Child('writer', { dir: lagDir }) : undefined
  const follower = wantLag ? new Child('lag', { dir: lagDir }) : undefined
  const children = [a, b, opener, writer, follower].filter((c) => c !== undefined)
  const gets: Row[] = []
  const opens: Row[] = []
  const lags: Row[] = []
  try {
    if (a !== undefined) await buildDirectory(ctx, big, n)
    await Promise.all(children.map((c) => c.loaded))
    if (a !== undefined) {
      // Reader a opens alone: its open time is the follower's open row.
      await a.start()
      const opened = await a.next('opened')
      const followerOpen = metric(ctx, G, openWl(n, tail), FOLLOWER_OPEN, opened.ms as number, 'ms', {
        id: 'followers.open.follower',
        note: `fresh process, Store.open only; ${(opened.keys as number).toLocaleString('en')} keys at seq ${(opened.seq as number).toLocaleString('en')}`,
      })
      if (b !== undefined) {
        await b.start()
        await Promise.all([a.next('ready'), b.next('ready')])
        a.send({ type: 'go', ms: phaseMs })
        const alone = await a.next('done')
        for (const c of [a, b]) c.send({ type: 'go', ms: phaseMs })
        const both = await Promise.all([a.next('done'), b.next('done')])
        const misses = [alone, ...both].reduce((s, m) => s + (m.misses as number), 0)
        if (misses > 0) throw new Error(`followers: ${misses} gets found no value`)
        const rate = (m: Msg): number => (m.ops as number) / (m.secs as number)
        const one = rate(alone)
        const two = rate(both[0]) + rate(both[1])
        const cores = cpus().length
        const ratio = two / one
        const parts = both.map((m) => fmtRate(rate(m))).join(' + ')
        if (ctx.wants(G, GET_WL, ONE)) {
          gets.push({ group: G, workload: GET_WL, engine: ONE, opsPerSec: one, id: 'followers.get.1', note: `${(phaseMs / 1000).toFixed(0)} s, ${n.toLocaleString('en')} keys, awaiting each get` })
        }
        if (ctx.wants(G, GET_WL, TWO)) {
          gets.push({
            group: G, workload: GET_WL, engine: TWO, opsPerSec: two, id: 'followers.get.2',
            note: `${ratio.toFixed(2)}x one process (goal ≥ ${SCALING_GOAL}x); ${parts}; ${cores} cores`,
            data: { ratio, cores },
          })
        }
        ctx.log(`  ${G} | ${GET_WL}: 1 process ${fmtRate(one)}/s, 2 at once ${fmtRate(two)}/s (${parts}) = ${ratio.toFixed(2)}x`)
      }
      await Promise.all([a.stop(), b?.stop()])
      if (opener !== undefined) {
        // After the followers: a writer's open may cut a torn tail (there is none here); its close writes no snapshot.
        await opener.start()
        const m = await opener.next('opened')
        const writerOpen = metric(ctx, G, openWl(n, tail), WRITER_OPEN, m.ms as number, 'ms', {
          id: 'followers.open.writer',
          note: `fresh process, Store.open only; ${(m.snapshotEntries as number).toLocaleString('en')} entries from the snapshot, ${(m.records as number).toLocaleString('en')} WAL records replayed`,
        })
        await opener.stop()
        for (const r of [writerOpen, followerOpen]) if (r !== undefined) opens.push(r)
      }
    }

    if (writer !== undefined && follower !== undefined) {
      await writer.start()
      await writer.next('ready')
      await follower.start()
      await follower.next('ready')
      const phases = [{ phase: 0, rate: 1000, ms: ctx.quick ? 200 : 500 }, ...RATES.map((rate, i) => ({ phase: i + 1, rate, ms: phaseMs }))]
      for (const p of phases) {
        if (p.phase > 0 && !ctx.wants(G, lagWl(p.rate), LAG_ENGINE)) continue
        writer.send({ type: 'go', ...p })
        const done = await writer.next('done')
        follower.send({ type: 'collect', phase: p.phase, seq: done.seq, count: done.count })
        const got = await follower.next('lags')
        if (p.phase === 0) continue // warm-up: both sides JIT-compiled, the follower caught up once
        const sorted = Float64Array.from(got.lags as number[]).sort()
        const seen = sorted.length
        const count = done.count as number
        const mean = sorted.reduce((s, x) => s + x, 0) / Math.max(1, seen)
        const p50 = quantile(sorted, 0.5)
        const p99 = quantile(sorted, 0.99)
        const max = quantile(sorted, 1)
        const achieved = count / (done.secs as number)
        const row = metric(ctx, G, lagWl(p.rate), LAG_ENGINE, p50, 'ms', {
          id: `followers.lag.${p.rate / 1000}k`,
          note: `p99 ${fmtNum(p99)} ms, max ${fmtNum(max)} ms${p.rate === 10_000 ? ` (goal p99 ≤ ${LAG_GOAL_MS} ms)` : ''}; ${seen.toLocaleString('en')} of ${count.toLocaleString('en')} records seen; writer at ${fmtRate(achieved)} writes/s for ${(p.ms / 1000).toFixed(0)} s`,
          data: { p50, p99, max, seen, count, rate: p.rate, achieved },
        })
        if (row !== undefined) lags.push({ ...row, meanUs: mean * 1000, p99Us: p99 * 1000 })
      }
      follower.send({ type: 'stats' })
      const st = (await follower.next('stats')).stats as { resyncs: number; error: string | undefined }
      if (st.resyncs > 0 || st.error !== undefined) ctx.log(`  ${G}: lag follower resyncs ${st.resyncs}, error ${st.error ?? 'none'}`)
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()))
  }
  for (const r of [...gets, ...opens, ...lags]) rows.add(r)
  return rows.list
}

/** The goals of the followers feature on this group's rows (for run.ts's target checklist). */
export function followerTargets(rows: Row[]): TargetResult[] {
  const byId = new Map(rows.filter((r) => r.group === G && r.id !== undefined).map((r) => [r.id as string, r]))
  const one = byId.get('followers.get.1')?.opsPerSec
  const two = byId.get('followers.get.2')
  const ratio = two?.data?.ratio
  const lag = byId.get('followers.lag.10k')?.data
  return [
    {
      target: `followers: 2 follower processes reading at once ≥ ${SCALING_GOAL}x the get rate of 1`,
      actual: ratio === undefined || one === undefined ? 'not measured' : `${ratio.toFixed(2)}x (${fmtRate(two?.opsPerSec as number)}/s vs ${fmtRate(one)}/s, ${String(two?.data?.cores)} cores)`,
      met: ratio === undefined ? undefined : ratio >= SCALING_GOAL,
    },
    {
      target: `followers: replication lag p99 ≤ ${LAG_GOAL_MS} ms at 10,000 writes/s, every record seen`,
      actual: lag === undefined ? 'not measured' : `p99 ${fmtNum(lag.p99 as number)} ms, ${(lag.seen as number).toLocaleString('en')} of ${(lag.count as number).toLocaleString('en')} records`,
      met: lag === undefined ? undefined : (lag.p99 as number) <= LAG_GOAL_MS && lag.seen === lag.count,
    },
  ]
}

// ------------------------------------------------------------------ child side

function send(m: Msg): void {
  process.send?.(m)
}

const inbox: Msg[] = []
let waiting: ((m: Msg) => void) | undefined

/** The next message from the parent, in order. */
function nextMessage(): Promise<Msg> {
  const m = inbox.shift()
  if (m !== undefined) return Promise.resolve(m)
  return new Promise((r) => (waiting = r))
}

async function child(role: string, args: Record<string, unknown>): Promise<void> {
  process.on('message', (m: Msg) => {
    const w = waiting
    waiting = undefined
    if (w !== undefined) w(m)
    else inbox.push(m)
  })
  // The parent is gone: nothing will ask for results.
  process.on('disconnect', () => process.exit(1))
  // Loaded and listening: wait for the parent's 'start', so this role runs when nothing else is measured.
  send({ type: 'loaded' })
  if ((await nextMessage()).type === 'exit') process.exit(0)
  const dir = args.dir as string
  let store: Store<unknown> | undefined
  const serve = async (handle: (m: Msg) => Promise<void>): Promise<void> => {
    for (;;) {
      const m = await nextMessage()
      if (m.type === 'exit') break
      await handle(m)
    }
    await store?.close()
    process.exit(0)
  }

  if (role === 'open') {
    const ms = await timeOnce(async () => {
      store = await Store.open({ dir, expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
    })
    const rec = store?.stats().recovery
    send({ type: 'opened', ms, snapshotEntries: rec?.snapshotEntries ?? 0, records: rec?.records ?? 0 })
    return serve(async () => undefined)
  }

  if (role === 'reader') {
    const n = args.n as number
    const ms = await timeOnce(async () => {
      store = await Store.open({ dir, readOnly: true, expirySweepIntervalMs: 0 })
    })
    const s = store as Store<unknown>
    send({ type: 'opened', ms, keys: s.stats().keys, seq: s.seq })
    const keys = makeKeys(n, KEY_SEED)
    const r = rng(1000 + (args.seed as number))
    const lookups = Array.from({ length: Math.min(1 << 18, n * 4) }, () => keys[Math.floor(r() * n)] as string)
    let at = 0
    let misses = 0
    const loop = async (ms: number): Promise<{ ops: number; secs: number }> => {
      let ops = 0
      const start = performance.now()
      const end = start + ms
      while (performance.now() < end) {
        for (let i = 0; i < 1000; i++) {
          const v = await s.get(lookups[at] as string)
          if (v === undefined) misses++
          at = at + 1 === lookups.length ? 0 : at + 1
        }
        ops += 1000
      }
      return { ops, secs: (performance.now() - start) / 1000 }
    }
    await loop(args.warmMs as number)
    misses = 0
    send({ type: 'ready' })
    return serve(async (m) => {
      if (m.type !== 'go') return
      const res = await loop(m.ms as number)
      send({ type: 'done', ...res, misses })
      misses = 0
    })
  }

  if (role === 'writer') {
    const w = await Store.open<{ p: number; i: number; t: number }>({ dir, sync: 'never', expirySweepIntervalMs: 0, compactThresholdBytes: 0 })
    store = w as Store<unknown>
    send({ type: 'ready' })
    return serve(async (m) => {
      if (m.type !== 'go') return
      const phase = m.phase as number
      const rate = m.rate as number
      const total = Math.round((rate * (m.ms as number)) / 1000)
      let issued = 0
      let last: Promise<unknown> = Promise.resolve()
      const start = performance.now()
      // Paced: every ~1 ms timer turn issues the writes due by then, each stamped at its set call.
      while (issued < total) {
        const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1)
        while (issued < due) {
          last = w.set(`lag:${issued % LAG_KEYS}`, { p: phase, i: issued, t: now() })
          issued++
        }
        await new Promise((r) => setTimeout(r, 1))
      }
      await last
      send({ type: 'done', count: total, seq: w.seq, secs: (performance.now() - start) / 1000 })
    })
  }

  if (role === 'lag') {
    const f = await Store.open<{ p: number; i: number; t: number }>({ dir, readOnly: true, expirySweepIntervalMs: 0 })
    store = f as Store<unknown>
    const lags = new Map<number, number[]>()
    const feed = f.watch({ prefix: 'lag:', highWaterMark: 10_000_000 })
    void (async () => {
      for await (const c of feed) {
        if (c.type !== 'set') continue
        const t = now()
        let list = lags.get(c.value.p)
        if (list === undefined) lags.set(c.value.p, (list = []))
        list.push(t - c.value.t)
      }
    })().catch((err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }))
    send({ type: 'ready' })
    return serve(async (m) => {
      if (m.type === 'stats') {
        send({ type: 'stats', stats: f.stats().follower })
        return
      }
      if (m.type !== 'collect') return
      const phase = m.phase as number
      await f.waitFor(m.seq as number, { timeoutMs: 30_000 })
      // The feed delivers asynchronously: let it hand over what was applied.
      const until = performance.now() + 2000
      while ((lags.get(phase)?.length ?? 0) < (m.count as number) && performance.now() < until) await new Promise((r) => setTimeout(r, 5))
      send({ type: 'lags', lags: lags.get(phase) ?? [] })
      lags.delete(phase)
    })
  }
  throw new Error(`unknown role ${role}`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === HERE) {
  child(process.argv[2] as string, JSON.parse(process.argv[3] ?? '{}') as Record<string, unknown>).catch((err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    console.error(err)
    process.exitCode = 1
    process.disconnect?.()
  })
}
