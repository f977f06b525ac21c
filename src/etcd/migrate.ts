// Moving data between an EtcdStore and kvstore's snapshot files (the binary and JSON
// formats every Store reads and writes), so data crosses backends with files that already
// exist: `etcd.snapshot(path)` then `Store.open({ file: path })`, or `store.snapshot(path)`
// then `etcd.load(path)`. Types and expiries travel; versions do not (etcd assigns its own).
import type { Clock } from '../clock.js'
import { StoreError } from '../errors.js'
import { encodedSize } from '../value-check.js'
import { KvHash, KvList } from '../collections.js'
import { nodeFs } from '../fs/node-fs.js'
import type { Limits } from '../limits.js'
import type { SnapshotFormatName } from '../options.js'
import type { SnapshotResult } from '../persistence/persistence.js'
import type { SnapshotEntry } from '../snapshot/format.js'
import { formatByName, formatFor, loadSnapshotFile } from '../snapshot/io.js'
import { writeSnapshotFile } from '../snapshot/write-file.js'
import type { TxnOp } from './client.js'
import { MAX_TXN_BYTES, MAX_TXN_OPS, writeSize } from './committer.js'
import { Kind, bytesPrefixEnd, encodeElement, type KeyRecord, type Layout } from './layout.js'

/** What migration needs from its EtcdStore. */
export interface MigrationHost {
  walk(): AsyncIterable<[string, KeyRecord]>
  elements(key: string, rec: KeyRecord): Promise<unknown>
  write(ops: TxnOp[]): Promise<void>
  putRecord(key: string, rec: KeyRecord): Promise<TxnOp[]>
  readonly layout: Layout
  readonly limits: Limits
  readonly clock: Clock
  newGen(): number
  /** Every record key in the namespace (expired ones too) with its record, at one revision, if there are at most `max`. */
  existing(max: number): Promise<{ revision: number; records: [Buffer, KeyRecord][] } | undefined>
  /** Commit `ops` if no record changed after `revision`; false when one did. */
  writeIfUnchanged(ops: TxnOp[], revision: number): Promise<boolean>
}

/**
 * Write every live key to a snapshot file at `path`. The walk reads pages at one etcd
 * revision, so the file is a point-in-time copy. Entries are gathered in memory first
 * (the formats write their count up front).
 */
export async function exportSnapshot(
  host: MigrationHost,
  path: string,
  format: SnapshotFormatName | undefined,
  compress: 'gzip' | 'brotli' | undefined,
): Promise<SnapshotResult> {
  const started = performance.now()
  const entries: SnapshotEntry[] = []
  let version = 0
  for await (const [key, rec] of host.walk()) {
    entries.push({ key, value: await host.elements(key, rec), expiresAt: rec.expiresAt, version: ++version })
  }
  const name = format ?? formatFor(path)
  const seq = Math.max(version, 1)
  const { bytes } = await writeSnapshotFile(nodeFs, path, formatByName(name), { seq, timestamp: host.clock.now(), count: entries.length }, entries, {
    maxKeyBytes: host.limits.maxKeyBytes,
    maxValueBytes: Number.MAX_SAFE_INTEGER,
    ...(compress !== undefined ? { compress } : {}),
  })
  return { path, format: name, entries: entries.length, bytes, timeMs: performance.now() - started, seq }
}

/**
 * Write the entries of the snapshot file at `path` into the (cleared) namespace, in txns
 * that fit etcd's limits. A collection too large for one txn has its elements written
 * first and its record last: until the record lands, the elements are invisible.
 */
export async function importSnapshot(host: MigrationHost, path: string, clearOps: TxnOp[]): Promise<{ entries: number; timeMs: number }> {
  const started = performance.now()
  // Read and check the whole file before anything changes: a bad file leaves the store as it was.
  // The file is read with Store's limits; values too large for etcd are named below.
  const loaded = await loadSnapshotFile(nodeFs, path, undefined, 0, undefined, { maxKeyBytes: host.limits.maxKeyBytes })
  const now = host.clock.now()
  const L = host.layout
  const max = host.limits.maxValueBytes
  const live: [string, unknown, number][] = []
  const cur = loaded.memtable.view().cursor({})
  while (cur.next()) {
    const expiresAt = cur.expiresAt
    if (expiresAt !== 0 && expiresAt <= now) continue
    const value = cur.value
    const elements = value instanceof KvList ? [...value] : value instanceof KvHash ? [...value.values()] : [value]
    for (const v of elements) {
      if (encodedSize(v, max) > max) {
        throw new StoreError('KV_VALUE_TOO_LARGE', `${path}: the value of ${JSON.stringify(cur.key)} is larger than this store's maxValueBytes (${max}; etcd's request limit is 1.5 MiB); nothing was loaded`)
      }
    }
    live.push([cur.key, value, expiresAt])
  }
  const contentOps = async (): Promise<TxnOp[][]> => {
    const out: TxnOp[][] = []
    for (const [key, value, expiresAt] of live) {
      if (value instanceof KvList) {
        const gen = host.newGen()
        let i = 0
        const ops: TxnOp[] = []
        for (const v of value) ops.push({ put: { key: L.listElement(key, gen, i++), value: encodeElement(v) } })
        out.push([...ops, ...(await host.putRecord(key, { kind: Kind.LIST, expiresAt, gen, head: 0, tail: i }))])
      } else if (value instanceof KvHash) {
        const gen = host.newGen()
        const ops: TxnOp[] = []
        for (const [f, v] of value) ops.push({ put: { key: L.hashField(key, gen, f), value: encodeElement(v) } })
        out.push([...ops, ...(await host.putRecord(key, { kind: Kind.HASH, expiresAt, gen, size: value.size }))])
      } else {
        out.push(await host.putRecord(key, { kind: Kind.VALUE, expiresAt, value }))
      }
    }
    return out
  }

  // Atomic when it fits one txn: delete the records not in the file (and the elements of
  // every collection there), write the file's, and mark the clear, all at once, provided
  // no record changed since they were listed. Watchers then see one `clear`.
  for (let attempt = 0; attempt < 5; attempt++) {
    const groups = await contentOps()
    const contentCount = groups.reduce((n, g) => n + g.length, 0)
    const room = MAX_TXN_OPS - 2 - contentCount
    const existing = room > 0 ? await host.existing(room) : undefined
    if (existing === undefined) break
    const inFile = new Set(live.map(([k]) => L.record(k).toString('hex')))
    const ops: TxnOp[] = []
    for (const [recordKey, rec] of existing.records) {
      if (!inFile.has(recordKey.toString('hex'))) ops.push({ deleteRange: { key: recordKey } })
      if (rec.kind !== Kind.VALUE) {
        const prefix = L.elements(L.keyOf(recordKey), rec.gen)
        ops.push({ deleteRange: { key: prefix, rangeEnd: bytesPrefixEnd(prefix) } })
      }
    }
    ops.push(...groups.flat(), { put: { key: L.clearMarker(), value: Buffer.alloc(0) } })
    const { bytes } = writeSize({ compares: [], ops })
    if (ops.length + 1 > MAX_TXN_OPS || bytes > MAX_TXN_BYTES) break
    if (await host.writeIfUnchanged(ops, existing.revision)) return { entries: live.length, timeMs: performance.now() - started }
  }

  // Too large for one txn: clear, then the contents in txns of etcd's size. Other
  // clients can see it half done.
  let batch: TxnOp[] = []
  let batchOps = 0
  let batchBytes = 0
  const flush = async (): Promise<void> => {
    if (batch.length > 0) await host.write(batch)
    batch = []
    batchOps = 0
    batchBytes = 0
  }
  const add = async (ops: TxnOp[]): Promise<void> => {
    const { bytes } = writeSize({ compares: [], ops })
    if (batchOps + ops.length + 1 > MAX_TXN_OPS || batchBytes + bytes > MAX_TXN_BYTES) await flush()
    batch.push(...ops)
    batchOps += ops.length
    batchBytes += bytes
  }
  await host.write(clearOps)
  for (const group of await contentOps()) {
    // A collection too large for one txn: its elements first, its record last (the
    // elements are invisible until the record lands).
    for (let i = 0; i < group.length; i += MAX_TXN_OPS - 2) await add(group.slice(i, i + MAX_TXN_OPS - 2))
  }
  await flush()
  return { entries: live.length, timeMs: performance.now() - started }
}
