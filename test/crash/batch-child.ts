// Child process of the batch-atomicity kill test: commits large multi-key writes one
// after another, alternating `store.batch` and `store.transaction`, and prints the
// batch number once its promise resolved (acknowledged = durable under sync 'always').
// The parent kills it with SIGKILL at a random moment.
//
// Every batch writes `UNIQUE` keys of its own (`u:<cycle>:<batch>:<j>`) and overwrites
// the `GROUP` shared keys (`g:<j>`), all with ~1 KiB values naming the batch: after a crash each batch's unique keys are all there or all absent, and the
// shared keys all name the same (last surviving) batch.
//
// argv: <dir> <cycle> <compactThresholdBytes>
import { fileURLToPath } from 'node:url'
import { Store } from '../../src/index.js'

export const UNIQUE = 20
export const GROUP = 180
const VALUE_BYTES = 1024

const pad = (n: number, w: number): string => String(n).padStart(w, '0')

/** Key of unique entry `j` of batch `n` in `cycle`. */
export function uniqueKey(cycle: number, n: number, j: number): string {
  return `u:${pad(cycle, 4)}:${pad(n, 6)}:${pad(j, 3)}`
}

/** Key of shared entry `j`. */
export function groupKey(j: number): string {
  return `g:${pad(j, 3)}`
}

/** Value written by batch `n` of `cycle` under its `j`-th key of `kind`: deterministic, ~1 KiB. */
export function valueOf(kind: 'u' | 'g', cycle: number, n: number, j: number): string {
  const head = `${kind}|${cycle}|${n}|${j}|`
  return head + '.'.repeat(VALUE_BYTES - head.length)
}

/** Cycle and batch named by a value written by {@link valueOf}. */
export function batchOf(value: string): [cycle: number, n: number] {
  const [, cycle, n] = value.split('|')
  return [Number(cycle), Number(n)]
}

async function main(): Promise<void> {
  const [dir, cycleArg, compactArg] = process.argv.slice(2)
  const cycle = Number(cycleArg)
  const store = await Store.open<string>({ dir: dir as string, sync: 'always', compactThresholdBytes: Number(compactArg ?? 0), expirySweepIntervalMs: 0 })
  process.stdout.write('ready\n')
  for (let n = 0; ; n++) {
    if (n % 2 === 0) {
      const ops: { type: 'set'; key: string; value: string }[] = []
      for (let j = 0; j < UNIQUE; j++) ops.push({ type: 'set', key: uniqueKey(cycle, n, j), value: valueOf('u', cycle, n, j) })
      for (let j = 0; j < GROUP; j++) ops.push({ type: 'set', key: groupKey(j), value: valueOf('g', cycle, n, j) })
      await store.batch(ops)
    } else {
      await store.transaction(async (tx) => {
        await tx.get(groupKey(0)) // a read, so commit has something to validate
        for (let j = 0; j < UNIQUE; j++) tx.set(uniqueKey(cycle, n, j), valueOf('u', cycle, n, j))
        for (let j = 0; j < GROUP; j++) tx.set(groupKey(j), valueOf('g', cycle, n, j))
      })
    }
    process.stdout.write(`${n}\n`)
  }
}

// Only when run as a process: the parent imports the key and value helpers.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`batch child failed: ${String(err)}\n`)
    process.exit(1)
  })
}
