// The same workloads on lmdb, classic-level and NeDB, and on kvstore in directory mode.
// kvstore's in-memory figures for these workloads come from core.bench.ts, and its
// durable-write figures from durability.bench.ts (same workload names).
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { ClassicLevel } from 'classic-level'
import { open as openLmdb } from 'lmdb'
import { Store } from '../src/index.js'
import { prefixFor } from './core.bench.js'
import { concurrentRate } from './lib/concurrent.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure, metric, timeOnce, type BenchContext, type Row } from './lib/harness.js'

// NeDB is CommonJS whose typings declare a default export; load it as CommonJS does.
interface NedbCursor<T> extends PromiseLike<T[]> {
  sort(by: Record<string, 1 | -1>): NedbCursor<T>
  limit(n: number): NedbCursor<T>
}
interface Nedb<T> {
  loadDatabaseAsync(): Promise<void>
  insertAsync(docs: T[]): Promise<unknown>
  findOneAsync(q: object): Promise<T | null>
  findAsync(q: object): NedbCursor<T>
  updateAsync(q: object, doc: T, opts: { upsert: boolean }): Promise<unknown>
  removeAsync(q: object, opts: object): Promise<number>
  compactDatafileAsync(): Promise<void>
}
const Datastore = createRequire(import.meta.url)('@seald-io/nedb') as new <T>(opts: { filename: string }) => Nedb<T>

const G = 'peers'
const BATCH = 1000

interface Engine {
  name: string
  note?: string
  get(k: string): unknown
  /** 1,000 writes issued together, then awaited (each engine's batching path). */
  setMany(keys: string[]): Promise<unknown>
  del(k: string): Promise<unknown> | unknown
  prefix(p: string): Promise<string[]>
  scan(start: string, limit: number): Promise<number>
  batch(keys: string[]): Promise<unknown>
  /** One write that resolves only once durable; undefined when the engine cannot. */
  durable?: (k: string) => Promise<unknown>
  close(): Promise<void>
  reopen(): Promise<void>
}

async function kvstoreEngine(dir: string, keys: string[]): Promise<Engine> {
  let s = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0 })
  for (let i = 0; i < keys.length; i += 10_000) await s.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
  await s.compact()
  return {
    name: "kvstore (dir, 'never')",
    get: (k) => s.get(k),
    setMany: (ks) => Promise.all(ks.map((k) => s.set(k, VALUE))),
    del: (k) => s.delete(k),
    prefix: (p) => s.keys(`${p}*`),
    scan: async (start, limit) => {
      let n = 0
      for await (const _ of s.scan({ gte: start, limit })) n++
      return n
    },
    batch: (ks) => s.batch(ks.map((key) => ({ type: 'set' as const, key, value: VALUE }))),
    close: () => s.close(),
    reopen: async () => {
      await s.close()
      s = await Store.open<string>({ dir, sync: 'never', expirySweepIntervalMs: 0 })
    },
  }
}

async function lmdbEngine(dir: string, keys: string[]): Promise<Engine> {
  // overlappingSync off: a put resolves once its commit is durable, like sync: 'always'.
  const opts = { path: dir, compression: false, overlappingSync: false, encoding: 'string' as const }
  let db = openLmdb<string, string>(opts)
  for (let i = 0; i < keys.length; i += 10_000) await db.batch(() => { for (const k of keys.slice(i, i + 10_000)) void db.put(k, VALUE) })
  return {
    name: 'lmdb',
    get: (k) => db.get(k),
    setMany: (ks) => Promise.all(ks.map((k) => db.put(k, VALUE))),
    del: (k) => db.remove(k),
    prefix: async (p) => {
      const out: string[] = []
      for (const k of db.getKeys({ start: p, end: `${p}\uffff` })) out.push(k as string)
      return out
    },
    scan: async (start, limit) => {
      let n = 0
      for (const _ of db.getRange({ start, limit })) n++
      return n
    },
    batch: (ks) => db.batch(() => { for (const k of ks) void db.put(k, VALUE) }),
    durable: (k) => db.put(k, VALUE),
    close: () => db.close(),
    reopen: async () => {
      await db.close()
      db = openLmdb<string, string>(opts)
      db.get(keys[0] as string)
    },
  }
}

async function levelEngine(dir: string, keys: string[]): Promise<Engine> {
  let db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
  await db.open()
  for (let i = 0; i < keys.length; i += 10_000) await db.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'put' as const, key, value: VALUE })))
  return {
    name: 'classic-level',
    get: (k) => db.get(k),
    setMany: (ks) => Promise.all(ks.map((k) => db.put(k, VALUE))),
    del: (k) => db.del(k),
    prefix: (p) => db.keys({ gte: p, lt: `${p}\uffff` }).all(),
    scan: async (start, limit) => (await db.iterator({ gte: start, limit }).all()).length,
    batch: (ks) => db.batch(ks.map((key) => ({ type: 'put' as const, key, value: VALUE }))),
    durable: (k) => db.put(k, VALUE, { sync: true }),
    close: () => db.close(),
    reopen: async () => {
      await db.close()
      db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
      await db.open()
    },
  }
}

interface Doc {
  _id: string
  v: string
}

async function nedbEngine(file: string, keys: string[]): Promise<Engine> {
  let db = new Datastore<Doc>({ filename: file })
  await db.loadDatabaseAsync()
  await db.insertAsync(keys.map((k) => ({ _id: k, v: VALUE })))
  return {
    name: 'nedb',
    note: `${keys.length.toLocaleString('en')} keys; appends without fsync`,
    get: (k) => db.findOneAsync({ _id: k }),
    setMany: (ks) => Promise.all(ks.map((k) => db.updateAsync({ _id: k }, { _id: k, v: VALUE }, { upsert: true }))),
    del: (k) => db.removeAsync({ _id: k }, {}),
    prefix: async (p) => (await db.findAsync({ _id: { $gte: p, $lt: `${p}\uffff` } }).sort({ _id: 1 })).map((d: Doc) => d._id),
    scan: async (start, limit) => (await db.findAsync({ _id: { $gte: start } }).sort({ _id: 1 }).limit(limit)).length,
    batch: (ks) => Promise.all(ks.map((k) => db.updateAsync({ _id: k }, { _id: k, v: VALUE }, { upsert: true }))),
    close: async () => {
      await db.compactDatafileAsync()
    },
    reopen: async () => {
      db = new Datastore<Doc>({ filename: file })
      await db.loadDatabaseAsync()
    },
  }
}

async function workloads(ctx: BenchContext, e: Engine, keys: string[], rows: Row[]): Promise<void> {
  // Open time of the freshly loaded n-entry store (kvstore: compacted, so snapshot + empty WAL).
  const ms = await timeOnce(() => e.reopen())
  rows.push(metric(ctx, G, `open a ${keys.length.toLocaleString('en')}-entry store`, e.name, ms, 'ms', e.note))
  const order = shuffle(keys.slice(0, Math.min(200_000, keys.length)), 51)
  let at = 0
  const next = (): string => order[at++ % order.length] as string
  const note = e.note
  const opt = note === undefined ? {} : { note }
  rows.push(await measure(ctx, G, 'get', e.name, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) await e.get(next())
  }, opt))
  rows.push(await measure(ctx, G, 'set (overwrite)', e.name, BATCH, () => e.setMany(Array.from({ length: BATCH }, next)), { note: `${note ? `${note}; ` : ''}1,000 in flight` }))
  const fresh = makeKeys(200_000, 52, 'n')
  let f = 0
  rows.push(await measure(ctx, G, 'set (new keys)', e.name, BATCH, () => e.setMany(Array.from({ length: BATCH }, () => fresh[f++ % fresh.length] as string)), { note: `${note ? `${note}; ` : ''}1,000 in flight` }))
  const deleted: string[] = []
  rows.push(await measure(ctx, G, 'delete', e.name, BATCH, async () => {
    for (let i = 0; i < BATCH; i++) {
      const k = next()
      deleted.push(k)
      await e.del(k)
    }
  }, { ...opt, afterEach: async () => { await e.setMany(deleted.splice(0)); await e.prefix('none:') } }))
  const prefix = prefixFor(keys.length >= 500_000 ? keys.length : 0)
  rows.push(await measure(ctx, G, `keys('${prefix}*')`, e.name, 1, () => e.prefix(prefix), opt))
  const starts = shuffle(keys.slice(0, 1000), 53)
  let s = 0
  rows.push(await measure(ctx, G, 'scan 1,000', e.name, 1000, () => e.scan(starts[s++ % starts.length] as string, 1000), opt))
  rows.push(await measure(ctx, G, 'batch of 1,000 writes', e.name, BATCH, () => e.batch(Array.from({ length: BATCH }, next)), opt))
  const durable = e.durable
  if (durable !== undefined) {
    for (const writers of [1, 16, 1000]) {
      rows.push(await concurrentRate(ctx, G, `durable write, ${writers} writer${writers > 1 ? 's' : ''}`, e.name, writers, ctx.quick ? 300 : 2000, (i) => durable(`d${writers}:${i}`)))
    }
  }
  await e.close()
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = []
  const keys = makeKeys(ctx.n, 1)
  await workloads(ctx, await kvstoreEngine(join(ctx.tmp, 'kvstore'), keys), keys, rows)
  await workloads(ctx, await lmdbEngine(join(ctx.tmp, 'lmdb'), keys), keys, rows)
  await workloads(ctx, await levelEngine(join(ctx.tmp, 'level'), keys), keys, rows)
  const nedbKeys = keys.slice(0, ctx.quick ? 5_000 : 50_000)
  await workloads(ctx, await nedbEngine(join(ctx.tmp, 'nedb.db'), nedbKeys), nedbKeys, rows)
  return rows
}
