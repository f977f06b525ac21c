// Heap per entry, measured in a fresh child process per engine (bench/memory-probe.ts).
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** What one probe run reports. */
export interface MemoryProbe {
  engine: string
  n: number
  heapBytesPerEntry: number
  rawBytesPerEntry: number
  ratioToRaw: number
}

const probe = fileURLToPath(new URL('../memory-probe.ts', import.meta.url))

/** Run the probe for `engine` at `n` entries in a new `node --expose-gc` process. */
export function probeMemory(engine: string, n: number): MemoryProbe {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', probe, engine, String(n)], { encoding: 'utf8', maxBuffer: 1 << 20 })
  return JSON.parse(out) as MemoryProbe
}
