// Heap bytes per entry at n entries, in a fresh process (run with --expose-gc):
//   node --expose-gc --import tsx bench/memory-probe.ts <kvstore|kvstore-ttl|Map> <n>
// Keys (16 bytes) and values (100 bytes, distinct strings) are made and handed over, then
// every other reference is dropped, so the figure is the structure plus the data it holds.
import { Store } from '../src/index.js'
import { makeKeys } from './lib/data.js'

const [engine = 'kvstore', nArg = '1000000'] = process.argv.slice(2)
const n = Number(nArg)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function heap(): number {
  gc?.()
  gc?.()
  return process.memoryUsage().heapUsed
}

/** A distinct, flat 100-character value per key (a shared value would hide its cost). */
function valueFor(k: string): string {
  return `${k}:${'v'.repeat(83)}`.split('').join('')
}

async function build(): Promise<unknown> {
  const keys = makeKeys(n, 61)
  if (engine === 'Map') {
    const m = new Map<string, string>()
    for (const k of keys) m.set(k, valueFor(k))
    return m
  }
  const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const ttl = engine === 'kvstore-ttl' ? { ttl: 3_600_000 } : undefined
  for (const k of keys) await s.set(k, valueFor(k), ttl)
  await s.keys('none*') // settle: new keys sorted into the chunks
  return s
}

const before = heap()
const holder = await build()
const after = heap()
const rawBytesPerEntry = 16 + 100
const total = after - before
process.stdout.write(`${JSON.stringify({ engine, n, heapBytesPerEntry: total / n, rawBytesPerEntry, ratioToRaw: total / n / rawBytesPerEntry })}\n`)
void holder
