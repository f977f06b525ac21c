// Memory per entry at n entries, in a fresh process (run with --expose-gc):
//   node --expose-gc --import tsx bench/memory-probe.ts <engine> <n> [dir]
// engine: kvstore | kvstore-ttl | Map | lmdb | classic-level (the last two need a dir).
// Keys (16 bytes) and values (100 bytes, distinct strings) are made first, then the engine
// is built and every other reference dropped, so the figures are the structure plus the data
// it holds: the JS heap growth, and the process's resident set (RSS) growth. The on-disk
// engines keep their data in native memory and files, so for them only RSS says anything:
// lmdb's RSS counts the pages of its memory map that were touched (page cache shared with
// the file, which the OS can drop), classic-level's its memtable, block cache and buffers.
import { ClassicLevel } from 'classic-level'
import { open as openLmdb } from 'lmdb'
import { Store } from '../src/index.js'
import { makeKeys } from './lib/data.js'

const [engine = 'kvstore', nArg = '1000000', dir] = process.argv.slice(2)
const n = Number(nArg)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
const BATCH = 10_000

function settle(): { heap: number; rss: number } {
  gc?.()
  gc?.()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}

/** A distinct, flat 100-character value per key (a shared value would hide its cost). */
function valueFor(k: string): string {
  return `${k}:${'v'.repeat(83)}`.split('').join('')
}

function needDir(): string {
  if (dir === undefined) throw new Error(`${engine} needs a directory argument`)
  return dir
}

async function build({ keys, values }: Input): Promise<unknown> {
  if (engine === 'Map') {
    const m = new Map<string, string>()
    for (let i = 0; i < n; i++) m.set(keys[i] as string, values[i] as string)
    return m
  }
  if (engine === 'lmdb') {
    const db = openLmdb<string, string>({ path: needDir(), compression: false, encoding: 'string', noSync: true })
    for (let i = 0; i < n; i += BATCH) {
      await db.transaction(() => {
        for (let j = i; j < Math.min(i + BATCH, n); j++) db.put(keys[j] as string, values[j] as string)
      })
    }
    return db
  }
  if (engine === 'classic-level') {
    const db = new ClassicLevel<string, string>(needDir(), { valueEncoding: 'utf8' })
    await db.open()
    for (let i = 0; i < n; i += BATCH) {
      const ops = []
      for (let j = i; j < Math.min(i + BATCH, n); j++) ops.push({ type: 'put' as const, key: keys[j] as string, value: values[j] as string })
      await db.batch(ops)
    }
    return db
  }
  if (engine !== 'kvstore' && engine !== 'kvstore-ttl') throw new Error(`unknown engine ${engine}`)
  const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
  const ttl = engine === 'kvstore-ttl' ? { ttl: 3_600_000 } : undefined
  for (let i = 0; i < n; i++) await s.set(keys[i] as string, values[i] as string, ttl)
  await s.keys('none*') // settle: new keys sorted into the chunks
  return s
}

interface Input {
  keys: string[]
  values: string[]
}

function makeInput(): Input {
  const keys = makeKeys(n, 61)
  return { keys, values: keys.map(valueFor) }
}

// The JS engines keep the very strings they are given, so the inputs are made inside the
// measured window and count; the on-disk engines copy them out, so theirs are made before
// the first reading and kept alive past the second.
const onDisk = engine === 'lmdb' || engine === 'classic-level'
const given = onDisk ? makeInput() : undefined
const before = settle()
const holder = await build(given ?? makeInput())
const after = settle()
const rawBytesPerEntry = 16 + 100
const heapBytesPerEntry = (after.heap - before.heap) / n
const rssBytesPerEntry = (after.rss - before.rss) / n
process.stdout.write(
  `${JSON.stringify({ engine, n, heapBytesPerEntry, rssBytesPerEntry, rawBytesPerEntry, ratioToRaw: heapBytesPerEntry / rawBytesPerEntry, rssRatioToRaw: rssBytesPerEntry / rawBytesPerEntry })}\n`,
)
void holder
void given
