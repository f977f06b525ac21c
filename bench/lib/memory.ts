// Heap and RSS per entry, measured in a fresh child process per engine (bench/memory-probe.ts).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** What one probe run reports. */
export interface MemoryProbe {
  engine: string
  n: number
  heapBytesPerEntry: number
  /** Growth of the process's resident set, per entry. */
  rssBytesPerEntry: number
  rawBytesPerEntry: number
  ratioToRaw: number
  rssRatioToRaw: number
}

const probe = fileURLToPath(new URL('../memory-probe.ts', import.meta.url))

/** Run the probe for `engine` at `n` entries in a new `node --expose-gc` process; on-disk engines write to `dir`. */
export function probeMemory(engine: string, n: number, dir?: string): MemoryProbe {
  const args = ['--expose-gc', '--import', 'tsx', probe, engine, String(n), ...(dir === undefined ? [] : [dir])]
  const out = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out) as MemoryProbe
}
