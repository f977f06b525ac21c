// EtcdStore on a 3-member etcd cluster this group starts itself (test/helpers/etcd-cluster.ts),
// beside the same work as raw requests through EtcdClient to the same cluster (the engine's
// own ceiling: no commit marker, no record encoding, no per-key ordering) and beside the
// embedded in-memory Store. The "vs kvstore" column is the ratio to the embedded Store (it
// rounds to 0.00x here); the note of each EtcdStore row gives its ratio to the raw requests
// and how many times faster the embedded Store is. The concurrent-writer rows also say how
// many sets EtcdStore's group commit put in one etcd txn, and the cluster row whether a
// leader election happened during the run (a sign the machine was too loaded to trust them).
//
// Runs when etcd is installed (`npm test` installs it: scripts/install-services.sh) or when
// `--only etcd` selects it; see bench/run.ts.
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { Store } from '../src/index.js'
import { EtcdClient, type TxnOp } from '../src/etcd/client.js'
import { EtcdStore } from '../src/etcd/index.js'
import { startEtcdCluster } from '../test/helpers/etcd-cluster.js'
import { concurrentRate } from './lib/concurrent.js'
import { metric, Rows, type BenchContext, type Row } from './lib/context.js'
import { VALUE } from './lib/data.js'
import { measure } from './lib/tinybench.js'

const G = 'etcd'
const ES = 'EtcdStore (3 members)'
const RAW = 'EtcdClient (raw requests)'
const KV = 'kvstore (memory)'
const ENGINES = [ES, RAW, KV]
/** Keys written before the get, transaction and scan rows. */
const KEYS = 1000
const BATCH = 100
const SCAN = 1000
const WRITERS = [1, 16, 256]
const RAW_VALUE = Buffer.from(VALUE)
/** Per-request timeout of both clients: generous, so a loaded machine slows the rows down instead of failing them. */
const TIMEOUT_MS = 30_000

const W = {
  get: 'get (existing key)',
  set: 'set',
  batch: `batch of ${BATCH} sets`,
  tx: 'transaction: read 2 keys, write 1',
  scan: `scan of ${SCAN.toLocaleString('en')} keys`,
  writers: (n: number) => `set, ${n.toLocaleString('en')} concurrent writer${n > 1 ? 's' : ''}`,
}

/** Whether an etcd binary is installed where the cluster helper looks (PATH, /usr/bin/etcd). */
export function available(): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')
  return [...dirs.map((d) => join(d, 'etcd')), '/usr/bin/etcd'].some((p) => {
    try {
      accessSync(p, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

const rawKey = (row: string, key: string): Buffer => Buffer.from(`raw/${row}/${key}`)
const put = (key: Buffer): TxnOp => ({ put: { key, value: RAW_VALUE } })
const keyOf = (prefix: string, i: number): string => `${prefix}${String(i).padStart(6, '0')}`

function fail(what: string): never {
  throw new Error(`etcd bench: ${what}`)
}

/**
 * EtcdStore's speed relative to the raw row and to the embedded Store row of the same
 * workload, into its note and data (the table's "vs kvstore" column rounds to 0.00x here).
 */
function compare(es: Row | undefined, raw: Row | undefined, kv: Row | undefined, extra = ''): void {
  if (es?.opsPerSec === undefined) return
  const parts: string[] = []
  const data: Record<string, number> = { ...es.data }
  if (raw?.opsPerSec !== undefined) {
    data.vsRaw = es.opsPerSec / raw.opsPerSec
    parts.push(`vs raw ${data.vsRaw.toFixed(2)}x`)
  }
  if (kv?.opsPerSec !== undefined) {
    data.vsStore = es.opsPerSec / kv.opsPerSec
    parts.push(`kvstore (memory) is ${Math.round(1 / data.vsStore).toLocaleString('en')}x faster`)
  }
  if (extra !== '') parts.push(extra)
  es.note = parts.join('; ')
  es.data = data
}

/** `etcd 3.4.23`, from `etcd --version`. */
function etcdVersion(): string {
  const out = spawnSync('etcd', ['--version'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}${delimiter}/usr/bin` } }).stdout ?? ''
  return `etcd ${/etcd Version: (\S+)/.exec(out)?.[1] ?? '3.4'}`
}

/**
 * Wraps a concurrent writer's `write` so a failed request (a timeout on a loaded machine)
 * ends that write, not the run: failures are counted, the row's rate is cut to the writes
 * that succeeded, and its note says how many failed and why.
 */
function tolerant(write: (i: number) => Promise<unknown>) {
  let ok = 0
  const failures: string[] = []
  const failed = (): string => {
    if (failures.length === 0) return ''
    const why = [...new Set(failures)].join(', ')
    return `; ${failures.length.toLocaleString('en')} of ${(ok + failures.length).toLocaleString('en')} writes FAILED (${why})`
  }
  return {
    failures,
    failed,
    write: (i: number): Promise<void> =>
      write(i).then(
        () => void ok++,
        (err: unknown) => void failures.push((err as { code?: string } | null)?.code ?? String(err)),
      ),
    /** Count only the writes that succeeded in `row`'s rate; note the failures. */
    settle(row: Row | undefined): void {
      if (row?.opsPerSec === undefined || failures.length === 0) return
      row.opsPerSec *= ok / (ok + failures.length)
      row.note = `${row.note ?? ''}${failed()}`
    },
  }
}

/** etcd's raft term as the member at `url` reports it: it grows by one per election. */
async function raftTerm(url: string): Promise<number> {
  const res = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(TIMEOUT_MS) })
  return Number(((await res.json()) as { raftTerm?: string }).raftTerm ?? 0)
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows = new Rows()
  const workloads = [W.get, W.set, W.batch, W.tx, W.scan, ...WRITERS.map(W.writers)]
  const wanted = (w: string): boolean => ENGINES.some((e) => ctx.wants(G, w, e))
  if (!workloads.some(wanted)) return []

  const t0 = performance.now()
  const cluster = await startEtcdCluster({ members: 3, dataDir: ctx.tmp })
  const startMs = performance.now() - t0
  const stores: { close(): Promise<void> }[] = []
  const raw = new EtcdClient({ endpoints: cluster.endpoints, timeoutMs: TIMEOUT_MS })
  let elections = async (): Promise<void> => undefined
  try {
    const endpoints = cluster.endpoints
    const leader = await cluster.leader()
    const first = cluster.members[0]?.name ?? '?'
    const startRow = rows.add(metric(ctx, G, 'start a 3-member cluster', etcdVersion(), startMs, 'ms', {
      note: `every client sends to ${first}, ${leader.name === first ? 'the leader' : `a follower (leader: ${leader.name})`}; linearizable reads`,
    }))
    const termBefore = await raftTerm(leader.clientUrl)
    elections = async () => {
      const n = (await raftTerm(leader.clientUrl)) - termBefore
      if (startRow !== undefined) startRow.note = `${startRow.note ?? ''}; ${n === 0 ? 'no leader election' : `${n} leader election(s)`} during the run`
      if (n > 0) ctx.log(`  ${G}: ${n} leader election(s) during the run: the machine was too loaded for etcd's 500 ms election timeout`)
    }

    /** An EtcdStore in its own namespace (one per row), closed at the end. */
    const openEs = async (ns: string): Promise<EtcdStore<string>> => {
      const s = await EtcdStore.open<string>({ endpoints, namespace: `bench/${ns}/`, timeoutMs: TIMEOUT_MS })
      stores.push(s)
      return s
    }
    const openKv = async (): Promise<Store<string>> => {
      const s = await Store.open<string>({ expirySweepIntervalMs: 0 })
      stores.push(s)
      return s
    }
    /** `KEYS` keys `prefix000000…` in each engine, written in batches of 100. */
    const fill = async (es: EtcdStore<string>, kv: Store<string>, row: string, prefix: string): Promise<string[]> => {
      const keys = Array.from({ length: KEYS }, (_, i) => keyOf(prefix, i))
      for (let i = 0; i < KEYS; i += BATCH) {
        const part = keys.slice(i, i + BATCH)
        await es.batch(part.map((key) => ({ type: 'set' as const, key, value: VALUE })))
        await raw.txn([], part.map((k) => put(rawKey(row, k))))
        await kv.batch(part.map((key) => ({ type: 'set' as const, key, value: VALUE })))
      }
      return keys
    }

    // ---------------------------------------------------------------- get
    if (wanted(W.get)) {
      const es = await openEs('get')
      const kv = await openKv()
      const keys = await fill(es, kv, 'get', 'g:')
      const rawKeys = keys.map((k) => rawKey('get', k))
      if ((await es.get(keys[7] as string)) !== VALUE) fail('EtcdStore.get did not return the value set')
      if ((await raw.range({ key: rawKeys[7] as Buffer })).kvs[0]?.value.toString() !== VALUE) fail('raw range did not return the value put')
      let i = 0
      const a = rows.add(await measure(ctx, G, W.get, ES, 1, () => es.get(keys[i++ % KEYS] as string), { id: 'etcd.get.store' }))
      const b = rows.add(await measure(ctx, G, W.get, RAW, 1, () => raw.range({ key: rawKeys[i++ % KEYS] as Buffer }), { id: 'etcd.get.raw', note: 'range of one key' }))
      const c = rows.add(await measure(ctx, G, W.get, KV, 1, () => kv.get(keys[i++ % KEYS] as string)))
      compare(a, b, c)
    }

    // ---------------------------------------------------------------- set
    if (wanted(W.set)) {
      const es = await openEs('set')
      const kv = await openKv()
      let i = 0
      const a = rows.add(await measure(ctx, G, W.set, ES, 1, () => es.set(keyOf('s:', i++ % 10_000), VALUE), { id: 'etcd.set.store' }))
      const b = rows.add(await measure(ctx, G, W.set, RAW, 1, () => raw.txn([], [put(rawKey('set', keyOf('s:', i++ % 10_000)))]), { id: 'etcd.set.raw', note: 'txn with one put' }))
      const c = rows.add(await measure(ctx, G, W.set, KV, 1, () => kv.set(keyOf('s:', i++ % 10_000), VALUE)))
      compare(a, b, c, 'one txn: the put (with prev_kv) + a commit marker on a lease, guarded by a compare')
      if ((await es.get(keyOf('s:', 0))) !== VALUE) fail('EtcdStore.set did not store the value')
    }

    // -------------------------------------------------------------- batch
    if (wanted(W.batch)) {
      const es = await openEs('batch')
      const kv = await openKv()
      let i = 0
      const next = (): string[] => Array.from({ length: BATCH }, () => keyOf('b:', i++ % 10_000))
      const ops = (keys: string[]) => keys.map((key) => ({ type: 'set' as const, key, value: VALUE }))
      const a = rows.add(await measure(ctx, G, W.batch, ES, BATCH, () => es.batch(ops(next())), { id: 'etcd.batch.store' }))
      const b = rows.add(await measure(ctx, G, W.batch, RAW, BATCH, () => raw.txn([], next().map((k) => put(rawKey('batch', k)))), { id: 'etcd.batch.raw', note: `sets/s; one txn with ${BATCH} puts` }))
      const c = rows.add(await measure(ctx, G, W.batch, KV, BATCH, () => kv.batch(ops(next())), { note: 'sets/s' }))
      compare(a, b, c, `sets/s; one txn: ${BATCH} puts + a commit marker`)
      if ((await es.get(keyOf('b:', 99))) !== VALUE) fail('EtcdStore.batch did not store the values')
    }

    // -------------------------------------------------------- transaction
    if (wanted(W.tx)) {
      const es = await openEs('tx')
      const kv = await openKv()
      const keys = await fill(es, kv, 'tx', 't:')
      let i = 0
      const pick = (): [string, string, string] => {
        const n = i++
        return [keys[n % KEYS] as string, keys[(n * 7 + 1) % KEYS] as string, keys[(n * 13 + 5) % KEYS] as string]
      }
      const tx = (s: EtcdStore<string> | Store<string>) => async () => {
        const [x, y, z] = pick()
        await s.transaction(async (t) => {
          const a = (await t.get(x)) ?? ''
          const b = (await t.get(y)) ?? ''
          t.set(z, a.length + b.length === 2 * VALUE.length ? VALUE : fail('transaction read a wrong value'))
        })
      }
      // Raw: the same optimistic transaction by hand: two reads at one revision, then a txn
      // that re-checks both keys' mod_revision and writes the third (3 round trips, as EtcdStore).
      const rawTx = async (): Promise<void> => {
        const [x, y, z] = pick().map((k) => rawKey('tx', k)) as [Buffer, Buffer, Buffer]
        const rx = await raw.range({ key: x })
        const ry = await raw.range({ key: y, revision: rx.revision })
        const kx = rx.kvs[0] ?? fail('raw read missed a key')
        const ky = ry.kvs[0] ?? fail('raw read missed a key')
        const res = await raw.txn(
          [
            { key: x, target: 'MOD', result: 'EQUAL', revision: kx.modRevision },
            { key: y, target: 'MOD', result: 'EQUAL', revision: ky.modRevision },
          ],
          [put(z)],
        )
        if (!res.succeeded) fail('raw transaction conflicted with nobody writing')
      }
      const a = rows.add(await measure(ctx, G, W.tx, ES, 1, tx(es), { id: 'etcd.tx.store' }))
      const b = rows.add(await measure(ctx, G, W.tx, RAW, 1, rawTx, { id: 'etcd.tx.raw', note: 'commits/s; range, range at its revision, txn comparing both mod_revisions + one put' }))
      const c = rows.add(await measure(ctx, G, W.tx, KV, 1, tx(kv), { note: 'commits/s' }))
      compare(a, b, c, 'commits/s, uncontended')
    }

    // --------------------------------------------------------------- scan
    if (wanted(W.scan)) {
      const es = await openEs('scan')
      const kv = await openKv()
      await fill(es, kv, 'scan', 'k:')
      const start = Buffer.from('raw/scan/')
      const end = Buffer.from('raw/scan0') // '0' follows '/': the end of the prefix
      const count = async (it: AsyncIterable<unknown>): Promise<void> => {
        let c = 0
        for await (const _ of it) c++
        if (c !== SCAN) fail(`scan returned ${c} entries, not ${SCAN}`)
      }
      const a = rows.add(await measure(ctx, G, W.scan, ES, SCAN, () => count(es.scan()), { id: 'etcd.scan.store' }))
      const b = rows.add(await measure(ctx, G, W.scan, RAW, SCAN, async () => {
        const r = await raw.range({ key: start, rangeEnd: end, limit: SCAN })
        if (r.kvs.length !== SCAN) fail(`raw range returned ${r.kvs.length} pairs, not ${SCAN}`)
      }, { id: 'etcd.scan.raw', note: `entries/s; one range with limit ${SCAN}` }))
      const c = rows.add(await measure(ctx, G, W.scan, KV, SCAN, () => count(kv.scan()), { note: 'entries/s' }))
      compare(a, b, c, 'entries/s, async iterator consumed')
    }

    // --------------------------------------------------- concurrent writers
    // Each writer awaits one plain set of a new key after another for a fixed time; EtcdStore
    // groups the sets in flight into shared txns, the raw client sends one txn per set.
    for (const n of WRITERS) {
      const wl = W.writers(n)
      if (!wanted(wl)) continue
      const es = await openEs(`w${n}`)
      const kv = await openKv()
      // Warm-up, untimed: one write per writer, so the connections are open.
      const warm = (write: (k: string) => Promise<unknown>) => Promise.allSettled(Array.from({ length: n }, (_, j) => write(`warm:${j}`)))
      await warm((k) => es.set(k, VALUE))
      await warm((k) => raw.txn([], [put(rawKey(`w${n}`, k))]))
      const before = es.stats()
      const esWrites = tolerant((i) => es.set(keyOf('c:', i), VALUE))
      const a = rows.add(await concurrentRate(ctx, G, wl, ES, n, esWrites.write, { id: `etcd.w${n}.store` }))
      const after = es.stats()
      const rawWrites = tolerant((i) => raw.txn([], [put(rawKey(`w${n}`, keyOf('c:', i)))]))
      const b = rows.add(await concurrentRate(ctx, G, wl, RAW, n, rawWrites.write, { id: `etcd.w${n}.raw`, note: 'writes/s; one txn with one put per set' }))
      const c = rows.add(await concurrentRate(ctx, G, wl, KV, n, (i) => kv.set(keyOf('c:', i), VALUE), { note: 'writes/s' }))
      rawWrites.settle(b)
      esWrites.settle(a)
      const txns = after.txns - before.txns
      const perTxn = txns > 0 ? (after.writes - before.writes) / txns : 0
      compare(a, b, c, `writes/s; ${perTxn.toFixed(1)} sets per etcd txn (group commit)${esWrites.failed()}`)
      if (a?.data?.vsRaw !== undefined) ctx.log(`  ${G} | ${wl}: EtcdStore / raw = ${a.data.vsRaw.toFixed(2)}x, ${perTxn.toFixed(1)} sets per txn`)
      if (esWrites.failures.length === 0 && (await es.get(keyOf('c:', 0))) !== VALUE) fail('EtcdStore lost a concurrent set')
    }
    await elections()
  } finally {
    const closed = await Promise.allSettled(stores.map((s) => s.close()))
    raw.close()
    await cluster.stop()
    for (const c of closed) if (c.status === 'rejected') ctx.log(`  ${G}: close failed: ${String(c.reason)}`)
  }
  return rows.list
}
