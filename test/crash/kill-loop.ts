// kill -9 harness: a child process writes and prints each acknowledged write; the
// parent kills it at a random moment, reopens the directory and checks that every
// acknowledged write is there with its value, that the writes of each cycle that
// survived form a prefix of the order they were issued in, and that batches are
// all-or-nothing. `npm run crash-test` runs 1,000 cycles; the test suite runs 30.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Store, type SyncPolicy } from '../../src/index.js'
import { runUntilKilled } from './run-until-killed.js'

const CHILD = fileURLToPath(new URL('./writer-child.ts', import.meta.url))

function valueOf(cycle: number, i: number): string {
  return `v${cycle}-${i}-${'x'.repeat(i % 97)}`
}

/** Figures from a harness run. */
export interface KillLoopReport {
  cycles: number
  ackedWrites: number
  lost: number
  /** Writes present beyond the acknowledged ones (issued, not yet acked when killed): allowed. */
  unackedSurvivors: number
  violations: string[]
  tornTailsRepaired: number
  compactions: number
  seconds: number
}

function runChild(dir: string, cycle: number, sync: SyncPolicy, compactBytes: number, killAfterMs: number): Promise<number[]> {
  return runUntilKilled(CHILD, [dir, String(cycle), sync, String(compactBytes)], killAfterMs)
}

/** Run `cycles` kill/reopen/verify cycles in a fresh directory. */
export async function runKillLoop(options: { cycles: number; sync?: SyncPolicy; seed?: number; log?: (s: string) => void }): Promise<KillLoopReport> {
  const dir = mkdtempSync(join(tmpdir(), 'kvstore-kill-'))
  const sync = options.sync ?? 'always'
  let seed = options.seed ?? 1
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
  const report: KillLoopReport = { cycles: 0, ackedWrites: 0, lost: 0, unackedSurvivors: 0, violations: [], tornTailsRepaired: 0, compactions: 0, seconds: 0 }
  const started = Date.now()
  // Oracle: for each finished cycle, the highest acknowledged index.
  const ackedUpTo: number[] = []
  try {
    for (let cycle = 0; cycle < options.cycles; cycle++) {
      // Small compaction threshold on some cycles, so kills also land mid-compaction.
      const compactBytes = cycle % 3 === 0 ? 32 * 1024 : 0
      const acked = await runChild(dir, cycle, sync, compactBytes, 20 + Math.floor(rand() * 250))
      const maxAcked = acked.length === 0 ? -1 : Math.max(...acked)
      report.ackedWrites += acked.length
      ackedUpTo.push(maxAcked)
      const store = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
      try {
        const rec = store.stats().recovery
        if (rec !== undefined && rec.truncatedTailBytes > 0) report.tornTailsRepaired++
        for (let c = 0; c <= cycle; c++) await verifyCycle(store, c, ackedUpTo[c] as number, c === cycle, report)
        if (cycle % 3 === 0) report.compactions++
      } finally {
        await store.close()
      }
      report.cycles++
      if (options.log && (cycle + 1) % 50 === 0) options.log(`${cycle + 1} cycles, ${report.ackedWrites} acked, ${report.lost} lost`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  report.seconds = (Date.now() - started) / 1000
  return report
}

async function verifyCycle(store: Store<string>, cycle: number, maxAcked: number, fresh: boolean, report: KillLoopReport): Promise<void> {
  const prefix = `c${String(cycle).padStart(5, '0')}-`
  const present = new Map<string, string>()
  for await (const [k, v] of store.scan({ prefix })) present.set(k, v)
  let i = 0
  for (; ; i++) {
    const key = `${prefix}${String(i).padStart(7, '0')}`
    const v = present.get(key)
    if (v === undefined) break
    if (v !== valueOf(cycle, i)) report.violations.push(`${key}: wrong value`)
    if (i % 5 === 4) {
      const b1 = present.get(`${key}-b1`)
      const b2 = present.get(`${key}-b2`)
      if (b1 !== v || b2 !== v) report.violations.push(`${key}: batch torn`)
    }
  }
  const survived = i // writes 0..i-1 are present
  if (survived <= maxAcked) {
    report.lost += maxAcked + 1 - survived
    report.violations.push(`cycle ${cycle}: acked up to ${maxAcked}, only ${survived} survived`)
  }
  // Prefix: nothing beyond the first gap.
  const expectedKeys = survived + Math.floor(survived / 5) * 2
  if (present.size !== expectedKeys) report.violations.push(`cycle ${cycle}: ${present.size} keys, expected ${expectedKeys} (not a prefix)`)
  if (fresh) report.unackedSurvivors += Math.max(0, survived - (maxAcked + 1))
}

// Run directly: `npm run crash-test [-- --cycles N --sync always|interval|never]`.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { cycles: { type: 'string', default: '1000' }, sync: { type: 'string', default: 'always' }, seed: { type: 'string', default: '1' } } })
  const report = await runKillLoop({
    cycles: Number(values.cycles),
    sync: values.sync as SyncPolicy,
    seed: Number(values.seed),
    log: (s) => console.error(s),
  })
  console.log(JSON.stringify(report))
  process.exit(report.violations.length === 0 && report.lost === 0 ? 0 : 1)
}
