// Child process of the follower crash tests (followers.test.ts): the writer of a directory
// that follower-child.ts processes follow. It writes, one after another:
//
// - one record setting `a = b = n` and `w = "<cycle>:<n>"` (a batch, a transaction or an
//   atomic operation in turn),
// - then `rpush('l', "<cycle>:<n>")` as a record of its own (trimmed to its last 50 now and then),
//
// with `compact()` every `compactEvery` rounds and `load(file)` of the next `loads` file
// every `loadEvery` rounds (a load file holds its own consistent a, b, w and l, written by
// the parent: see `writeLoadFile` in followers.test.ts). It reports each step as a JSON line
// on stdout, *before* the write (`issue`: the state may exist from now on) and after it
// (`ack`). On `{ cmd: 'finish' }` (stdin) it writes a final marker, reports its whole state
// and closes; otherwise it runs until it is killed. With `rounds`, it pauses after that many
// rounds until `{ cmd: 'resume', rounds }` allows more (or `finish`).
//
// `crash: 'compact' | 'load'` SIGKILLs the process itself at the moment that compaction
// (or load) is about to rename its new snapshot into place: the WAL has rotated, the
// snapshot is not there yet. That leaves a sealed segment next to a newer one (compact) or
// the empty segment a crashed load leaves (load).
//
// Every line also goes to `<log>` with a synchronous write before the step it announces:
// stdout is asynchronous here, and what is still queued when the process is killed is lost,
// while the log holds every `issue` made before a write started, even after a SIGKILL.
//
// argv: <dir> <config JSON> <log>
import { openSync, writeSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { Store, type SyncPolicy } from '../../src/index.js'
import type { Fs } from '../../src/fs/fs.js'
import { nodeFs } from '../../src/fs/node-fs.js'

interface Config {
  cycle: number
  sync: SyncPolicy
  /** Compact every this many rounds (0: never). */
  compactEvery: number
  /** Files to load, in turn, every `loadEvery` rounds. */
  loads: string[]
  loadEvery: number
  /** Stop after this many rounds and wait for a command (0: no limit). */
  rounds: number
  /** Kill this process when the n-th compaction or load (`crashOn`, from 1) renames its snapshot. */
  crash?: 'compact' | 'load'
  crashOn?: number
  waitForGo?: boolean
}

const [dir, configArg, logPath] = process.argv.slice(2)
const config = JSON.parse(configArg as string) as Config
const log = openSync(logPath as string, 'a')

function say(msg: Record<string, unknown>): void {
  const line = `${JSON.stringify(msg)}\n`
  writeSync(log, line)
  process.stdout.write(line)
}

/** `"<label>:<n>"` → n. */
function numberOf(tag: unknown): number | undefined {
  if (typeof tag !== 'string') return undefined
  const n = Number(tag.slice(tag.lastIndexOf(':') + 1))
  return Number.isSafeInteger(n) ? n : undefined
}

// The real file system, except that the chosen snapshot rename kills the process first.
let armed = false
const fs: Fs = new Proxy(nodeFs, {
  get(target, prop, receiver) {
    if (prop === 'rename') {
      return (from: string, to: string) => {
        if (armed && /snap-\d+\.(kvs|json)$/.test(to)) process.kill(process.pid, 'SIGKILL')
        return target.rename(from, to)
      }
    }
    const v = Reflect.get(target, prop, receiver) as unknown
    return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v
  },
})

let finishing = false
let finished = false
let limit = config.rounds
let onGo: (() => void) | undefined
const go = new Promise<void>((resolve) => (onGo = resolve))
const rl = createInterface({ input: process.stdin })
let wake: (() => void) | undefined
rl.on('line', (line) => {
  const msg = JSON.parse(line) as { cmd: string; rounds?: number }
  if (msg.cmd === 'go') onGo?.()
  if (msg.cmd === 'finish') finishing = true
  if (msg.cmd === 'resume') limit += msg.rounds ?? 0
  wake?.()
})
rl.on('close', () => {
  // The parent is gone.
  if (!finished) process.exit(0)
})
// With `waitForGo` the store opens only on `{ cmd: 'go' }`: the parent starts this process
// (seconds on a loaded machine) ahead of time, so a restart after a kill is immediate.
if (config.waitForGo) {
  say({ t: 'spawned' })
  await go
}

const store = await Store.open<unknown>({ dir: dir as string, sync: config.sync, fs, expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0 })

// Where the previous writer stopped. It may have been killed between the record setting a
// and its list push: push the missing item first, so the list ends at a again.
let n = (await store.get('a')) as number | undefined ?? 0
if ((await store.get('b')) !== n && n !== 0) say({ t: 'violation', msg: `recovered a torn record: a=${n} b=${String(await store.get('b'))}` })
const list = await store.lrange('l')
const lastN = numberOf(list.at(-1)) ?? 0
if (n > 0 && lastN < n) {
  const tag = `${config.cycle}:${n}`
  say({ t: 'issue', tag, list: true })
  await store.rpush('l', tag)
}
say({ t: 'start', cycle: config.cycle, a: n, listN: lastN, w: await store.get('w'), seq: store.seq })

async function writeRound(round: number): Promise<void> {
  n++
  const tag = `${config.cycle}:${n}`
  say({ t: 'issue', tag })
  const kind = round % 3
  if (kind === 0) {
    await store.batch([
      { type: 'set', key: 'a', value: n },
      { type: 'set', key: 'b', value: n },
      { type: 'set', key: 'w', value: tag },
    ])
  } else if (kind === 1) {
    await store.transaction((tx) => {
      tx.set('a', n)
      tx.set('b', n)
      tx.set('w', tag)
    })
  } else {
    const r = await store.atomic().set('a', n).set('b', n).set('w', tag).commit()
    if (!r.ok) say({ t: 'violation', msg: `atomic commit failed: ${r.failed.join(',')}` })
  }
  say({ t: 'ack', tag, a: n, seq: store.seq })
  say({ t: 'issue', tag, list: true })
  await store.rpush('l', tag)
  if (round % 25 === 24) await store.ltrim('l', -50, -1)
  say({ t: 'ack', tag, list: true, seq: store.seq })
}

let compactions = 0
let loads = 0
for (let round = 0; !finishing; round++) {
  if (limit > 0 && round >= limit) {
    say({ t: 'paused', seq: store.seq, a: n })
    while (!finishing && round >= limit) await new Promise<void>((r) => (wake = r))
    if (finishing) break
  }
  await writeRound(round)
  if (config.compactEvery > 0 && round % config.compactEvery === config.compactEvery - 1) {
    compactions++
    armed = config.crash === 'compact' && compactions === (config.crashOn ?? 1)
    if (armed) say({ t: 'crashing', in: 'compact', seq: store.seq })
    const r = await store.compact()
    say({ t: 'compact', seq: r.seq })
  }
  if (config.loads.length > 0 && config.loadEvery > 0 && round % config.loadEvery === config.loadEvery - 1) {
    const file = config.loads[loads % config.loads.length] as string
    loads++
    armed = config.crash === 'load' && loads === (config.crashOn ?? 1)
    if (armed) say({ t: 'crashing', in: 'load', file, seq: store.seq })
    else say({ t: 'loading', file })
    await store.load(file)
    n = (await store.get('a')) as number
    say({ t: 'load', file, a: n, w: await store.get('w'), seq: store.seq })
  }
}

// The final marker: one more record, then the whole state, then close.
n++
const tag = `${config.cycle}:${n}`
say({ t: 'issue', tag })
await store.batch([
  { type: 'set', key: 'a', value: n },
  { type: 'set', key: 'b', value: n },
  { type: 'set', key: 'w', value: tag },
  { type: 'set', key: 'done', value: config.cycle },
])
say({ t: 'ack', tag, a: n, seq: store.seq })
const state: unknown[] = []
for (const key of (await store.keys()).sort()) {
  const type = await store.type(key)
  const value = type === 'list' ? await store.lrange(key) : type === 'hash' ? [...(await store.hgetall(key))] : await store.get(key)
  state.push([key, type, value, await store.version(key)])
}
const seq = store.seq
await store.close()
say({ t: 'final', seq, dump: state })
// Exit once stdout is written out (process.exit could drop what is still queued).
finished = true
rl.close()
process.stdin.destroy()
