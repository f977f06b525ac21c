// Child process of the kill -9 harness: writes forever and prints one line per
// acknowledged write, only after the write's promise resolved. The parent kills it
// at a random moment and checks that every acknowledged write survived.
//
// argv: <dir> <cycle> <sync> <compactThresholdBytes>
import { Store, type SyncPolicy } from '../../src/index.js'

const [dir, cycleArg, syncArg, compactArg] = process.argv.slice(2)
const cycle = Number(cycleArg)
const sync = (syncArg ?? 'always') as SyncPolicy
const store = await Store.open<string>({ dir: dir as string, sync, compactThresholdBytes: Number(compactArg ?? 0) })

/** Value for write `i` of `cycle`: deterministic, so the parent can check it exactly. */
export function valueOf(cycle: number, i: number): string {
  return `v${cycle}-${i}-${'x'.repeat(i % 97)}`
}

const IN_FLIGHT = 16
let next = 0
function issue(): void {
  const i = next++
  const key = `c${String(cycle).padStart(5, '0')}-${String(i).padStart(7, '0')}`
  // Every 5th write is a 3-key batch: all three or none may survive.
  const write =
    i % 5 === 4
      ? store.batch([
          { type: 'set', key, value: valueOf(cycle, i) },
          { type: 'set', key: `${key}-b1`, value: valueOf(cycle, i) },
          { type: 'set', key: `${key}-b2`, value: valueOf(cycle, i) },
        ])
      : store.set(key, valueOf(cycle, i))
  write.then(
    () => {
      process.stdout.write(`${i}\n`)
      issue()
    },
    (err: unknown) => {
      process.stderr.write(`write ${i} failed: ${String(err)}\n`)
      process.exit(1)
    },
  )
}
process.stdout.write('ready\n')
for (let k = 0; k < IN_FLIGHT; k++) issue()
