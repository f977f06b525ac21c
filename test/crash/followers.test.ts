// Read-only followers against a writer in another process, with real processes and files:
// the writer is SIGKILLed and restarted, compacts and loads, or leaves damage behind, while
// followers (follower-child.ts) read in a loop and report what they saw. What the writer did
// (follower-writer-child.ts) is the oracle: a follower may only ever show a state the writer
// had, never a torn record, never less than it showed before, never a record that the
// writer's recovery cut; and it ends with exactly the writer's final state.
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { listSegments, segmentPath } from '../../src/wal/segments.js'
import { parentDeathPrefix, trackChild } from '../helpers/child-process.js'
import { tmpDir } from '../helpers/tmp.js'

const FOLLOWER = fileURLToPath(new URL('./follower-child.ts', import.meta.url))
const WRITER = fileURLToPath(new URL('./follower-writer-child.ts', import.meta.url))
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
/** Generous: a child start on a loaded 2-core machine takes seconds. */
const WAIT_MS = 20_000

type Msg = Record<string, unknown> & { t: string }

/** A child process speaking JSON lines on stdin/stdout. */
class Child {
  readonly messages: Msg[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined
  stderr = ''
  readonly #proc: ChildProcess
  readonly #listeners = new Set<() => void>()

  constructor(
    readonly name: string,
    script: string,
    args: string[],
  ) {
    const [cmd = process.execPath, ...pre] = [...parentDeathPrefix(), process.execPath, '--import', TSX, script]
    this.#proc = spawn(cmd, [...pre, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    trackChild(this.#proc)
    live.add(this)
    let buf = ''
    this.#proc.stdout?.setEncoding('utf8')
    this.#proc.stdout?.on('data', (chunk: string) => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          this.messages.push(JSON.parse(line) as Msg)
        } catch {
          this.messages.push({ t: 'garbage', line })
        }
      }
      for (const l of this.#listeners) l()
    })
    this.#proc.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()))
    // A child that is killed may not read its stdin any more.
    this.#proc.stdin?.on('error', () => undefined)
    this.exited = new Promise((resolve) => {
      this.#proc.on('exit', (code, signal) => {
        this.exitStatus = { code, signal }
        live.delete(this)
        resolve({ code, signal })
        for (const l of this.#listeners) l()
      })
    })
  }

  get pid(): number {
    return this.#proc.pid as number
  }

  send(msg: Record<string, unknown>): void {
    this.#proc.stdin?.write(`${JSON.stringify(msg)}\n`)
  }

  /** The first message at index `from` or later that `pred` accepts; rejects if the child exits first or after `timeoutMs`. */
  waitFor(pred: (m: Msg) => boolean, what: string, from = 0, timeoutMs = WAIT_MS): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (let i = from; i < this.messages.length; i++) {
          const m = this.messages[i] as Msg
          if (pred(m)) {
            done()
            resolve(m)
            return true
          }
        }
        if (this.exitStatus !== undefined) {
          done()
          reject(new Error(`${this.name} exited (${JSON.stringify(this.exitStatus)}) before ${what}; stderr: ${this.stderr}; last: ${JSON.stringify(this.messages.slice(-3))}`))
          return true
        }
        return false
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr}; last: ${JSON.stringify(this.messages.slice(-3))}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.#listeners.delete(listener)
      }
      const listener = (): void => void check()
      if (!check()) this.#listeners.add(listener)
    })
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitStatus === undefined) this.#proc.kill(sig)
  }

  async kill(): Promise<void> {
    if (this.exitStatus === undefined) {
      this.#proc.kill('SIGCONT') // a stopped child cannot die otherwise until continued
      this.#proc.kill('SIGKILL')
    }
    await this.exited
  }
}

const live = new Set<Child>()

afterEach(async () => {
  await Promise.all([...live].map((c) => c.kill()))
})

interface WriterConfig {
  cycle: number
  waitForGo?: boolean
  sync: 'always' | 'never'
  compactEvery?: number
  loads?: string[]
  loadEvery?: number
  rounds?: number
  crash?: 'compact' | 'load'
  crashOn?: number
}

/** A writer child; it logs every step to `<dir>-writer-<cycle>.log` too (see {@link writerLog}). */
function startWriter(dir: string, c: WriterConfig): Child {
  const config = { compactEvery: 0, loads: [], loadEvery: 0, rounds: 0, ...c }
  return new Child(`writer ${c.cycle}`, WRITER, [dir, JSON.stringify(config), `${dir}-writer-${c.cycle}.log`])
}

/** What writer `cycle` of `dir` did, from its log: complete also when it was killed, unlike its stdout. */
function writerLog(dir: string, cycle: number): Msg[] {
  return readFileSync(`${dir}-writer-${cycle}.log`, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Msg)
}

interface FollowerConfig {
  loop?: boolean
  waitForGo?: boolean
}

async function startFollower(dir: string, name: string, config: FollowerConfig = {}): Promise<Child> {
  const f = new Child(name, FOLLOWER, [dir, name, JSON.stringify(config)])
  await f.waitFor((m) => m.t === 'ready' || m.t === 'open-error', `${name} open`)
  return f
}

/** A follower process started ahead of time: it opens its store on {@link go}. */
function spawnFollower(dir: string, name: string, config: FollowerConfig = {}): Child {
  return new Child(name, FOLLOWER, [dir, name, JSON.stringify({ ...config, waitForGo: true })])
}

/** Let a child started with `waitForGo` open its store; resolves once it opened (or failed to). */
function go(c: Child): Promise<Msg> {
  const from = c.messages.length
  c.send({ cmd: 'go' })
  return c.waitFor((m) => m.t === 'ready' || m.t === 'open-error' || m.t === 'start', `${c.name} open`, from)
}

/** Tell a follower to wait for `seq`; resolves with its dump. */
async function converge(f: Child, seq: number): Promise<Msg> {
  const from = f.messages.length
  f.send({ cmd: 'converge', seq, timeoutMs: WAIT_MS })
  return f.waitFor((m) => m.t === 'dump' || m.t === 'command-error', `${f.name} converging to seq ${seq}`, from, WAIT_MS + 5_000)
}

/** A follower's stats and the `clear`s its watch feed heard. */
async function statsOf(f: Child): Promise<unknown> {
  const from = f.messages.length
  f.send({ cmd: 'stats' })
  const m = await f.waitFor((x) => x.t === 'stats', `${f.name} stats`, from)
  const { appliedSeq, resyncs, error } = m.stats as { appliedSeq: number; resyncs: number; error?: string }
  return { appliedSeq, resyncs, error, clears: m.clears }
}

async function stopFollower(f: Child): Promise<void> {
  const from = f.messages.length
  f.send({ cmd: 'exit' })
  await f.waitFor((m) => m.t === 'closed', `${f.name} close`, from)
  expect(await f.exited).toEqual({ code: 0, signal: null })
}

/** A snapshot file for `load()` with its own consistent state: a = b = n, w and the list ending at n, labelled `label`. */
async function writeLoadFile(path: string, label: string, n: number): Promise<void> {
  const s = await Store.open<unknown>({ expirySweepIntervalMs: 0 })
  const tag = (k: number): string => `${label}:${k}`
  await s.batch([
    { type: 'set', key: 'a', value: n },
    { type: 'set', key: 'b', value: n },
    { type: 'set', key: 'w', value: tag(n) },
    { type: 'set', key: 'from', value: label },
  ])
  await s.rpush('l', tag(n - 2), tag(n - 1), tag(n))
  await s.snapshot(path)
  await s.close()
}

function parseTag(tag: unknown): [string, number] {
  const s = String(tag)
  const i = s.lastIndexOf(':')
  return [s.slice(0, i), Number(s.slice(i + 1))]
}

/**
 * Check what followers reported against what writers `0 .. cycles - 1` of `dir` logged:
 * every tag shown was issued by a writer (or is in a file some writer loaded: `loaded` maps
 * its label to its n), and nothing shown while cycle `c` ran is beyond what the next writer
 * recovered. Returns the problems, with every violation the children reported themselves.
 */
function checkHistory(dir: string, cycles: number, followers: Child[], loaded: ReadonlyMap<string, number>): string[] {
  const problems: string[] = []
  const issued = new Set<string>()
  const starts = new Map<number, Msg>()
  for (let c = 0; c < cycles; c++) {
    for (const m of writerLog(dir, c)) {
      if (m.t === 'issue') issued.add(String(m.tag))
      if (m.t === 'start') starts.set(Number(m.cycle), m)
      if (m.t === 'violation') problems.push(`writer ${c}: ${JSON.stringify(m)}`)
    }
  }
  const started = [...starts.keys()].sort((x, y) => x - y)
  /** The first writer start after cycle `c`: it recovered everything cycle `c` left. */
  const nextStart = (c: number): Msg | undefined => {
    const next = started.find((x) => x > c)
    return next === undefined ? undefined : starts.get(next)
  }
  const known = (tag: string): boolean => {
    if (issued.has(tag)) return true
    const [label, n] = parseTag(tag)
    const file = loaded.get(label)
    return file !== undefined && n <= file && n >= file - 2
  }
  for (const f of followers) {
    for (const m of f.messages) {
      if (['violation', 'read-error', 'follower-error', 'feed-error', 'command-error', 'garbage'].includes(m.t)) {
        problems.push(`${f.name}: ${JSON.stringify(m)}`)
      }
      if (m.t !== 'obs') continue
      const tags = [String(m.w), ...(m.list as string[])]
      for (const tag of tags) if (!known(tag)) problems.push(`${f.name} showed ${tag}, which no writer wrote (${JSON.stringify(m)})`)
      const [label, n] = parseTag(m.w)
      if (/^\d+$/.test(label)) {
        // Shown while cycle `label` ran: the next writer recovered it (a record a follower applied is never cut).
        const next = nextStart(Number(label))
        if (next !== undefined && (n > Number(next.a) || Number(m.seq) > Number(next.seq))) {
          problems.push(`${f.name} showed ${String(m.w)} at seq ${String(m.seq)}, but the next writer recovered only a=${String(next.a)} seq ${String(next.seq)}`)
        }
      }
      const lastListed = (m.list as string[]).at(-1)
      const [listLabel, listN] = parseTag(lastListed)
      if (lastListed !== undefined && /^\d+$/.test(listLabel)) {
        const next = nextStart(Number(listLabel))
        if (next !== undefined && listN > Number(next.listN)) {
          problems.push(`${f.name} showed list item ${lastListed}, but the next writer recovered a list ending at ${String(next.listN)}`)
        }
      }
    }
  }
  return problems
}

function observations(f: Child): Msg[] {
  return f.messages.filter((m) => m.t === 'obs')
}

/** Every file in `dir` with its size and sha256. */
function listing(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const p = join(dir, name)
      return `${name} ${statSync(p).size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`
    })
}

/** Op code of a list push in a record payload (docs/FORMAT.md, "Store records"). */
const PUSH_OP = 5

/** Offsets and seqs of the whole records of a segment file. */
function recordsOf(bytes: Buffer): { offset: number; seq: number; len: number }[] {
  const out: { offset: number; seq: number; len: number }[] = []
  let off = 32
  while (off + 24 <= bytes.length) {
    const len = bytes.readUInt32LE(off + 4)
    const seq = bytes.readUInt32LE(off + 8) + bytes.readUInt32LE(off + 12) * 2 ** 32
    const frame = Math.ceil((24 + len) / 8) * 8
    if (len === 0 && seq === 0) break
    if (off + frame > bytes.length) break
    out.push({ offset: off, seq, len })
    off += frame
  }
  return out
}

/**
 * Append what a crash in the middle of an append leaves to the newest segment: the first
 * part of a record frame (a copy of the last record's, cut short) or a few bytes of garbage.
 * Only after a whole record, so that the segment header is complete. Returns false when
 * the newest segment holds no record.
 */
function tearTail(dir: string, rand: () => number): boolean {
  const path = segmentPath(dir, Math.max(...listSegments(nodeFs, dir)))
  const bytes = readFileSync(path)
  const last = recordsOf(bytes).at(-1)
  if (last === undefined) return false
  const frame = Math.ceil((24 + last.len) / 8) * 8
  const tail =
    rand() < 0.5
      ? bytes.subarray(last.offset, last.offset + 1 + Math.floor(rand() * (frame - 1)))
      : Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 60) }, () => 1 + Math.floor(rand() * 255)))
  appendFileSync(path, tail)
  return true
}

function rng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff
  }
}

type Outcome = { ok?: unknown; err?: { code: string; message: string } }

/**
 * The follower's first call after it found damage (the probe's refresh, or the read after
 * it when the refresh found it) rejects with KV_CORRUPT, once; the read after that serves
 * its last good state, which is whole.
 */
function expectReportedOnce(probe: Msg): void {
  const calls = [probe.refreshed, ...(probe.reads as unknown[])] as Outcome[]
  const failed = calls.filter((c) => c.err !== undefined)
  expect(failed.map((c) => c.err?.code)).toEqual(['KV_CORRUPT'])
  expect(calls.at(-1)?.err).toBeUndefined()
  const [a, b, w] = calls.at(-1)?.ok as [number, number, string]
  expect(a).toBe(b)
  expect(parseTag(w)[1]).toBe(a)
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('followers in other processes', () => {
  it('show only whole records, never go back and converge while the writer is SIGKILLed and restarted', async () => {
    const dir = join(tmpDir('kvstore-follow-kill-'), 'db')
    const rand = rng(4242)
    const started = Date.now()
    // sync 'never' on odd cycles; compaction every 7 rounds on some, every 23 on others, none on the rest.
    const configFor = (cycle: number): WriterConfig => ({ cycle, sync: cycle % 2 === 1 ? 'never' : 'always', compactEvery: [0, 7, 23][cycle % 3] as number })
    const writers = [startWriter(dir, configFor(0))]
    const followers = [spawnFollower(dir, 'f1'), spawnFollower(dir, 'f2')]
    // The next writer is always started ahead, so that it opens the directory right after the kill.
    let spare = startWriter(dir, { ...configFor(1), waitForGo: true })
    await (writers[0] as Child).waitFor((m) => m.t === 'ack', 'a first write')
    await Promise.all(followers.map(go))
    const CYCLES = 7
    const reports: unknown[] = []
    let tornTails = 0
    let cycle = 0
    for (; cycle < CYCLES && Date.now() - started < 30_000; cycle++) {
      const w = writers[cycle] as Child
      await w.waitFor((m) => m.t === 'ack', `cycle ${cycle} writing`)
      await sleep(100 + Math.floor(rand() * 400))
      await w.kill()
      expect(w.exitStatus?.signal).toBe('SIGKILL')
      // Every other kill also leaves the torn tail of an append cut short: followers must wait at it, and the restart cuts it.
      if (cycle % 2 === 0) tornTails += tearTail(dir, rand) ? 1 : 0
      void go(spare).catch(() => undefined)
      writers.push(spare)
      spare = startWriter(dir, { ...configFor(cycle + 2), waitForGo: true })
    }
    void spare.kill()
    const last = writers[cycle] as Child
    await last.waitFor((m) => m.t === 'ack', 'the last writer writing')
    await sleep(200)
    last.send({ cmd: 'finish' })
    const final = await last.waitFor((m) => m.t === 'final', 'the final state')
    expect(await last.exited).toEqual({ code: 0, signal: null })

    for (const f of followers) {
      expect(f.exitStatus, `${f.name} exited: ${f.stderr}`).toBeUndefined()
      const d = await converge(f, Number(final.seq))
      expect(d.t).toBe('dump')
      expect(d.seq).toBe(final.seq)
      expect(d.dump).toEqual(final.dump)
      expect((d.stats as { error?: string }).error).toBeUndefined()
      reports.push({ follower: f.name, states: observations(f).length, reads: d.reads, conflicts: d.conflicts, ...(d.stats as object) })
    }
    console.log(JSON.stringify({ cycles: cycle, tornTails, finalSeq: final.seq, followers: reports }))
    expect(tornTails).toBeGreaterThan(0)
    expect(readdirSync(dir).some((name) => name.includes('.broken-'))).toBe(true) // recovery cut them
    expect(checkHistory(dir, writers.length, followers, new Map())).toEqual([])
    for (const f of followers) {
      const obs = observations(f)
      // It followed along, not only at the end: states of several writer cycles.
      expect(new Set(obs.map((m) => parseTag(m.w)[0])).size, `${f.name} observed ${obs.length} states`).toBeGreaterThanOrEqual(2)
      await stopFollower(f)
    }
    const acks = writers.flatMap((_, c) => writerLog(dir, c).filter((m) => m.t === 'ack')).length
    expect(acks).toBeGreaterThan(cycle * 2) // the kills landed mid-stream
  }, 60_000)

  it('follow compactions and load()s, also a load the writer was killed in, showing only states the writer had', async () => {
    const root = tmpDir('kvstore-follow-load-')
    const dir = join(root, 'db')
    mkdirSync(dir)
    const labels = ['L0', 'L1', 'L2', 'L3']
    const files = labels.map((label) => join(root, `${label}.kvs`))
    const sizes = new Map(labels.map((label, i) => [label, (i + 1) * 100_000]))
    const opening = Promise.all([startFollower(dir, 'f1'), startFollower(dir, 'f2')])
    const reports: unknown[] = []
    // Cycle 0 loads L0 and L1, then is killed inside its load of L3 (the WAL rotated, the snapshot is not in place yet).
    const w0 = startWriter(dir, { cycle: 0, sync: 'never', compactEvery: 5, loads: [files[0], files[1], files[3]] as string[], loadEvery: 12, crash: 'load', crashOn: 3, waitForGo: true })
    // Cycle 1 recovers the state before that load, compacts and loads L2.
    const w1 = startWriter(dir, { cycle: 1, sync: 'always', compactEvery: 4, loads: [files[2] as string], loadEvery: 10, waitForGo: true })
    for (const [i, label] of labels.entries()) await writeLoadFile(files[i] as string, label, sizes.get(label) as number)
    const followers = await opening
    await go(w0)
    const crashing = await w0.waitFor((m) => m.t === 'crashing', 'the crash in load')
    expect((await w0.exited).signal).toBe('SIGKILL')
    // While no writer runs, followers keep the state the writer had: the half-done load is
    // not a state, and nothing changed, so nothing is rebuilt and watchers hear no `clear`.
    for (const f of followers) await converge(f, Number(crashing.seq))
    const quiet = await Promise.all(followers.map(statsOf))
    await sleep(1_000)
    expect(await Promise.all(followers.map(statsOf))).toEqual(quiet)
    const start1 = await go(w1)
    const lastAck0 = writerLog(dir, 0).filter((m) => m.t === 'ack' && m.a !== undefined).at(-1) as Msg
    expect(start1.a).toBe(lastAck0.a) // the load was not half-applied
    await w1.waitFor((m) => m.t === 'load', 'the load of L2')
    await w1.waitFor((m) => m.t === 'compact', 'a compaction after the load', w1.messages.findIndex((m) => m.t === 'load'))
    w1.send({ cmd: 'finish' })
    const final = await w1.waitFor((m) => m.t === 'final', 'the final state')
    expect(await w1.exited).toEqual({ code: 0, signal: null })

    for (const f of followers) {
      expect(f.exitStatus, `${f.name} exited: ${f.stderr}`).toBeUndefined()
      const d = await converge(f, Number(final.seq))
      expect(d.dump).toEqual(final.dump)
      const stats = d.stats as { error?: string; resyncs: number }
      expect(stats.error).toBeUndefined()
      expect(stats.resyncs).toBeGreaterThanOrEqual(3) // one per load at least
      reports.push({ follower: f.name, states: observations(f).length, reads: d.reads, conflicts: d.conflicts, clears: d.clears, ...stats })
    }
    console.log(JSON.stringify({ finalSeq: final.seq, followers: reports }))
    const loaded = new Map([...sizes].filter(([label]) => label !== 'L3'))
    expect(checkHistory(dir, 2, followers, loaded)).toEqual([])
    for (const f of followers) {
      expect(observations(f).some((m) => String(m.w).startsWith('L3:'))).toBe(false)
      await stopFollower(f)
    }
  }, 60_000)

  it('reports damage in a sealed segment it has not read yet, and changes no file', async () => {
    const dir = join(tmpDir('kvstore-follow-corrupt-'), 'db')
    // 20 rounds, a pause, then 20 more and a compaction that dies once the WAL has rotated:
    // segment 1 is then sealed (segment 2 exists), and the follower has not read its end.
    const w = startWriter(dir, { cycle: 0, sync: 'never', rounds: 20, compactEvery: 40, crash: 'compact', crashOn: 1 })
    const f = spawnFollower(dir, 'f1', { loop: false })
    const f2 = spawnFollower(dir, 'f2', { loop: false })
    const paused = await w.waitFor((m) => m.t === 'paused', 'the writer paused')
    await go(f)
    expect((await converge(f, Number(paused.seq))).seq).toBe(paused.seq)
    f.signal('SIGSTOP')
    w.send({ cmd: 'resume', rounds: 30 })
    await w.waitFor((m) => m.t === 'crashing', 'the crash in compaction')
    expect((await w.exited).signal).toBe('SIGKILL')
    const segs = listSegments(nodeFs, dir)
    expect(segs.length).toBe(2)
    const sealed = segmentPath(dir, segs[0] as number)
    const bytes = readFileSync(sealed)
    // A list push the follower has not read: its payload ends with the pushed tag's last digit.
    // Flipped to another digit, the record still decodes: only its checksum tells.
    const pushes = recordsOf(bytes).filter((r) => r.seq > Number(paused.seq) + 2 && bytes[r.offset + 24 + 4] === PUSH_OP)
    expect(pushes.length).toBeGreaterThan(5)
    const victim = pushes[Math.floor(pushes.length / 2)] as { offset: number; seq: number; len: number }
    const last = victim.offset + 24 + victim.len - 1
    expect(String.fromCharCode(bytes[last] as number)).toMatch(/\d/)
    bytes[last] = (bytes[last] as number) ^ 0x01
    writeFileSync(sealed, bytes)
    const before = listing(dir)

    f.signal('SIGCONT')
    const from = f.messages.length
    f.send({ cmd: 'probe' })
    const probe = await f.waitFor((m) => m.t === 'probe', 'the probe', from)
    // It applied every record before the damage, then stopped there and said where.
    expect(probe.seq).toBe(victim.seq - 1)
    expect((probe.stats as { error?: string }).error).toMatch(new RegExp(`wal-0*${segs[0]}\\.log at offset ${victim.offset}\\b`))
    expectReportedOnce(probe)
    expect(listing(dir)).toEqual(before)

    // A follower opened now cannot open at all, and changes nothing either.
    const openError = await go(f2)
    expect(openError.t).toBe('open-error')
    expect(openError.code).toBe('KV_CORRUPT')
    expect(String(openError.message)).toContain(`offset ${victim.offset}`)
    expect(listing(dir)).toEqual(before)
    await stopFollower(f)
    expect(listing(dir)).toEqual(before)
  }, 60_000)

  it('reports damage in the segment it follows once it stays unreadable, and changes no file', async () => {
    const dir = join(tmpDir('kvstore-follow-corrupt-tail-'), 'db')
    const w = startWriter(dir, { cycle: 0, sync: 'always', rounds: 10 })
    const f = spawnFollower(dir, 'f1', { loop: false })
    const paused = await w.waitFor((m) => m.t === 'paused', 'the writer paused')
    await go(f)
    expect((await converge(f, Number(paused.seq))).seq).toBe(paused.seq)
    // More records in the same segment while the follower is stopped, then damage among them.
    f.signal('SIGSTOP')
    const from0 = w.messages.length
    w.send({ cmd: 'resume', rounds: 30 })
    await w.waitFor((m) => m.t === 'paused', 'the writer paused again', from0)
    w.send({ cmd: 'finish' })
    await w.waitFor((m) => m.t === 'final', 'the final state')
    expect(await w.exited).toEqual({ code: 0, signal: null })
    const segs = listSegments(nodeFs, dir)
    expect(segs.length).toBe(1)
    const path = segmentPath(dir, segs[0] as number)
    const bytes = readFileSync(path)
    const unread = recordsOf(bytes).filter((r) => r.seq > Number(paused.seq) + 2)
    expect(unread.length).toBeGreaterThan(10)
    const victim = unread[Math.floor(unread.length / 2)] as { offset: number; seq: number }
    bytes[victim.offset + 4] = (bytes[victim.offset + 4] as number) ^ 0x01 // a length bit: the header CRC fails
    writeFileSync(path, bytes)
    const before = listing(dir)
    f.signal('SIGCONT')
    // The bytes could be an append in progress at first; once they stay unreadable it is damage.
    let probe: Msg | undefined
    for (let i = 0; i < 40; i++) {
      const from = f.messages.length
      f.send({ cmd: 'probe' })
      probe = await f.waitFor((m) => m.t === 'probe', 'a probe', from)
      if ((probe.stats as { error?: string }).error !== undefined) break
      await sleep(250)
    }
    expect(probe?.seq).toBe(victim.seq - 1)
    expect((probe?.stats as { error?: string }).error).toMatch(new RegExp(`wal-0*${segs[0]}\\.log at offset ${victim.offset}\\b`))
    expectReportedOnce(probe as Msg)
    expect(listing(dir)).toEqual(before)
    await stopFollower(f)
    expect(listing(dir)).toEqual(before)
  }, 60_000)

  it('follows a directory no writer has opened yet, then the writers started after it', async () => {
    const dir = join(tmpDir('kvstore-follow-first-'), 'db')
    mkdirSync(dir)
    const writers = [0, 1].map((cycle) => startWriter(dir, { cycle, sync: cycle === 0 ? 'always' : 'never', compactEvery: cycle === 0 ? 0 : 8, rounds: 25, waitForGo: true }))
    const f = await startFollower(dir, 'f1')
    expect(f.messages.find((m) => m.t === 'ready')?.seq).toBe(0)
    await sleep(300)
    expect(readdirSync(dir)).toEqual([]) // no lock, no segment: a follower creates nothing
    for (const w of writers) {
      await go(w)
      await w.waitFor((m) => m.t === 'paused', `${w.name} paused`)
      w.send({ cmd: 'finish' })
      const final = await w.waitFor((m) => m.t === 'final', `${w.name} final`)
      expect(await w.exited).toEqual({ code: 0, signal: null })
      const d = await converge(f, Number(final.seq))
      expect(d.dump).toEqual(final.dump)
    }
    expect(checkHistory(dir, writers.length, [f], new Map())).toEqual([])
    expect(observations(f).length).toBeGreaterThan(0)
    await stopFollower(f)
  }, 60_000)
})
