// Followers in worker threads (node:worker_threads), on a real directory: the test's thread
// writes, each worker opens `Store.open({ dir, readOnly: true })` (test/helpers/
// follower-worker.mjs, from the sources through tsx), waits for the seq it is sent and reads
// the keys back. Every worker must read exactly what the writer wrote, including across a
// compaction (new snapshot, WAL rotated and the old segments deleted) while they follow.
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { Store } from '../../src/index.js'
import { rng } from '../../bench/lib/data.js'
import { tmpDir } from '../helpers/tmp.js'

const WORKER = fileURLToPath(new URL('../helpers/follower-worker.mjs', import.meta.url))
const WORKERS = 3
const ROUNDS = 24

type Entry = [key: string, type: string | undefined, value: unknown, version: number | undefined]
type Reply = { type: string; id: number } & Record<string, unknown>

/** One worker thread and its replies, matched to requests by id. */
class Peer {
  readonly worker: Worker
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
  #id = 0
  #failure: Error | undefined
  readonly ready: Promise<Reply>

  constructor(dir: string, index: number) {
    this.worker = new Worker(WORKER, { workerData: { dir, index } })
    this.ready = new Promise((resolve, reject) => this.#pending.set(0, { resolve, reject }))
    this.worker.on('message', (m: Reply) => {
      const p = this.#pending.get(m.id)
      this.#pending.delete(m.id)
      if (m.type === 'error') p?.reject(new Error(`worker ${index}: ${String(m.message)}`))
      else p?.resolve(m)
    })
    const fail = (e: Error): void => {
      this.#failure ??= e
      for (const p of this.#pending.values()) p.reject(e)
      this.#pending.clear()
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => fail(new Error(`worker ${index} exited with ${code}`)))
  }

  request(m: Record<string, unknown> & { type: string }): Promise<Reply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    const id = ++this.#id
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.worker.postMessage({ ...m, id })
    })
  }
}

const peers: Peer[] = []
const stores: Store<unknown>[] = []

afterEach(async () => {
  await Promise.all(peers.splice(0).map((p) => p.worker.terminate()))
  for (const s of stores.splice(0)) await s.close().catch(() => undefined)
})

/** [key, type, value, version] as the worker reports it; lists and hashes whole. */
async function entry(s: Store<unknown>, key: string): Promise<Entry> {
  const type = await s.type(key)
  const value = type === 'list' ? await s.lrange(key) : type === 'hash' ? [...(await s.hgetall(key))].sort() : await s.get(key)
  return [key, type, value, await s.version(key)]
}

/** Values of every kind the codec stores, some of them large. */
function valueFor(r: () => number, i: number): unknown {
  switch (Math.floor(r() * 8)) {
    case 0:
      return `s${i}-${'é☃'.repeat(Math.floor(r() * 20))}`
    case 1:
      return r() * 1e9 - 5e8
    case 2:
      return { i, tags: ['a', 'b'], nested: { ok: r() < 0.5, n: null } }
    case 3:
      return [i, 'two', { three: 3 }]
    case 4:
      return r() < 0.5
    case 5:
      return null
    case 6:
      return 'x'.repeat(20_000 + i)
    default:
      return i
  }
}

describe('followers in worker threads', () => {
  it('every worker reads exactly the values the writer wrote, round by round and across a compaction', async () => {
    const dir = tmpDir('kvstore-follower-workers-')
    const w = await Store.open({ dir, sync: 'never', expirySweepIntervalMs: 0, snapshotIntervalMs: 0, compactThresholdBytes: 0 })
    stores.push(w)
    const r = rng(20261202)
    const keys = Array.from({ length: 40 }, (_, i) => `k:${String(i).padStart(2, '0')}`)
    const pick = (): string => keys[Math.floor(r() * keys.length)] as string
    let n = 0
    // Before the workers open: a snapshot, then a WAL tail after it.
    for (const k of keys.slice(0, 20)) await w.set(k, valueFor(r, n++))
    await w.compact()
    for (const k of keys.slice(20, 30)) await w.set(k, valueFor(r, n++))
    await w.rpush('list', 'a', 'b')
    await w.hset('hash', { f: 'v' })

    for (let i = 0; i < WORKERS; i++) peers.push(new Peer(dir, i))
    const ready = await Promise.all(peers.map((p) => p.ready))
    const all = async (): Promise<Entry[]> => Promise.all((await w.keys()).sort().map((k) => entry(w, k)))
    const before = await all()
    for (const p of peers) {
      const d = await p.request({ type: 'dump', seq: w.seq })
      expect(d.entries).toEqual(before)
    }
    expect(ready.every((m) => typeof m.seq === 'number' && m.seq <= w.seq)).toBe(true)

    for (let round = 0; round < ROUNDS; round++) {
      const touched = new Set<string>()
      const writes: Promise<unknown>[] = []
      const ops = 1 + Math.floor(r() * 6)
      for (let j = 0; j < ops; j++) {
        const k = pick()
        touched.add(k)
        const x = r()
        // Not awaited one by one: several records appended back to back, as a busy writer does.
        if (x < 0.55) writes.push(w.set(k, valueFor(r, n++)))
        else if (x < 0.7) writes.push(w.delete(k))
        else if (x < 0.85) {
          const k2 = pick()
          touched.add(k2)
          writes.push(w.batch([{ type: 'set', key: k, value: valueFor(r, n++) }, { type: 'delete', key: k2 }]))
        } else {
          touched.add('list')
          touched.add('hash')
          writes.push(w.rpush('list', `r${round}`), w.hset('hash', { [`f${round % 3}`]: round }))
        }
      }
      // Now and then a record larger than the tailer's 1 MiB read chunk.
      if (round % 8 === 5) {
        const k = pick()
        touched.add(k)
        writes.push(w.set(k, `${round}:${'y'.repeat(1_500_000)}`))
      }
      await Promise.all(writes)
      // Halfway, the writer compacts: the followers move to the new segment (or resync from the snapshot).
      if (round === ROUNDS / 2) {
        await w.compact()
        writes.push(w.set('after-compact', round))
        touched.add('after-compact')
        await Promise.all(writes)
      }
      const seq = w.seq
      const asked = [...touched, 'never-written'].sort()
      const expected = await Promise.all(asked.map((k) => entry(w, k)))
      const replies = await Promise.all(peers.map((p) => p.request({ type: 'read', seq, keys: asked })))
      for (const [i, reply] of replies.entries()) {
        expect(reply.seq, `worker ${i}, round ${round}`).toBeGreaterThanOrEqual(seq)
        expect(reply.entries, `worker ${i}, round ${round}`).toEqual(expected)
      }
    }

    const final = await all()
    for (const p of peers) {
      const d = await p.request({ type: 'dump', seq: w.seq })
      expect(d.entries).toEqual(final)
      expect((await p.request({ type: 'write' })).code).toBe('KV_READ_ONLY')
    }
    // Each worker closes its follower and its thread ends by itself.
    const exits = peers.map((p) => new Promise<number>((resolve) => p.worker.once('exit', resolve)))
    for (const p of peers) await p.request({ type: 'close' })
    expect(await Promise.all(exits)).toEqual(peers.map(() => 0))
    peers.length = 0
  })
})
