// Memory budget and eviction (issue 17). A Zipf workload of 1 KiB writes under a budget, in
// a fresh `node --expose-gc` child so its heap is measured alone: accounted memory against
// the budget, heap against the budget, and the hit ratio of allkeys-lru next to an exact
// LRU (a Map in insertion order) replaying the same key stream with the same byte formula.
// Then get/set throughput with and without a budget, in this process.
//   full:    10,000,000 writes over 1,000,000 keys (Zipf s = 0.99) under 64 MiB
//   --quick: 200,000 writes over 50,000 keys under 4 MiB
import { execFileSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Store, type EvictionPolicy } from '../src/index.js'
import { ENTRY_OVERHEAD_BYTES } from '../src/eviction/entry-size.js'
import { fmtNum, metric, Rows, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, rng, shuffle, VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

const G = 'eviction'
const BATCH = 1000
const VALUE_BYTES = 1024
const ZIPF_S = 0.99
const MiB = 1024 * 1024

/** What the child process is asked to run. */
interface ZipfParams {
  writes: number
  universe: number
  budgetBytes: number
  policy: EvictionPolicy
  seed: number
}

/** What it reports. */
interface ZipfResult {
  writes: number
  seconds: number
  /** Largest `stats().memoryBytes` seen (checked every 1,024 ops and at the end). */
  maxAccountedBytes: number
  /** Largest heapUsed right after a full GC (sampled 10 times and at the end). */
  maxLiveHeapBytes: number
  /** Largest heapUsed seen between GCs (garbage included). */
  peakHeapBytes: number
  /** heapUsed after GC before the store was opened. */
  baseHeapBytes: number
  hitRatio: number
  exactLruHitRatio: number
  evictedKeys: number
  keys: number
}

/** Cumulative Zipf distribution over ranks 0..n-1 (rank 0 most popular). Off-heap. */
function zipfCdf(n: number, s: number): Float64Array {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1) ** s
  for (let i = 0; i < n; i++) cdf[i] = (cdf[i] as number) / sum
  return cdf
}

/** The rank whose cumulative probability first reaches `u`. */
function zipfRank(cdf: Float64Array, u: number): number {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((cdf[mid] as number) < u) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Short keys (< 13 chars) are flat strings in V8; no key array is kept on the heap. */
const keyOf = (rank: number): string => `key:${rank}`

async function zipfProbe(p: ZipfParams): Promise<ZipfResult> {
  const gc = (globalThis as { gc?: () => void }).gc as () => void
  const heap = (): number => process.memoryUsage().heapUsed
  const cdf = zipfCdf(p.universe, ZIPF_S)
  // Every write stores a distinct flat 1 KiB string, as real values would be.
  const buf = Buffer.alloc(VALUE_BYTES, 'v')
  const valueOf = (i: number): string => {
    buf.write(String(i).padStart(10, '0'), 0, 'latin1')
    return buf.toString('latin1')
  }
  gc()
  const baseHeapBytes = heap()
  const store = await Store.open<string>({ maxMemoryBytes: p.budgetBytes, evictionPolicy: p.policy, expirySweepIntervalMs: 0 })
  const r = rng(p.seed)
  const gcEvery = Math.max(1, Math.floor(p.writes / 10))
  let hits = 0
  let maxAccountedBytes = 0
  let maxLiveHeapBytes = 0
  let peakHeapBytes = 0
  const started = performance.now()
  for (let i = 0; i < p.writes; i++) {
    const key = keyOf(zipfRank(cdf, r()))
    if ((await store.get(key)) !== undefined) hits++
    await store.set(key, valueOf(i))
    if ((i & 1023) === 0) {
      maxAccountedBytes = Math.max(maxAccountedBytes, store.stats().memoryBytes ?? 0)
      peakHeapBytes = Math.max(peakHeapBytes, heap())
    }
    if (i % gcEvery === gcEvery - 1) {
      gc()
      maxLiveHeapBytes = Math.max(maxLiveHeapBytes, heap())
    }
  }
  const seconds = (performance.now() - started) / 1000
  const st = store.stats()
  maxAccountedBytes = Math.max(maxAccountedBytes, st.memoryBytes ?? 0)
  gc()
  maxLiveHeapBytes = Math.max(maxLiveHeapBytes, heap())
  await store.close()
  return {
    writes: p.writes, seconds, maxAccountedBytes, maxLiveHeapBytes, peakHeapBytes, baseHeapBytes,
    hitRatio: hits / p.writes, exactLruHitRatio: exactLru(p, cdf), evictedKeys: st.evictedKeys ?? 0, keys: st.keys,
  }
}

/** Hit ratio of an exact LRU of the same byte capacity on the same key stream (same seed, same entry formula). */
function exactLru(p: ZipfParams, cdf: Float64Array): number {
  const lru = new Map<string, number>()
  const r = rng(p.seed)
  let bytes = 0
  let hits = 0
  for (let i = 0; i < p.writes; i++) {
    const key = keyOf(zipfRank(cdf, r()))
    const size = Buffer.byteLength(key) + VALUE_BYTES + ENTRY_OVERHEAD_BYTES
    const had = lru.get(key)
    if (had !== undefined) {
      hits++
      lru.delete(key)
      bytes -= had
    }
    lru.set(key, size)
    bytes += size
    while (bytes > p.budgetBytes) {
      const [oldest, s] = lru.entries().next().value as [string, number]
      lru.delete(oldest)
      bytes -= s
    }
  }
  return hits / p.writes
}

const self = fileURLToPath(import.meta.url)

function runProbe(p: ZipfParams): ZipfResult {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--zipf-probe', JSON.stringify(p)], { encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out) as ZipfResult
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const p: ZipfParams = ctx.quick
    ? { writes: 200_000, universe: 50_000, budgetBytes: 4 * MiB, policy: 'allkeys-lru', seed: 17 }
    : { writes: 10_000_000, universe: 1_000_000, budgetBytes: 64 * MiB, policy: 'allkeys-lru', seed: 17 }
  const zipf = `Zipf ${ZIPF_S}, ${p.writes.toLocaleString('en')} writes of 1 KiB over ${p.universe.toLocaleString('en')} keys, ${p.budgetBytes / MiB} MiB budget`
  if (ctx.wants(G, zipf, 'kvstore (allkeys-lru)')) {
    ctx.log(`  ${zipf}: child process…`)
    const z = runProbe(p)
    const engine = 'kvstore (allkeys-lru)'
    const mb = (b: number): string => `${(b / MiB).toFixed(1)} MiB`
    rows.add(metric(ctx, G, `${zipf}: accounted memory ÷ budget (max)`, engine, z.maxAccountedBytes / p.budgetBytes, 'x', {
      id: 'evict.accounted', note: `max memoryBytes ${z.maxAccountedBytes} of ${p.budgetBytes}; ${z.keys.toLocaleString('en')} keys held, ${z.evictedKeys.toLocaleString('en')} evicted`,
    }))
    rows.add(metric(ctx, G, `${zipf}: heap after GC ÷ budget (max)`, engine, z.maxLiveHeapBytes / p.budgetBytes, 'x', {
      id: 'evict.heap', note: `max ${mb(z.maxLiveHeapBytes)} after GC (process baseline ${mb(z.baseHeapBytes)}); peak between GCs ${mb(z.peakHeapBytes)} = ${fmtNum(z.peakHeapBytes / p.budgetBytes)}x`,
      data: { peakRatio: z.peakHeapBytes / p.budgetBytes, baseHeapBytes: z.baseHeapBytes },
    }))
    rows.add(metric(ctx, G, `${zipf}: hit ratio`, engine, z.hitRatio * 100, '%', {
      id: 'evict.hit', note: `exact LRU on the same stream: ${(z.exactLruHitRatio * 100).toFixed(2)} %`, data: { exactLru: z.exactLruHitRatio * 100 },
    }))
    rows.add(metric(ctx, G, `${zipf}: get + set pairs`, engine, z.writes / z.seconds, 'pairs/s', { note: `${z.seconds.toFixed(1)} s` }))
  }

  // Throughput with and without a budget: 16-byte keys, 100-byte values.
  const n = ctx.quick ? 20_000 : 200_000
  const entry = 16 + VALUE.length + ENTRY_OVERHEAD_BYTES
  const keys = makeKeys(n, 5)
  const lookups = shuffle(keys.slice(), 6)
  const fresh = makeKeys(ctx.n * 2, 7, 'f')
  const open = async (maxMemoryBytes: number): Promise<Store<string>> => {
    const s = await Store.open<string>({ maxMemoryBytes, evictionPolicy: 'allkeys-lru', expirySweepIntervalMs: 0 })
    for (const k of keys) await s.set(k, VALUE)
    await s.keys('none:*')
    return s
  }
  const engines: [string, Store<string>][] = [
    ['kvstore (no budget)', await open(0)],
    ['kvstore (budget, not full)', await open(4 * n * entry)],
    ['kvstore (budget full: every new key evicts one)', await open(n * entry)],
  ]
  let at = 0
  const next = (): string => {
    const k = lookups[at] as string
    at = at + 1 === lookups.length ? 0 : at + 1
    return k
  }
  const ids = ['none', 'budget', 'full']
  for (const [i, [engine, s]] of engines.entries()) {
    if (i < 2) {
      rows.add(await measure(ctx, G, `get (${n.toLocaleString('en')} keys)`, engine, BATCH, async () => {
        for (let j = 0; j < BATCH; j++) await s.get(next())
      }, { id: `evict.get.${ids[i]}` }))
      rows.add(await measure(ctx, G, 'set, overwrite', engine, BATCH, async () => {
        for (let j = 0; j < BATCH; j++) await s.set(next(), VALUE)
      }, { id: `evict.set.${ids[i]}` }))
    }
    if (i !== 1) {
      let f = 0
      rows.add(await measure(ctx, G, 'set, new keys', engine, BATCH, async () => {
        for (let j = 0; j < BATCH; j++) await s.set(fresh[f++ % fresh.length] as string, VALUE)
      }, { id: `evict.setnew.${ids[i]}` }))
    }
    await s.close()
  }
  return rows.list
}

if (process.argv[2] === '--zipf-probe' && import.meta.url === pathToFileURL(process.argv[1] as string).href) {
  process.stdout.write(JSON.stringify(await zipfProbe(JSON.parse(process.argv[3] as string) as ZipfParams)))
}
