// kill -9 while large batches and transactions commit: after every crash each batch is
// all there or all absent, the surviving batches are exactly the first ones issued,
// and every acknowledged batch survived.
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { tmpDir } from '../helpers/tmp.js'
import { GROUP, UNIQUE, batchOf, groupKey, uniqueKey, valueOf } from './batch-child.js'
import { runUntilKilled } from './run-until-killed.js'

const CHILD = fileURLToPath(new URL('./batch-child.ts', import.meta.url))
const CYCLES = 8

/** Run one child until SIGKILL, `killAfterMs` after it opened the store; resolves with the acknowledged batch numbers. */
function runChild(dir: string, cycle: number, compactBytes: number, killAfterMs: number): Promise<number[]> {
  return runUntilKilled(CHILD, [dir, String(cycle), String(compactBytes)], killAfterMs)
}

/**
 * Check the reopened store against what each cycle acknowledged. `survivors[c]` is
 * the number of batches of cycle `c` found at its first check; later checks must
 * find exactly as many. Returns violations (empty when all is well).
 */
async function verify(store: Store<string>, ackedUpTo: readonly number[], survivors: number[]): Promise<string[]> {
  const violations: string[] = []
  const counts = new Map<string, number>()
  let uniqueKeys = 0
  for await (const [key, value] of store.scan({ prefix: 'u:' })) {
    const [cycle, n] = batchOf(value)
    const j = Number(key.slice(key.lastIndexOf(':') + 1))
    if (key !== uniqueKey(cycle, n, j) || value !== valueOf('u', cycle, n, j)) violations.push(`${key}: wrong value`)
    counts.set(`${cycle}:${n}`, (counts.get(`${cycle}:${n}`) ?? 0) + 1)
    uniqueKeys++
  }
  let last: [number, number] | undefined
  let expectedKeys = 0
  for (let c = 0; c < ackedUpTo.length; c++) {
    let k = 0
    while (counts.has(`${c}:${k}`)) k++
    for (let n = 0; n < k; n++) {
      const got = counts.get(`${c}:${n}`) as number
      if (got !== UNIQUE) violations.push(`cycle ${c} batch ${n}: torn, ${got} of ${UNIQUE} keys`)
    }
    expectedKeys += k * UNIQUE
    const acked = ackedUpTo[c] as number
    if (k <= acked) violations.push(`cycle ${c}: batches up to ${acked} acknowledged, only ${k} survived`)
    // Writes are sequential: at most the one batch in flight beyond the last ack.
    if (k > acked + 2) violations.push(`cycle ${c}: ${k} batches survived, only ${acked + 1} acknowledged`)
    const earlier = survivors[c]
    if (earlier === undefined) survivors[c] = k
    else if (earlier !== k) violations.push(`cycle ${c}: ${earlier} batches survived the crash, ${k} now`)
    if (k > 0) last = [c, k - 1]
  }
  if (uniqueKeys !== expectedKeys) violations.push(`${uniqueKeys} unique keys, expected ${expectedKeys}: a gap or a stray batch`)
  // The shared keys all come from the last surviving batch, never a mix.
  const group: string[] = []
  for await (const [key, value] of store.scan({ prefix: 'g:' })) {
    const j = group.length
    if (last === undefined || key !== groupKey(j) || value !== valueOf('g', last[0], last[1], j)) {
      violations.push(`${key}: from batch ${batchOf(value).join('/')}, expected ${last?.join('/') ?? 'none'}`)
    }
    group.push(key)
  }
  if (group.length !== (last === undefined ? 0 : GROUP)) violations.push(`${group.length} shared keys, expected ${last === undefined ? 0 : GROUP}`)
  return violations
}

describe('batch atomicity under kill -9', () => {
  it('keeps every batch and transaction all or nothing, and every acknowledged one, over 8 kill/reopen cycles', async () => {
    const dir = join(tmpDir('kvstore-batch-kill-'), 'db')
    let seed = 12345
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed / 0x7fffffff
    }
    const ackedUpTo: number[] = []
    const survivors: number[] = []
    let totalAcked = 0
    let cut = 0
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Odd cycles compact often, so some kills land mid-compaction.
      const compactBytes = cycle % 2 === 1 ? 1024 * 1024 : 8 * 1024 * 1024
      const acked = await runChild(dir, cycle, compactBytes, 10 + Math.floor(rand() * 140))
      expect(acked).toEqual(acked.map((_, i) => i)) // acknowledged in order, no gaps
      totalAcked += acked.length
      ackedUpTo.push(acked.length - 1)
      const store = await Store.open<string>({ dir, expirySweepIntervalMs: 0 })
      try {
        if ((store.stats().recovery?.truncatedTailBytes ?? 0) > 0) cut++
        expect(await verify(store, ackedUpTo, survivors)).toEqual([])
      } finally {
        await store.close()
      }
    }
    expect(totalAcked).toBeGreaterThan(CYCLES) // the kills really landed mid-stream
    console.log(JSON.stringify({ cycles: CYCLES, totalAcked, tornTailsCut: cut }))
  }, 60_000)
})
