// Heap bytes per entry at n entries, in a fresh process (run with --expose-gc):
//   node --expose-gc --import tsx bench/memory-probe.ts <kvstore|kvstore-ttl|Map> <n>
import { Store } from '../src/index.js'
import { makeKeys } from './lib/data.js'

const [engine = 'kvstore', nArg = '1000000'] = process.argv.slice(2)
const n = Number(nArg)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

const keys = makeKeys(n, 61)
// Distinct value strings, as real data would be (one shared string would flatter everyone).
const values = keys.map((k) => `${k}:${'v'.repeat(100 - k.length - 1)}`.split('').join(''))
gc()
gc()
const before = process.memoryUsage().heapUsed
let holder: unknown
if (engine === 'Map') {
  const m = new Map<string, string>()
  for (let i = 0; i < n; i++) m.set(keys[i] as string, values[i] as string)
  holder = m
} else {
  const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const ttl = engine === 'kvstore-ttl' ? { ttl: 3_600_000 } : undefined
  for (let i = 0; i < n; i++) await s.set(keys[i] as string, values[i] as string, ttl)
  holder = s
}
gc()
gc()
const after = process.memoryUsage().heapUsed
// Keys and values exist before the measurement (the caller's data): what is counted is
// the structure's own overhead plus nothing else; raw data size is reported beside it.
const structureBytes = after - before
const rawBytes = n * (16 + 100)
// Heap bytes of the strings themselves: V8 one-byte strings, 16-byte header, 8-byte aligned.
const stringBytes = n * (Math.ceil((16 + 16) / 8) * 8 + Math.ceil((16 + 100) / 8) * 8)
process.stdout.write(
  `${JSON.stringify({ engine, n, structureBytesPerEntry: structureBytes / n, stringBytesPerEntry: stringBytes / n, totalBytesPerEntry: (structureBytes + stringBytes) / n, rawBytesPerEntry: rawBytes / n, ratioToRaw: (structureBytes + stringBytes) / rawBytes })}\n`,
)
void holder
