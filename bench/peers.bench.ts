// The same workloads on kvstore, lmdb, classic-level and NeDB, each row at one durability:
// writes that reach the OS only (kvstore sync 'never', lmdb noSync, classic-level's default,
// NeDB) or writes fsynced before they resolve (kvstore sync 'always', lmdb's default,
// classic-level { sync: true }). kvstore in memory is the ceiling.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { open as openLmdb } from 'lmdb'
import { Store } from '../src/index.js'
import { prefixFor } from './core.bench.js'
import { writersLabel } from './durability.bench.js'
import { concurrentRate } from './lib/concurrent.js'
import { metric, Rows, timeOnce, type BenchContext, type Row } from './lib/context.js'
import { makeKeys, shuffle, VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

// NeDB is CommonJS whose typings declare a default export; load it as CommonJS does.
interface NedbCursor<T> extends PromiseLike<T[]> {
  sort(by: Record<string, 1 | -1>): NedbCursor<T>
  limit(n: number): NedbCursor<T>
}
interface Nedb<T> {
  loadDatabaseAsync(): Promise<void>
  insertAsync(docs: T[]): Promise<unknown>
  findOneAsync(q: object): PromiseLike<T | null>
  findAsync(q: object): NedbCursor<T>
  updateAsync(q: object, doc: T, opts: { upsert: boolean }): Promise<unknown>
  removeAsync(q: object, opts: object): Promise<number>
  compactDatafileAsync(): Promise<void>
}
const Datastore = createRequire(import.meta.url)('@seald-io/nedb') as new <T>(opts: { filename: string }) => Nedb<T>

const G = 'peers'
const BATCH = 1000
const KV_NEVER = "kvstore (dir, 'never')"
const KV_ALWAYS = "kvstore (dir, 'always')"
const KV_MEMORY = 'kvstore (memory)'
const LMDB_NOSYNC = 'lmdb (noSync)'
const LMDB_DURABLE = 'lmdb'
const LEVEL = 'classic-level'
const LEVEL_SYNC = 'classic-level (sync)'

/** One engine's way of doing each workload; a missing method = workload not run. */
interface Engine {
  name: string
  /** Appended to every row of the engine. */
  note?: string
  /** Point read; may answer synchronously (lmdb) or with a thenable (NeDB). */
  get?(k: string): unknown
  /** Writes of existing or new keys, all issued at once, then awaited (the engine's batching path). */
  setMany?(keys: string[]): Promise<unknown>
  delMany?(keys: string[]): Promise<unknown>
  prefix?(p: string): Promise<string[]>
  prefixNote?: string
  scan?(start: string, limit: number): Promise<number>
  batch?(keys: string[]): Promise<unknown>
  /** One write that resolves once durable. */
  durable?(k: string): Promise<unknown>
  durableNote?: string
  /** Close and open again (timed as the open of the n-entry store). */
  reopen?(): Promise<void>
  /** Untimed: bring the engine to a steady state after a task (kvstore sorts in pending writes). */
  settle?(): Promise<unknown>
  close(): Promise<unknown>
}

function kvstoreOps(get: () => Store<string>): Omit<Engine, 'name' | 'close'> {
  return {
    get: (k) => get().get(k),
    setMany: (ks) => Promise.all(ks.map((k) => get().set(k, VALUE))),
    delMany: (ks) => Promise.all(ks.map((k) => get().delete(k))),
    prefix: (p) => get().keys(`${p}*`),
    prefixNote: "keys('prefix*')",
    scan: async (start, limit) => {
      let c = 0
      for await (const _ of get().scan({ gte: start, limit })) c++
      return c
    },
    batch: (ks) => get().batch(ks.map((key) => ({ type: 'set' as const, key, value: VALUE }))),
    settle: () => get().keys('none:*'),
  }
}

/** The named members of `o` that are set (reads do not depend on the sync policy). */
function pick<T extends object, K extends keyof T>(o: T, ...names: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>
  for (const k of names) if (o[k] !== undefined) out[k] = o[k]
  return out
}

async function fillKvstore(s: Store<string>, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 10_000) await s.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'set' as const, key, value: VALUE })))
  await s.keys('none:*')
}

async function kvstoreDir(dir: string, keys: string[]): Promise<Engine> {
  const opts = { dir, sync: 'never' as const, expirySweepIntervalMs: 0 }
  let s = await Store.open<string>(opts)
  await fillKvstore(s, keys)
  await s.compact()
  return {
    name: KV_NEVER,
    ...kvstoreOps(() => s),
    reopen: async () => {
      await s.close()
      s = await Store.open<string>(opts)
    },
    close: () => s.close(),
  }
}

/**
 * The directory of {@link kvstoreDir}, opened again with sync: 'always': the write workloads,
 * each write resolving once fdatasynced (reads do not depend on the sync policy).
 */
async function kvstoreAlways(dir: string): Promise<Engine> {
  const s = await Store.open<string>({ dir, sync: 'always', expirySweepIntervalMs: 0 })
  // The 'never' workloads left a big WAL; compact now so the automatic compaction it would
  // trigger does not run during the timed writes (each engine starts from a steady state).
  await s.compact()
  const ops = kvstoreOps(() => s)
  return {
    name: KV_ALWAYS,
    note: 'each write fdatasynced before it resolves',
    ...pick(ops, 'setMany', 'delMany', 'batch', 'settle'),
    durable: (k) => s.set(k, VALUE),
    durableNote: 'group commit: one fdatasync per batch of waiting writes',
    close: () => s.close(),
  }
}

async function kvstoreMemory(keys: string[]): Promise<Engine> {
  const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
  await fillKvstore(s, keys)
  return { name: KV_MEMORY, ...kvstoreOps(() => s), close: () => s.close() }
}

const lmdbBase = { compression: false, encoding: 'string' as const }

/** What lmdb's write calls return: the commit promise, with `.flushed` under separateFlushed. */
type LmdbCommit = Promise<unknown> & { flushed?: Promise<unknown> }

/** lmdb with `noSync: true`: commits are never fsynced, like kvstore 'never'. */
async function lmdbEngine(dir: string, keys: string[]): Promise<Engine> {
  const opts = { path: dir, ...lmdbBase, noSync: true }
  let db = openLmdb<string, string>(opts)
  for (let i = 0; i < keys.length; i += 10_000) await db.batch(() => { for (const k of keys.slice(i, i + 10_000)) void db.put(k, VALUE) })
  return {
    name: LMDB_NOSYNC,
    get: (k) => db.get(k),
    setMany: (ks) => Promise.all(ks.map((k) => db.put(k, VALUE))),
    delMany: (ks) => Promise.all(ks.map((k) => db.remove(k))),
    prefix: async (p) => {
      const out: string[] = []
      for (const k of db.getKeys({ start: p, end: `${p}\uffff` })) out.push(k as string)
      return out
    },
    prefixNote: 'getKeys({ start, end }): getRange without decoding values',
    scan: async (start, limit) => {
      let c = 0
      for (const _ of db.getRange({ start, limit })) c++
      return c
    },
    batch: (ks) => db.batch(() => { for (const k of ks) void db.put(k, VALUE) }),
    reopen: async () => {
      await db.close()
      db = openLmdb<string, string>(opts)
      db.get(keys[0] as string)
    },
    close: () => db.close(),
  }
}

/**
 * The directory of {@link lmdbEngine}, opened again with lmdb's defaults (overlappingSync):
 * every write awaited until its commit is fsynced (`.flushed`), like kvstore 'always'.
 */
async function lmdbDurable(dir: string): Promise<Engine> {
  const db = openLmdb<string, string>({ path: dir, ...lmdbBase, separateFlushed: true })
  const flushed = (p: unknown): Promise<unknown> => (p as LmdbCommit).flushed ?? (p as Promise<unknown>)
  return {
    name: LMDB_DURABLE,
    note: 'each write awaited until fsynced (.flushed)',
    setMany: (ks) => Promise.all(ks.map((k) => flushed(db.put(k, VALUE)))),
    delMany: (ks) => Promise.all(ks.map((k) => flushed(db.remove(k)))),
    batch: (ks) => flushed(db.batch(() => { for (const k of ks) void db.put(k, VALUE) })),
    durable: (k) => flushed(db.put(k, VALUE)),
    durableNote: 'put(), awaited until its commit is flushed (.flushed)',
    close: () => db.close(),
  }
}

async function levelEngine(dir: string, keys: string[]): Promise<Engine> {
  let db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
  await db.open()
  for (let i = 0; i < keys.length; i += 10_000) await db.batch(keys.slice(i, i + 10_000).map((key) => ({ type: 'put' as const, key, value: VALUE })))
  // Steady state: the bulk load's level-0 files compacted before anything is timed.
  await db.compactRange('', '\uffff')
  return {
    name: LEVEL,
    note: 'default: no sync',
    get: (k) => db.get(k),
    setMany: (ks) => Promise.all(ks.map((k) => db.put(k, VALUE))),
    delMany: (ks) => Promise.all(ks.map((k) => db.del(k))),
    prefix: (p) => db.keys({ gte: p, lt: `${p}\uffff` }).all(),
    prefixNote: 'keys iterator with gte/lt',
    scan: async (start, limit) => (await db.iterator({ gte: start, limit }).all()).length,
    batch: (ks) => db.batch(ks.map((key) => ({ type: 'put' as const, key, value: VALUE }))),
    reopen: async () => {
      await db.close()
      db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
      await db.open()
    },
    close: () => db.close(),
  }
}

/** The directory of {@link levelEngine}, opened again; every write with `{ sync: true }`, like kvstore 'always'. */
async function levelSync(dir: string): Promise<Engine> {
  const db = new ClassicLevel<string, string>(dir, { valueEncoding: 'utf8' })
  await db.open()
  const sync = { sync: true }
  return {
    name: LEVEL_SYNC,
    note: 'each write with { sync: true }',
    setMany: (ks) => Promise.all(ks.map((k) => db.put(k, VALUE, sync))),
    delMany: (ks) => Promise.all(ks.map((k) => db.del(k, sync))),
    batch: (ks) => db.batch(ks.map((key) => ({ type: 'put' as const, key, value: VALUE })), sync),
    durable: (k) => db.put(k, VALUE, sync),
    durableNote: 'put(k, v, { sync: true })',
    close: () => db.close(),
  }
}

interface Doc {
  _id: string
  v: string
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

async function nedbEngine(file: string, keys: string[]): Promise<Engine> {
  let db = new Datastore<Doc>({ filename: file })
  await db.loadDatabaseAsync()
  await db.insertAsync(keys.map((k) => ({ _id: k, v: VALUE })))
  const upsert = (k: string): Promise<unknown> => db.updateAsync({ _id: k }, { _id: k, v: VALUE }, { upsert: true })
  return {
    name: 'nedb',
    note: `${keys.length.toLocaleString('en')} keys`,
    get: (k) => db.findOneAsync({ _id: k }),
    setMany: (ks) => Promise.all(ks.map(upsert)),
    delMany: (ks) => Promise.all(ks.map((k) => db.removeAsync({ _id: k }, {}))),
    prefix: async (p) => (await db.findAsync({ _id: new RegExp(`^${escapeRegExp(p)}`) }).sort({ _id: 1 })).map((d: Doc) => d._id),
    prefixNote: 'find({ _id: /^prefix/ }).sort(): a regex is a full O(n) scan',
    scan: async (start, limit) => (await db.findAsync({ _id: { $gte: start } }).sort({ _id: 1 }).limit(limit)).length,
    batch: (ks) => Promise.all(ks.map(upsert)),
    durable: upsert,
    durableNote: 'NOT durable: NeDB appends without fsync; same loop for comparison',
    reopen: async () => {
      db = new Datastore<Doc>({ filename: file })
      await db.loadDatabaseAsync()
    },
    close: () => db.compactDatafileAsync(),
  }
}

/** Every workload `e` supports, in table order. */
async function workloads(ctx: BenchContext, e: Engine, keys: string[], fresh: string[], rows: Rows): Promise<void> {
  const with_ = (...parts: (string | undefined)[]): { note?: string } => {
    const s = [e.note, ...parts].filter((p) => p !== undefined && p !== '').join('; ')
    return s === '' ? {} : { note: s }
  }
  if (e.reopen !== undefined) {
    const wl = `open a ${keys.length.toLocaleString('en')}-entry store`
    if (ctx.wants(G, wl, e.name)) rows.add(metric(ctx, G, wl, e.name, await timeOnce(() => e.reopen?.()), 'ms', with_()))
  }
  const order = shuffle(keys.slice(0, Math.min(200_000, keys.length)), 51)
  let at = 0
  const next = (): string => order[at++ % order.length] as string
  const settle = { afterEach: async () => { await e.settle?.() } }
  const { get, setMany, delMany, prefix, scan, batch, durable } = e
  if (get !== undefined) {
    rows.add(await measure(ctx, G, 'get', e.name, BATCH, async () => {
      for (let i = 0; i < BATCH; i++) {
        // lmdb answers synchronously; NeDB returns a thenable cursor, not a Promise.
        const r = get(next()) as { then?: unknown } | undefined
        if (typeof r?.then === 'function') await r
      }
    }, with_('one at a time')))
  }
  if (setMany !== undefined) {
    rows.add(await measure(ctx, G, 'set (overwrite), 1,000 in flight', e.name, BATCH, () => setMany(Array.from({ length: BATCH }, next)), { ...with_(), ...settle }))
    let f = 0
    rows.add(await measure(ctx, G, 'set (new keys), 1,000 in flight', e.name, BATCH, () => setMany(Array.from({ length: BATCH }, () => fresh[f++ % fresh.length] as string)), { ...with_('new keys stay: the store grows'), ...settle }))
  }
  if (delMany !== undefined && setMany !== undefined) {
    let deleted: string[] = []
    rows.add(await measure(ctx, G, 'delete, 1,000 in flight', e.name, BATCH, () => {
      deleted = Array.from({ length: BATCH }, next)
      return delMany(deleted)
    }, { ...with_('deleted keys put back after each batch, untimed'), afterEach: async () => { await setMany(deleted); await e.settle?.() } }))
  }
  if (prefix !== undefined) {
    const p = prefixFor(keys.length >= 500_000 ? keys.length : 0)
    const matches = (await prefix(p)).length
    rows.add(await measure(ctx, G, `keys('${p}*')`, e.name, 1, () => prefix(p), with_(`${matches} keys per call`, e.prefixNote)))
  }
  if (scan !== undefined) {
    const starts = shuffle(keys.slice(0, 1000), 53)
    let s = 0
    rows.add(await measure(ctx, G, 'scan 1,000', e.name, 1000, () => scan(starts[s++ % starts.length] as string, 1000), with_('entries/s, key and value, in order')))
  }
  if (batch !== undefined) {
    rows.add(await measure(ctx, G, 'batch of 1,000 writes', e.name, BATCH, () => batch(Array.from({ length: BATCH }, next)), { ...with_('writes/s'), ...settle }))
  }
  if (durable !== undefined) {
    for (const writers of [1, 16, 1000]) {
      rows.add(await concurrentRate(ctx, G, writersLabel(writers), e.name, writers, (i) => durable(`d${writers}:${i}`), with_(e.durableNote)))
    }
  }
}

/** One engine to build: `after` names the engine whose directory it opens again (built for it too). */
interface Builder {
  name: string
  build: () => Promise<Engine>
  keys: string[]
  after?: string
  /** Writes fsynced before they resolve: their "new keys" must be new to the directory too. */
  durable?: boolean
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const keys = makeKeys(ctx.n, 1)
  const fresh = makeKeys(ctx.n, 52, 'n')
  let freshDurable: string[] | undefined
  const nedbKeys = keys.slice(0, ctx.quick ? 5_000 : 50_000)
  const kvDir = join(ctx.tmp, 'kvstore')
  const lmdbDir = join(ctx.tmp, 'lmdb')
  const levelDir = join(ctx.tmp, 'level')
  const builders: Builder[] = [
    { name: KV_NEVER, build: () => kvstoreDir(kvDir, keys), keys },
    { name: KV_ALWAYS, build: () => kvstoreAlways(kvDir), keys, after: KV_NEVER, durable: true },
    { name: KV_MEMORY, build: () => kvstoreMemory(keys), keys },
    { name: LMDB_NOSYNC, build: () => lmdbEngine(lmdbDir, keys), keys },
    { name: LMDB_DURABLE, build: () => lmdbDurable(lmdbDir), keys, after: LMDB_NOSYNC, durable: true },
    { name: LEVEL, build: () => levelEngine(levelDir, keys), keys },
    { name: LEVEL_SYNC, build: () => levelSync(levelDir), keys, after: LEVEL, durable: true },
    { name: 'nedb', build: () => nedbEngine(join(ctx.tmp, 'nedb.db'), nedbKeys), keys: nedbKeys },
  ]
  const names = (ks: string[]): string[] => [
    `open a ${ks.length.toLocaleString('en')}-entry store`,
    'get',
    'set (overwrite), 1,000 in flight',
    'set (new keys), 1,000 in flight',
    'delete, 1,000 in flight',
    `keys('${prefixFor(ks.length >= 500_000 ? ks.length : 0)}*')`,
    'scan 1,000',
    'batch of 1,000 writes',
    ...[1, 16, 1000].map(writersLabel),
  ]
  const wanted = (b: Builder): boolean => names(b.keys).some((w) => ctx.wants(G, w, b.name))
  for (const b of builders) {
    // An engine that opens another's directory again needs that one built (and run) first.
    if (!wanted(b) && !builders.some((o) => o.after === b.name && wanted(o))) continue
    const t = performance.now()
    const e = await b.build()
    ctx.log(`  ${G} | built ${b.name} with ${b.keys.length.toLocaleString('en')} keys in ${((performance.now() - t) / 1000).toFixed(1)} s`)
    try {
      // The non-durable engine of the same directory inserted `fresh` already.
      const newKeys = b.durable === true ? (freshDurable ??= makeKeys(ctx.n, 54, 'm')) : fresh
      await workloads(ctx, e, b.keys, newKeys, rows)
    } finally {
      await e.close()
    }
  }
  return rows.list
}
