// Read-only followers in one process: a writer Store and follower Stores on the same
// directory. MemFs has no change notification, so a follower there moves only on
// `refresh()` (its poll interval is set to an hour): each test decides when it looks.
import fc from 'fast-check'
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { nodeFs } from '../../src/fs/node-fs.js'
import { listSegments, segmentPath } from '../../src/wal/segments.js'
import { codeOf } from '../helpers/codes.js'
import { MemFs } from '../helpers/mem-fs.js'
import { tmpDir } from '../helpers/tmp.js'

const DIR = '/db'
const HOUR = 3_600_000
const open: Store<unknown>[] = []

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => undefined)
})

async function writer(fs: MemFs, extra: Record<string, unknown> = {}): Promise<Store<unknown>> {
  const s = await Store.open({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0, ...extra })
  open.push(s)
  return s
}

async function follower(fs: MemFs): Promise<Store<unknown>> {
  const s = await Store.open({ dir: DIR, fs, readOnly: true, followIntervalMs: HOUR, expirySweepIntervalMs: 0 })
  open.push(s)
  return s
}

/** Every key with its type, value (lists and hashes whole) and version. */
async function dump(s: Store<unknown>): Promise<unknown[]> {
  const out: unknown[] = []
  for (const key of (await s.keys()).sort()) {
    const type = await s.type(key)
    const value = type === 'list' ? await s.lrange(key) : type === 'hash' ? [...(await s.hgetall(key))] : await s.get(key)
    out.push([key, type, value, await s.version(key)])
  }
  return out
}

describe('follower: open and follow', () => {
  it('opens a directory with nothing in it yet and picks up the writer started later', async () => {
    const fs = new MemFs()
    fs.mkdir(DIR)
    const f = await follower(fs)
    expect(await f.keys()).toEqual([])
    expect(f.seq).toBe(0)
    const w = await writer(fs)
    await w.set('a', 1)
    await w.rpush('l', 'x', 'y')
    await w.hset('h', { f: 'v' })
    expect(await f.refresh()).toBe(w.seq)
    expect(await dump(f)).toEqual(await dump(w))
  })

  it('refuses a directory that does not exist instead of creating it', async () => {
    const fs = new MemFs()
    expect(await codeOf(Store.open({ dir: DIR, fs, readOnly: true }))).toBe('KV_IO')
    expect(fs.stat(DIR)).toBeUndefined()
  })

  it('loads the snapshot and the WAL after it, then follows compactions, rotations and a load()', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    for (let i = 0; i < 20; i++) await w.set(`k${i}`, i)
    await w.compact()
    await w.batch([{ type: 'delete', key: 'k3' }, { type: 'set', key: 'k4', value: 'four' }])
    const f = await follower(fs)
    expect(await dump(f)).toEqual(await dump(w))
    // Two compactions the follower does not see happen: the segments it read are deleted.
    await w.incr('n')
    await w.compact()
    await w.incr('n')
    await w.compact()
    await w.lpush('l', 'a')
    await f.refresh()
    expect(f.seq).toBe(w.seq)
    expect(await dump(f)).toEqual(await dump(w))
    // It read segment 1 to its end through its open descriptor, then found only segments after
    // a gap: it rebuilt from the newest snapshot.
    expect(f.stats().follower?.resyncs).toBe(1)

    // A load replaces everything: the follower rebuilds from the load's snapshot.
    const src = await Store.open({ dir: '/src', fs, sync: 'never', expirySweepIntervalMs: 0 })
    await src.set('loaded', true)
    await src.snapshot('/file.kvs')
    await src.close()
    const feed = f.watch()
    await w.load('/file.kvs')
    await w.set('after', 1)
    await f.refresh()
    expect(await dump(f)).toEqual(await dump(w))
    expect(f.stats().follower?.resyncs).toBe(2)
    expect((await feed.next()).value).toMatchObject({ type: 'clear' })
    expect((await feed.next()).value).toMatchObject({ type: 'set', key: 'after', value: 1, version: w.seq })
    feed.close()
  })

  it('waits while a load() writes its snapshot: one rebuild, one clear, whatever it polls meanwhile', async () => {
    const fs = new MemFs()
    const src = await Store.open({ dir: '/src', fs, sync: 'never', expirySweepIntervalMs: 0 })
    for (let i = 0; i < 2000; i++) await src.set(`k${i}`, i)
    await src.snapshot('/file.kvs')
    await src.close()
    const w = await writer(fs)
    await w.set('before', 1)
    const f = await follower(fs)
    const feed = f.watch()
    // Poll at every file operation of the load: between its WAL rotation and its snapshot too.
    const seen = new Set<number>()
    let polls = 0
    fs.onOp = () => {
      polls++
      void f.refresh().then(async () => seen.add(await f.count()))
    }
    await w.load('/file.kvs')
    fs.onOp = undefined
    await f.refresh()
    // Never a state the writer did not have: the old contents, or all of the new.
    for (const n of seen) expect([1, 2000]).toContain(n)
    expect(polls).toBeGreaterThan(3)
    expect(await f.count()).toBe(2000)
    expect(f.stats().follower?.resyncs).toBe(1)
    expect((await feed.next()).value).toMatchObject({ type: 'clear' })
    expect(feed.pending).toBe(0)
    feed.close()
  })

  it('after every refresh shows exactly the writer state as of its seq (random ops, compactions, loads)', async () => {
    const op = fc.oneof(
      fc.record({ t: fc.constant('set' as const), k: fc.integer({ min: 0, max: 5 }), v: fc.integer() }),
      fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ t: fc.constant('push' as const), k: fc.integer({ min: 0, max: 2 }), n: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ t: fc.constant('pop' as const), k: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ t: fc.constant('hset' as const), k: fc.integer({ min: 0, max: 2 }), v: fc.integer() }),
      fc.record({ t: fc.constant('batch' as const), k: fc.integer({ min: 0, max: 5 }), v: fc.integer() }),
      fc.constant({ t: 'compact' as const }),
      fc.constant({ t: 'refresh' as const }),
      fc.constant({ t: 'refresh' as const }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const fs = new MemFs()
        const w = await Store.open({ dir: DIR, fs, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0 })
        const f = await Store.open({ dir: DIR, fs, readOnly: true, followIntervalMs: HOUR, expirySweepIntervalMs: 0 })
        // The writer's state after each seq, to compare what the follower shows with.
        const states = new Map<number, unknown[]>([[w.seq, await dump(w)]])
        try {
          for (const o of ops) {
            const list = `l${(o as { k?: number }).k ?? 0}`
            // Plain and collection keys apart, so no op hits a key of the other type.
            if (o.t === 'set') await w.set(`s${o.k}`, o.v)
            else if (o.t === 'del') await w.delete(`s${o.k}`)
            else if (o.t === 'push') await w.rpush(list, ...Array.from({ length: o.n }, (_, i) => i))
            else if (o.t === 'pop') await w.lpop(list)
            else if (o.t === 'hset') await w.hset(`h${o.k}`, { f: o.v })
            else if (o.t === 'batch') await w.batch([{ type: 'set', key: `s${o.k}`, value: o.v }, { type: 'delete', key: `s${(o.k + 1) % 6}` }])
            else if (o.t === 'compact') await w.compact()
            if (o.t === 'refresh') {
              const seq = await f.refresh()
              expect(seq).toBe(w.seq)
              expect(await dump(f)).toEqual(states.get(seq))
            }
            states.set(w.seq, await dump(w))
          }
          await f.refresh()
          expect(await dump(f)).toEqual(await dump(w))
        } finally {
          await f.close()
          await w.close()
        }
      }),
      { numRuns: 40 },
    )
  })
})

describe('follower: read only', () => {
  it('rejects every write with KV_READ_ONLY and changes nothing', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    await w.set('a', 1)
    await w.rpush('l', 'x')
    await w.hset('h', { f: 1 })
    await w.set('n', 5)
    const f = await follower(fs)
    const before = await dump(f)
    const files = fs.readdir(DIR).sort()
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['set', () => f.set('a', 2)],
      ['delete', () => f.delete('a')],
      ['delete missing', () => f.delete('nope')],
      ['clear', () => f.clear()],
      ['batch', () => f.batch([{ type: 'set', key: 'b', value: 1 }])],
      ['update', () => f.update('a', () => 3)],
      ['expire', () => f.expire('a', 1000)],
      ['expireAt', () => f.expireAt('a', Date.now() + 1000)],
      ['persist', () => f.persist('a')],
      ['touch', () => f.touch('a', 1000)],
      ['incr', () => f.incr('n')],
      ['decr', () => f.decr('n')],
      ['lpush', () => f.lpush('l', 'y')],
      ['rpush', () => f.rpush('l', 'y')],
      ['lpop', () => f.lpop('l')],
      ['rpop', () => f.rpop('l')],
      ['lpop missing', () => f.lpop('nope')],
      ['popMany', () => f.popMany('l', 2)],
      ['lset', () => f.lset('l', 0, 'z')],
      ['ltrim', () => f.ltrim('l', 1, 1)],
      ['hset', () => f.hset('h', { g: 2 })],
      ['hdel', () => f.hdel('h', 'f')],
      ['hdel missing', () => f.hdel('h', 'nope')],
      ['transaction', () => f.transaction((tx) => tx.set('a', 9))],
      ['atomic', () => f.atomic().set('a', 9).commit()],
      ['compact', () => f.compact()],
      ['snapshot()', () => f.snapshot()],
      ['load', () => f.load('/nowhere.kvs')],
      ['configure', () => f.configure({ maxMemoryBytes: 1 << 20 })],
    ]
    for (const [name, call] of writes) expect([name, await codeOf(call())]).toEqual([name, 'KV_READ_ONLY'])
    expect(await dump(f)).toEqual(before)
    expect(fs.readdir(DIR).sort()).toEqual(files)
    expect(f.readOnly).toBe(true)
    expect(w.readOnly).toBe(false)
  })

  it('serves reads, read-only transactions, versions, copies to another file and flush', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    await w.batch([
      { type: 'set', key: 'a', value: 1 },
      { type: 'set', key: 'b', value: 2 },
    ])
    const f = await follower(fs)
    expect(await f.transaction(async (tx) => [await tx.get('a'), await tx.get('b')])).toEqual([1, 2])
    expect(await f.getEntry('a')).toMatchObject({ value: 1, version: 1 })
    const copy = await f.snapshot('/copy.kvs')
    expect(copy.entries).toBe(2)
    await f.flush()
    const scanned: unknown[] = []
    for await (const e of f.scan()) scanned.push(e)
    expect(scanned).toEqual([
      ['a', 1],
      ['b', 2],
    ])
  })

  it('checks its options', async () => {
    const fs = new MemFs()
    fs.mkdir(DIR)
    expect(await codeOf(Store.open({ readOnly: true }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ file: '/f.kvs', fs, readOnly: true }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: DIR, fs, readOnly: true, maxMemoryBytes: 1000 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: DIR, fs, readOnly: true, slidingTtlMs: 1000 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: DIR, fs, followIntervalMs: 10 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: DIR, fs, readOnly: 'yes' as unknown as boolean }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(Store.open({ dir: DIR, fs, readOnly: true, followIntervalMs: 0 }))).toBe('KV_INVALID_ARGUMENT')
  })
})

describe('follower: waitFor', () => {
  it('resolves once the seq is applied, times out with KV_TIMEOUT, and rejects waiters with KV_CLOSED on close', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    const f = await follower(fs)
    await w.set('a', 1)
    // waitFor looks at the WAL itself: no refresh needed.
    await f.waitFor(w.seq)
    expect(await f.get('a')).toBe(1)
    expect(await codeOf(f.waitFor(w.seq + 5, { timeoutMs: 20 }))).toBe('KV_TIMEOUT')
    const pending = f.waitFor(w.seq + 1)
    const later = codeOf(f.waitFor(w.seq + 100))
    await w.set('b', 2)
    await f.refresh()
    await pending
    await f.close()
    expect(await later).toBe('KV_CLOSED')
    expect(await codeOf(f.waitFor(1))).toBe('KV_CLOSED')
  })

  it('checks its arguments, and on a writer resolves for issued seqs and refuses later ones', async () => {
    const fs = new MemFs()
    const w = await writer(fs)
    await w.set('a', 1)
    await w.waitFor(w.seq)
    expect(await w.refresh()).toBe(w.seq)
    expect(await codeOf(w.waitFor(w.seq + 1))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(w.waitFor(-1))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(w.waitFor(1.5))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(w.waitFor(1, { timeoutMs: -1 }))).toBe('KV_INVALID_ARGUMENT')
    expect(await codeOf(w.waitFor(1, { timeout: 5 } as never))).toBe('KV_INVALID_ARGUMENT')
  })
})

describe('follower: what it may see in the WAL', () => {
  it('waits at a record still being written and applies it once whole', async () => {
    const dir = tmpDir()
    const w = await Store.open({ dir, sync: 'never', expirySweepIntervalMs: 0 })
    open.push(w)
    await w.set('a', 1)
    await w.set('b', 'x'.repeat(200))
    await w.close()
    const seg = segmentPath(dir, Math.max(...listSegments(nodeFs, dir)))
    const whole = readFileSync(seg)
    // The last record half written: the follower must not take it, nor call it damage.
    const cut = whole.length - 100
    writeFileSync(seg, whole.subarray(0, cut))
    const f = await Store.open({ dir, readOnly: true, followIntervalMs: HOUR })
    open.push(f)
    expect(f.seq).toBe(1)
    expect(await f.get('b')).toBeUndefined()
    expect(f.stats().follower).toMatchObject({ appliedSeq: 1, error: undefined })
    expect(f.stats().follower?.pendingBytes).toBeGreaterThan(0)
    writeFileSync(seg, whole)
    expect(await f.refresh()).toBe(2)
    expect(await f.get('b')).toBe('x'.repeat(200))
    expect(f.stats().follower?.pendingBytes).toBe(0)
  })

  it('reports damage it reads: open fails, or while following the next call rejects once and stats say why; no file changes', async () => {
    const dir = tmpDir()
    const w = await Store.open({ dir, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0 })
    await w.set('a', 1)
    await w.set('b', 2)
    await w.set('c', 3)
    await w.close()
    const [first] = listSegments(nodeFs, dir)
    const seg = segmentPath(dir, first as number)
    const bytes = readFileSync(seg)
    // Flip a payload byte of the second record (seq 2): its CRC fails, and record 3 after it verifies.
    const damaged = Buffer.from(bytes)
    const second = 32 + frameAt(bytes, 32)
    damaged[second + 24] = (damaged[second + 24] as number) ^ 0xff
    writeFileSync(seg, damaged)
    expect(await codeOf(Store.open({ dir, readOnly: true, followIntervalMs: HOUR }))).toBe('KV_CORRUPT')

    // A follower already running first waits (the bytes could be an append in progress), then calls it damage.
    writeFileSync(seg, damaged.subarray(0, second))
    const f = await Store.open({ dir, readOnly: true, followIntervalMs: HOUR })
    open.push(f)
    expect(f.seq).toBe(1)
    appendFileSync(seg, damaged.subarray(second))
    const before = listing(dir)
    await f.refresh()
    expect(f.stats().follower?.error).toBeUndefined()
    // Two looks 500 ms apart must both find a valid record after the bytes (one could race a writer's restart).
    for (let i = 0; i < 20 && f.stats().follower?.error === undefined; i++) {
      await new Promise((r) => setTimeout(r, 200))
      await f.refresh()
    }
    expect(f.seq).toBe(1)
    expect(f.stats().follower?.error).toMatch(/offset \d+: payload checksum mismatch/)
    expect(await codeOf(f.get('a'))).toBe('KV_CORRUPT')
    // Reported once: reads serve the last good state.
    expect(await f.get('a')).toBe(1)
    expect(await f.get('b')).toBeUndefined()
    expect(listing(dir)).toEqual(before)
  })
})

function frameAt(bytes: Buffer, offset: number): number {
  const len = bytes.readUInt32LE(offset + 4)
  return Math.ceil((24 + len) / 8) * 8
}

function listing(dir: string): Array<[string, string]> {
  return readdirSync(dir)
    .sort()
    .map((n) => [n, readFileSync(join(dir, n)).toString('base64')])
}
