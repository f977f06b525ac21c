// The performance targets of the issue and the spec, checked against one run's rows.
import { fmtNum, fmtRate, type Row } from './context.js'

/** One target: what it asks, what this run measured, whether it holds. */
export interface TargetResult {
  target: string
  actual: string
  /** undefined when the rows it needs were not measured (e.g. `--only`). */
  met: boolean | undefined
}

const KV_DIR = "kvstore (dir, 'never')"
const KV_ALWAYS = "kvstore (dir, 'always')"
const PEERS = ['lmdb (noSync)', 'classic-level', 'nedb']
const NON_DURABLE = /^(get|set|delete|keys|scan|batch)/

/** Every peer row of `engine` on a workload matching `re`, against the peers in `against`. */
function versus(peers: Row[], engine: string, re: RegExp, against: string[]): { compared: number; losses: string[] } {
  const losses: string[] = []
  let compared = 0
  for (const kv of peers.filter((r) => r.engine === engine && re.test(r.workload))) {
    for (const p of peers.filter((r) => r.workload === kv.workload && against.includes(r.engine))) {
      compared++
      if ((p.opsPerSec as number) >= (kv.opsPerSec as number)) losses.push(`${kv.workload}: ${p.engine} ${fmtRate(p.opsPerSec as number)}/s vs ${fmtRate(kv.opsPerSec as number)}/s`)
    }
  }
  return { compared, losses }
}

/** a / b, or undefined when either was not measured. */
function ratioOf(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined ? undefined : a / b
}

/** Evaluate every target on `rows`. */
export function checkTargets(rows: Row[]): TargetResult[] {
  const byId = new Map(rows.filter((r) => r.id !== undefined).map((r) => [r.id as string, r]))
  const rate = (id: string): number | undefined => byId.get(id)?.opsPerSec
  const val = (id: string): number | undefined => byId.get(id)?.value
  const out: TargetResult[] = []
  const atLeast = (target: string, v: number | undefined, min: number): void => {
    out.push({ target, actual: v === undefined ? 'not measured' : `${fmtRate(v)}/s`, met: v === undefined ? undefined : v >= min })
  }
  const under = (target: string, v: number | undefined, max: number, unit: string, inclusive = false): void => {
    out.push({ target, actual: v === undefined ? 'not measured' : `${fmtNum(v)} ${unit}`, met: v === undefined ? undefined : inclusive ? v <= max : v < max })
  }
  const atMost = (target: string, v: number | undefined, max: number, unit: string): void => under(target, v, max, unit, true)
  /** `Map is Nx faster` rows: the Map row's rate over kvstore's, at most `max`. */
  const mapRatio = (target: string, mapId: string, kvId: string, max: number): void => {
    const r = ratioOf(rate(mapId), rate(kvId))
    out.push({ target, actual: r === undefined ? 'not measured' : `Map is ${r.toFixed(2)}x faster`, met: r === undefined ? undefined : r <= max })
  }
  /** Heap per entry over the raw bytes, below `max` (or at most it). */
  const memRatio = (target: string, id: string, max: number, inclusive: boolean): void => {
    const r = byId.get(id)?.data?.ratioToRaw
    out.push({ target, actual: r === undefined ? 'not measured' : `${r.toFixed(2)}x`, met: r === undefined ? undefined : inclusive ? r <= max : r < max })
  }

  atLeast('get through the async API ≥ 1M ops/s', rate('core.get.kvstore'), 1e6)
  atLeast('set (overwrite) ≥ 500K ops/s', rate('core.set-overwrite.kvstore'), 5e5)
  atLeast('set of new keys ≥ 500K ops/s', rate('core.set-new.kvstore'), 5e5)
  mapRatio('get within 3x of Map', 'core.get.map', 'core.get.kvstore', 3)
  mapRatio('getSync within 1.3x of Map.get', 'core.get-sync.map', 'core.get-sync.kvstore', 1.3)
  memRatio('memory < 2x raw data', 'mem.kvstore', 2, false)
  memRatio('memory < 2x raw data, every key with a TTL', 'mem.kvstore-ttl', 2, false)

  atLeast('durable writes, 1,000 writers ≥ 300K/s', rate('dur.w1000'), 3e5)
  const raw = rate('dur.raw')
  const w1 = rate('dur.w1')
  const share = raw !== undefined && w1 !== undefined ? w1 / raw : undefined
  out.push({
    target: 'one durable writer ≥ 80% of raw fdatasync',
    actual: share === undefined ? 'not measured' : `${(share * 100).toFixed(0)}% (${fmtRate(w1 as number)}/s vs ${fmtRate(raw as number)}/s)`,
    met: share === undefined ? undefined : share >= 0.8,
  })
  under('open + replay of a 1M-record WAL < 2 s', val('dur.replay'), 2000, 'ms')
  under('binary snapshot of 100K entries < 100 ms', val('snap.100k.binary.write'), 100, 'ms')
  under('snapshot of 100K entries < 1 s (JSON)', val('snap.100k.json.write'), 1000, 'ms')
  under('longest write stall during a 1M-entry snapshot < 50 ms', val('snap.stall'), 50, 'ms')
  under('open of a compacted 1M-entry directory < 1 s', val('snap.open'), 1000, 'ms')

  // Performance round 2 (issue 15).
  atMost('round 2: open of a compacted 1M-entry directory ≤ 400 ms', val('snap.open'), 400, 'ms')
  const phys = ratioOf(val('snap.open'), val('snap.open-physical'))
  out.push({ target: 'round 2: open as a multiple of its physical limit (read the file + create its strings)', actual: phys === undefined ? 'not measured' : `${phys.toFixed(2)}x (${fmtNum(val('snap.open') as number)} ms vs ${fmtNum(val('snap.open-physical') as number)} ms)`, met: undefined })
  atMost('round 2: open + replay of a 1M-record WAL ≤ 1,000 ms', val('dur.replay'), 1000, 'ms')
  atMost('round 2: load of a 1M-entry binary snapshot ≤ 400 ms', val('snap.1m.binary.load'), 400, 'ms')
  atMost('round 2: binary snapshot of 1M entries ≤ 500 ms', val('snap.1m.binary.write'), 500, 'ms')
  atMost('round 2: binary snapshot of 100K entries ≤ 50 ms', val('snap.100k.binary.write'), 50, 'ms')
  atMost('round 2: longest write stall during a 1M-entry snapshot ≤ 20 ms', val('snap.stall'), 20, 'ms')
  mapRatio('round 2: get (async API) within 1.3x of Map', 'core.get.map', 'core.get.kvstore', 1.3)
  atLeast('round 2: delete ≥ 1M ops/s', rate('core.delete.kvstore'), 1e6)
  for (const [id, base, what] of [['ttl.set', 'ttl.set-plain', 'set with TTL'], ['ttl.get', 'ttl.get-plain', 'get of a key with TTL']] as const) {
    const r = ratioOf(rate(base), rate(id))
    out.push({ target: `round 2: ${what} within 1.3x of the same without TTL`, actual: r === undefined ? 'not measured' : `${r.toFixed(2)}x (${fmtRate(rate(id) as number)}/s vs ${fmtRate(rate(base) as number)}/s)`, met: r === undefined ? undefined : r <= 1.3 })
  }
  atLeast('round 2: rpush + lpop on a list emptied each time ≥ 400K ops/s', rate('list.emptied'), 4e5)
  memRatio('round 2: heap ≤ 1.5x raw data', 'mem.kvstore', 1.5, true)
  memRatio('round 2: heap ≤ 1.5x raw data, every key with a TTL', 'mem.kvstore-ttl', 1.5, true)

  // Memory budget (issue 17): the bench/eviction.bench.ts rows.
  const accounted = val('evict.accounted')
  out.push({ target: 'eviction: accounted memory ≤ the budget', actual: accounted === undefined ? 'not measured' : `${accounted.toFixed(3)}x`, met: accounted === undefined ? undefined : accounted <= 1 })
  const heapRatio = val('evict.heap')
  out.push({ target: 'eviction: heap (after GC) within 1.3x of the budget', actual: heapRatio === undefined ? 'not measured' : `${heapRatio.toFixed(2)}x`, met: heapRatio === undefined ? undefined : heapRatio <= 1.3 })
  const hit = byId.get('evict.hit')
  const exact = hit?.data?.exactLru
  out.push({
    target: 'eviction: allkeys-lru hit ratio within 5 points of exact LRU',
    actual: hit?.value === undefined || exact === undefined ? 'not measured' : `${hit.value.toFixed(2)} % vs ${exact.toFixed(2)} %`,
    met: hit?.value === undefined || exact === undefined ? undefined : Math.abs(hit.value - exact) <= 5,
  })
  for (const op of ['get', 'set'] as const) {
    const none = rate(`evict.${op}.none`)
    const budget = rate(`evict.${op}.budget`)
    const ratio = none !== undefined && budget !== undefined ? none / budget : undefined
    out.push({
      target: `eviction: ${op} with a budget within 1.2x of without`,
      actual: ratio === undefined ? 'not measured' : `${ratio.toFixed(2)}x (${fmtRate(budget as number)}/s vs ${fmtRate(none as number)}/s)`,
      met: ratio === undefined ? undefined : ratio <= 1.2,
    })
  }

  const peers = rows.filter((r) => r.group === 'peers' && r.opsPerSec !== undefined)
  const nd = versus(peers, KV_DIR, NON_DURABLE, PEERS)
  out.push({
    target: `ahead of lmdb, classic-level and NeDB on every non-durable workload (${KV_DIR})`,
    actual: nd.compared === 0 ? 'not measured' : nd.losses.length === 0 ? `ahead in all ${nd.compared} comparisons` : `behind in ${nd.losses.length} of ${nd.compared}: ${nd.losses.join('; ')}`,
    met: nd.compared === 0 ? undefined : nd.losses.length === 0,
  })
  const d = versus(peers, KV_ALWAYS, /^durable write, (16|1,000) /, ['lmdb', 'classic-level (sync)'])
  out.push({
    target: 'ahead of lmdb and classic-level on durable writes with 16 and 1,000 writers',
    actual: d.compared === 0 ? 'not measured' : d.losses.length === 0 ? `ahead in all ${d.compared} comparisons` : `behind in ${d.losses.length} of ${d.compared}: ${d.losses.join('; ')}`,
    met: d.compared === 0 ? undefined : d.losses.length === 0,
  })
  return out
}

/** Print the targets as a checklist. */
export function printTargets(results: TargetResult[], quick: boolean): void {
  console.log(`\n## targets${quick ? ' (--quick: small sizes, indicative only)' : ''}`)
  for (const t of results) console.log(`${t.met === undefined ? '[ ]  ' : t.met ? '[met]' : '[MISS]'} ${t.target}: ${t.actual}`)
}
