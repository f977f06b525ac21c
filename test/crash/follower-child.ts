// Child process of the follower crash tests (followers.test.ts): a read-only follower of a
// directory that another process writes (follower-writer-child.ts). It reads in a loop and
// reports, as one JSON line on stdout each, what it saw; it checks what one read can
// check by itself, and the parent checks the rest against what the writer reported.
//
// The writer's records (see follower-writer-child.ts): `a`, `b` and `w` are written by one
// record each time (`a = b = n`, `w = "<label>:<n>"`), then `rpush('l', "<label>:<n>")` is
// a record of its own, so the list's numbers are consecutive and its last number is `a`
// or `a - 1` at every seq.
//
// argv: <dir> <name> <config JSON: { loop?: boolean, followIntervalMs?: number, waitForGo?: boolean }>
// stdin (JSON lines): { cmd: 'go' } | { cmd: 'converge', seq, timeoutMs } | { cmd: 'stats' } | { cmd: 'probe' } | { cmd: 'exit' }
// stdout (JSON lines): spawned | ready | open-error | obs | violation | read-error | follower-error | feed-error | dump | stats | probe | closed
import { createInterface } from 'node:readline'
import { isStoreError, Store } from '../../src/index.js'

const [dir, name, configArg] = process.argv.slice(2)
const config = JSON.parse(configArg ?? '{}') as { loop?: boolean; followIntervalMs?: number; waitForGo?: boolean }

function say(msg: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ from: name, ...msg })}\n`)
}

function errorInfo(err: unknown): { code: string; message: string } {
  return { code: isStoreError(err) ? err.code : 'NOT_A_STORE_ERROR', message: err instanceof Error ? err.message : String(err) }
}

/** `"<label>:<n>"` → [label, n]. */
function parseTag(tag: unknown): [string, number] | undefined {
  if (typeof tag !== 'string') return undefined
  const i = tag.lastIndexOf(':')
  const n = Number(tag.slice(i + 1))
  return i > 0 && Number.isSafeInteger(n) ? [tag.slice(0, i), n] : undefined
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

// Commands come in on stdin; with `waitForGo` the store opens only on `{ cmd: 'go' }`, so the
// parent can start this process (which takes seconds on a loaded machine) ahead of time.
let closed = false
let onGo: (() => void) | undefined
const go = new Promise<void>((resolve) => (onGo = resolve))
let handle: (msg: { cmd: string; seq?: number; timeoutMs?: number }) => void = () => undefined
const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const msg = JSON.parse(line) as { cmd: string; seq?: number; timeoutMs?: number }
  if (msg.cmd === 'go') onGo?.()
  else handle(msg)
})
// The parent is gone: nothing reads what this process says any more.
rl.on('close', () => {
  if (!closed) process.exit(0)
})
if (config.waitForGo) {
  say({ t: 'spawned' })
  await go
}

let store: Store<unknown>
try {
  store = await Store.open({ dir: dir as string, readOnly: true, expirySweepIntervalMs: 0, ...(config.followIntervalMs ? { followIntervalMs: config.followIntervalMs } : {}) })
} catch (err) {
  say({ t: 'open-error', ...errorInfo(err) })
  // Exit once that line is written out.
  await new Promise((resolve) => process.stdout.write('', resolve))
  process.exit(0)
}

// A follower refuses writes, and the refusal changes nothing.
try {
  await store.set('probe-write', 1)
  say({ t: 'violation', msg: 'a write on a follower resolved' })
} catch (err) {
  if (!isStoreError(err) || err.code !== 'KV_READ_ONLY') say({ t: 'violation', msg: `a write on a follower failed with ${errorInfo(err).code}, not KV_READ_ONLY` })
}
say({ t: 'ready', seq: store.seq, stats: store.stats().follower })

// Watchers on a follower hear a `clear` whenever it rebuilt its state from a snapshot.
let clears = 0
const feed = store.watch({ highWaterMark: 1_000_000 })
const watching = (async () => {
  try {
    for await (const change of feed) if (change.type === 'clear') clears++
  } catch (err) {
    say({ t: 'feed-error', ...errorInfo(err) })
  }
})()

// ---------------------------------------------------------------- the read loop

let stopping = false
let lastSeq = store.seq
let lastA = -1
let lastListN = -1
let lastReported = ''
let reads = 0
let conflicts = 0
let lastError: string | undefined

/** One point-in-time read of a, b, w, three ways in turn. */
async function readAbw(i: number): Promise<{ a: unknown; b: unknown; w: unknown; how: string } | undefined> {
  if (i % 3 === 0) {
    const [a, b, w] = await store.getMany(['a', 'b', 'w'])
    return { a, b, w, how: 'getMany' }
  }
  if (i % 3 === 1) {
    const seen = new Map<string, unknown>()
    for await (const [k, v] of store.scan()) seen.set(k, v)
    return { a: seen.get('a'), b: seen.get('b'), w: seen.get('w'), how: 'scan' }
  }
  try {
    return await store.transaction(async (tx) => ({ a: await tx.get('a'), b: await tx.get('b'), w: await tx.get('w'), how: 'transaction' }))
  } catch (err) {
    // A read-only transaction conflicts when a record was applied while it ran: allowed.
    if (isStoreError(err) && err.code === 'KV_CONFLICT') {
      conflicts++
      return undefined
    }
    throw err
  }
}

function checkList(list: unknown[], where: string): number | undefined {
  let prev: number | undefined
  for (const item of list) {
    const tag = parseTag(item)
    if (tag === undefined) {
      say({ t: 'violation', msg: `${where}: list item ${JSON.stringify(item)} is not a tag` })
      return undefined
    }
    if (prev !== undefined && tag[1] !== prev + 1) say({ t: 'violation', msg: `${where}: list not consecutive: ${prev} then ${tag[1]}` })
    prev = tag[1]
  }
  return prev
}

async function readOnce(i: number): Promise<void> {
  const seqBefore = store.seq
  if (seqBefore < lastSeq) say({ t: 'violation', msg: `seq went back from ${lastSeq} to ${seqBefore}` })
  lastSeq = Math.max(lastSeq, seqBefore)
  const listFirst = i % 2 === 0
  let list: unknown[] | undefined
  if (listFirst) list = await store.lrange('l')
  const abw = await readAbw(i)
  if (!listFirst) list = await store.lrange('l')
  reads++
  const listTags = (list ?? []).map(String)
  const listN = checkList(list ?? [], `read ${i}`)
  if (abw === undefined) return
  const { a, b, w, how } = abw
  if (a === undefined && b === undefined && w === undefined) {
    if (lastA >= 0) say({ t: 'violation', msg: `${how}: a, b and w gone after a = ${lastA}` })
    return
  }
  const tag = parseTag(w)
  if (typeof a !== 'number' || a !== b || tag === undefined || tag[1] !== a) {
    say({ t: 'violation', msg: `${how}: torn record: a=${JSON.stringify(a)} b=${JSON.stringify(b)} w=${JSON.stringify(w)}` })
    return
  }
  if (a < lastA) say({ t: 'violation', msg: `${how}: a went back from ${lastA} to ${a}` })
  lastA = Math.max(lastA, a)
  if (listN !== undefined) {
    if (listN < lastListN) say({ t: 'violation', msg: `list's last number went back from ${lastListN} to ${listN}` })
    lastListN = Math.max(lastListN, listN)
    // The list is pushed right after the record setting a: read first it is at most a; read after, at least a - 1.
    if (listFirst && listN > a) say({ t: 'violation', msg: `list read first ends at ${listN}, a read after is ${a}` })
    if (!listFirst && listN < a - 1) say({ t: 'violation', msg: `a read first is ${a}, list read after ends at ${listN}` })
  }
  const key = `${String(w)}|${listTags.at(-1) ?? ''}`
  if (key !== lastReported) {
    lastReported = key
    say({ t: 'obs', w, a, seq: seqBefore, list: listTags.slice(-3), how })
  }
}

async function loop(): Promise<void> {
  for (let i = 0; !stopping; i++) {
    try {
      await readOnce(i)
    } catch (err) {
      say({ t: 'read-error', ...errorInfo(err) })
    }
    const e = store.stats().follower?.error
    if (e !== undefined && e !== lastError) say({ t: 'follower-error', error: e })
    lastError = e
    // Let the follower's polls run (and leave CPU to the writer on a small machine).
    await sleep(2)
  }
}

/** Every key: type, value (lists whole), version. */
async function dump(): Promise<unknown[]> {
  const out: unknown[] = []
  for (const key of (await store.keys()).sort()) {
    const type = await store.type(key)
    const value = type === 'list' ? await store.lrange(key) : type === 'hash' ? [...(await store.hgetall(key))] : await store.get(key)
    out.push([key, type, value, await store.version(key)])
  }
  return out
}

const looping = config.loop !== false ? loop() : Promise.resolve()

handle = (msg) => {
  void (async () => {
    try {
      if (msg.cmd === 'converge') {
        await store.waitFor(msg.seq as number, { timeoutMs: msg.timeoutMs ?? 20_000 })
        say({ t: 'dump', seq: store.seq, dump: await dump(), stats: store.stats().follower, reads, conflicts, clears })
      } else if (msg.cmd === 'stats') {
        say({ t: 'stats', seq: store.seq, stats: store.stats().follower, clears })
      } else if (msg.cmd === 'probe') {
        // Look now (a refresh is a call: it reports damage found before it); then what stats say, and what the next two reads do.
        let refreshed: unknown
        try {
          refreshed = { ok: await store.refresh() }
        } catch (err) {
          refreshed = { err: errorInfo(err) }
        }
        const stats = store.stats().follower
        const reads2: unknown[] = []
        for (let k = 0; k < 2; k++) {
          try {
            reads2.push({ ok: await store.getMany(['a', 'b', 'w']) })
          } catch (err) {
            reads2.push({ err: errorInfo(err) })
          }
        }
        say({ t: 'probe', refreshed, seq: store.seq, stats, reads: reads2 })
      } else if (msg.cmd === 'exit') {
        stopping = true
        await looping
        await store.close()
        await watching
        say({ t: 'closed', reads, conflicts, clears })
        // Exit once stdout is written out (process.exit could drop what is still queued).
        closed = true
        rl.close()
        process.stdin.destroy()
      }
    } catch (err) {
      say({ t: 'command-error', cmd: msg.cmd, ...errorInfo(err) })
    }
  })()
}
